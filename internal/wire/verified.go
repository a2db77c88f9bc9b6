package wire

import "net/http"

// VerifiedHeader carries, on a response a transport of this process
// verified, this process's verifiedToken. The transports delete it from
// every response they receive, and a server cannot guess the token, so it
// cannot be forged; being a header, it survives whatever wraps the body
// (http.Client's Timeout, tracing and logging transports).
const VerifiedHeader = "X-Wxpaykit-Verified"

var verifiedToken = NewNonce()

// MarkVerified marks h as the header of a verified response.
func MarkVerified(h http.Header) { h[VerifiedHeader] = []string{verifiedToken} }

// IsVerified reports whether h was marked by MarkVerified in this process.
func IsVerified(h http.Header) bool {
	v := h[VerifiedHeader]
	return len(v) == 1 && v[0] == verifiedToken
}

// ForgetVerified removes any verified mark a response arrived with (a
// server's guess, or another process's mark), so that only this process's
// transports say what they verified. It gives a nil Header a map.
func ForgetVerified(resp *http.Response) {
	if resp.Header == nil {
		resp.Header = http.Header{}
	}
	resp.Header.Del(VerifiedHeader)
}
