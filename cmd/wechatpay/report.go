package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/wxpaykit/wechatpay"
)

// report prints err for command name and returns the exit status.
func (a *app) report(name string, err error) int {
	if err == nil {
		return exitOK
	}
	var fe *flagError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK // the help was printed
	case errors.As(err, &fe):
		// The flag package already printed the problem.
		fmt.Fprintf(a.stderr, "Run 'wechatpay %s -h' for usage.\n", name)
		return exitUsage
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(a.stderr, "wechatpay %s: %s\nRun 'wechatpay %s -h' for usage.\n", name, ue.msg, name)
		return exitUsage
	}
	code, msg := classify(err)
	fmt.Fprintln(a.stderr, msg)
	return code
}

// classify maps an error to its exit status and a message that leads
// with the cause; for a state-changing call whose outcome is unknown, a
// last line says so and what to do.
func classify(err error) (int, string) {
	var unknown *wechatpay.OutcomeUnknownError
	var ee *exitError
	if !errors.As(err, &unknown) || errors.As(err, &ee) {
		return classifyCause(err)
	}
	code, msg := classifyCause(unknown.Err)
	note := "outcome unknown: " + unknown.Method + " " + clean(unknown.Path, 200) + " may have reached WeChat Pay, but no verified answer came back"
	if signRefused(err) {
		note = "outcome unknown: " + unknown.Method + " " + clean(unknown.Path, 200) + " was most likely refused for the same signature, but its answer could not be verified"
	}
	query := "query it by your own number (out_trade_no, out_refund_no)"
	if unknown.Number != "" {
		query = fmt.Sprintf("query it by %s %s", clean(unknown.NumberName, 32), clean(unknown.Number, 64))
	}
	return code, msg + "\n  " + note + ": " + query + " before trying again, and never try again with a new number."
}

// signRefused reports whether err says that the platform certificate
// download was refused with SIGN_ERROR: the merchant's signature, which
// every request carries, was not accepted.
func signRefused(err error) bool {
	var apiErr *wechatpay.APIError
	return errors.Is(err, wechatpay.ErrCertificateDownload) && errors.As(err, &apiErr) && apiErr.Code == "SIGN_ERROR"
}

// classifyCause maps an error to its exit status and a message that says,
// in plain words, what went wrong and what to do.
func classifyCause(err error) (int, string) {
	var (
		ee     *exitError
		ce     *credError
		apiErr *wechatpay.APIError
		ve     *wechatpay.VerifyError
		he     *hostError
	)
	host := ""
	if errors.As(err, &he) {
		host = he.host
		if errors.Is(err, context.DeadlineExceeded) && !errors.As(err, &apiErr) {
			return exitFailure, fmt.Sprintf("wechatpay: no answer from %s within %s (-timeout): %s", host, he.timeout, errText(he.err))
		}
	}
	switch {
	case errors.As(err, &ee):
		return ee.code, ee.msg
	case errors.As(err, &ce):
		return exitUsage, ce.Error()
	case errors.As(err, &apiErr):
		// Also when it comes inside a *VerifyError: a certificate
		// download that WeChat Pay refused (SIGN_ERROR from a wrong key).
		return exitAPIError, describeAPIError(apiErr, err, host)
	case errors.Is(err, wechatpay.ErrDecrypt):
		return exitUsage, "wechatpay: the APIv3 key is wrong: the platform certificates do not decrypt with it.\n" +
			"  Check -apiv3-key / WECHATPAY_APIV3_KEY against the key set in the merchant platform (商户平台 → API安全 → APIv3密钥).\n" +
			"  error: " + chainText(err)
	case errors.Is(err, wechatpay.ErrNoPlatformCertificates):
		return exitAPIError, "wechatpay: WeChat Pay answered 404 RESOURCE_NOT_EXISTS to the certificate download: this merchant has no platform certificates and uses a WeChat Pay public key.\n" +
			"  Pass -public-key-id PUB_KEY_ID_... and -public-key pub_key.pem (or set WECHATPAY_PUBLIC_KEY_ID and WECHATPAY_PUBLIC_KEY)."
	case isVerifyFailure(err):
		return exitVerify, "wechatpay: the response signature did not verify: " + whyNotVerified(err) + "\n  error: " + chainText(err)
	case isNetwork(err):
		return exitFailure, "wechatpay: " + chainText(err)
	case errors.As(err, &ve):
		return exitVerify, "wechatpay: the response could not be verified.\n  error: " + chainText(err)
	}
	return exitFailure, "wechatpay: " + chainText(err)
}

var verifySentinels = []error{
	wechatpay.ErrClockSkew,
	wechatpay.ErrSignatureProbe,
	wechatpay.ErrUnknownSerial,
	wechatpay.ErrExpiredKey,
	wechatpay.ErrBadSignature,
	wechatpay.ErrMissingSignature,
	wechatpay.ErrSignatureType,
}

func isVerifyFailure(err error) bool {
	for _, s := range verifySentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// whyNotVerified explains a verification failure in one sentence.
func whyNotVerified(err error) string {
	var ve *wechatpay.VerifyError
	serial := ""
	if errors.As(err, &ve) {
		serial = ve.Serial
	}
	switch {
	case errors.Is(err, wechatpay.ErrClockSkew):
		return "clock skew: the response's Wechatpay-Timestamp is more than 5 minutes away from this machine's clock (check the system time, or a replayed response)."
	case errors.Is(err, wechatpay.ErrSignatureProbe):
		return "signature probe: WeChat Pay sent a deliberately invalid signature (WECHATPAY/SIGNTEST/...) to check that clients verify; it was rightly rejected."
	case errors.Is(err, wechatpay.ErrUnknownSerial):
		if strings.HasPrefix(serial, "PUB_KEY_ID_") {
			return fmt.Sprintf("unknown serial: the response is signed with WeChat Pay public key %s, which is not configured; pass -public-key-id and -public-key.", serial)
		}
		return fmt.Sprintf("unknown serial: %q is not among the merchant's platform certificates or public keys.", serial)
	case errors.Is(err, wechatpay.ErrExpiredKey):
		return fmt.Sprintf("expired key: the platform certificate %s has expired.", serial)
	case errors.Is(err, wechatpay.ErrBadSignature):
		return "signature mismatch: the body or headers were altered in transit, or signed with a different key."
	case errors.Is(err, wechatpay.ErrMissingSignature):
		return "missing signature: the response lacks well-formed Wechatpay-Timestamp, -Nonce, -Signature and -Serial headers (is the base URL really WeChat Pay?)."
	case errors.Is(err, wechatpay.ErrSignatureType):
		return "unsupported Wechatpay-Signature-Type."
	}
	return "unknown reason."
}

// isNetwork reports errors of the connection rather than of WeChat Pay.
func isNetwork(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	return errors.As(err, &op) || errors.As(err, &dns) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF)
}

// describeAPIError prints an error answer with everything support will
// ask for, and a hint for SIGN_ERROR. It says "WeChat Pay answered" only
// for an answer whose signature verified; any other is attributed to the
// host that sent it, which may be a proxy or not WeChat Pay at all. Text
// from the answer is made safe to print.
func describeAPIError(e *wechatpay.APIError, wrapped error, host string) string {
	var b strings.Builder
	lead := e.Code == "SIGN_ERROR" && signRefused(wrapped)
	if lead {
		// The most common first-day mistake: say it first.
		b.WriteString("wechatpay: the merchant's signature was refused (SIGN_ERROR on the platform certificate download): check that -serial is the serial of\n" +
			"  the merchant API certificate (openssl x509 -in apiclient_cert.pem -noout -serial) and that -key is that certificate's private key\n" +
			"  (apiclient_key.pem); 'wechatpay doctor' checks both.\n  ")
	}
	if !lead {
		b.WriteString("wechatpay: ")
	}
	switch {
	case e.Verified:
		b.WriteString("WeChat Pay answered")
	case host != "":
		fmt.Fprintf(&b, "%s answered, unsigned,", host)
	default:
		b.WriteString("the server answered, unsigned,")
	}
	if e != wrapped {
		var ve *wechatpay.VerifyError
		if errors.As(wrapped, &ve) || errors.Is(wrapped, wechatpay.ErrCertificateDownload) {
			b.WriteString(" the platform certificate download with")
		}
	}
	fmt.Fprintf(&b, " HTTP %d", e.StatusCode)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", clean(e.Code, 64))
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", clean(e.Message, 300))
	}
	b.WriteString("\n")
	if len(e.Detail) > 0 {
		fmt.Fprintf(&b, "  detail:     %s\n", clean(string(e.Detail), 1000))
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, "  Request-ID: %s\n", clean(e.RequestID, 64))
	}
	if e.Verified {
		b.WriteString("  (this error response's signature was verified)\n")
	} else {
		b.WriteString("  (this answer was not signed, so nothing shows it came from WeChat Pay: a proxy, a firewall or a wrong -base-url may have sent it)\n")
	}
	if e.Code == "SIGN_ERROR" {
		b.WriteString(signErrorHint(e.Detail, e.Verified))
	}
	return strings.TrimRight(b.String(), "\n")
}

// hostError names the host a command talked to and the timeout it had,
// for messages about the failure it wraps.
type hostError struct {
	host    string
	timeout time.Duration
	err     error
}

func (e *hostError) Error() string { return e.err.Error() }
func (e *hostError) Unwrap() error { return e.err }

// atHost wraps a non-nil err with the host of baseURL and the timeout.
func atHost(err error, baseURL string, timeout time.Duration) error {
	if err == nil {
		return nil
	}
	host := baseURL
	if u, perr := url.Parse(baseURL); perr == nil && u.Host != "" {
		host = u.Host
	}
	return &hostError{host: host, timeout: timeout, err: err}
}

// shellQuote quotes s for a POSIX shell: as it is when it holds only
// characters no shell treats specially, otherwise in single quotes, with
// each single quote written as quote, backslash, quote, quote (it closes
// the quoting, adds an escaped quote and reopens). Nothing inside can end
// the quoting.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:@+,-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// signErrorHint turns the detail of a SIGN_ERROR into the sign command that
// reproduces what WeChat Pay checked.
func signErrorHint(detail json.RawMessage, verified bool) string {
	var d struct {
		SignInformation struct {
			Method    string `json:"method"`
			Truncated string `json:"truncated_sign_message"`
			URL       string `json:"url"`
		} `json:"sign_information"`
	}
	hint := "  hint: SIGN_ERROR means the Authorization did not verify with the certificate of -serial: check that -key is the private key of that certificate, and that the body sent is the body signed.\n"
	if json.Unmarshal(detail, &d) != nil || d.SignInformation.Truncated == "" {
		return hint
	}
	lines := strings.Split(d.SignInformation.Truncated, "\n")
	if len(lines) < 4 {
		return hint
	}
	who, label := "WeChat Pay checked", "Reproduce it with"
	if !verified {
		who = "The unsigned answer says WeChat Pay checked"
		label = "Reproduce it with (built from an unverified answer: read it before running it)"
	}
	return hint + fmt.Sprintf("  %s this signing string (truncated): %q\n  %s: wechatpay sign -method %s -url %s -timestamp %s -nonce %s [-d @body.json]\n",
		who, d.SignInformation.Truncated, label, shellQuote(lines[0]), shellQuote(lines[1]), shellQuote(lines[2]), shellQuote(lines[3]))
}

// shortError says in one line what went wrong, cause first: WeChat Pay's
// answer, the reason a signature did not verify, or the first line of the
// error. The whole chain is err.Error().
func shortError(err error) string {
	var apiErr *wechatpay.APIError
	var unknown *wechatpay.OutcomeUnknownError
	prefix := ""
	if errors.As(err, &unknown) {
		prefix = "outcome unknown (query before trying again): "
	}
	switch {
	case errors.As(err, &apiErr):
		s := fmt.Sprintf("HTTP %d %s", apiErr.StatusCode, clean(apiErr.Code, 64))
		if apiErr.Message != "" {
			s += ": " + clean(apiErr.Message, 120)
		}
		return prefix + s
	case isVerifyFailure(err):
		return prefix + whyNotVerified(err)
	}
	s, _, _ := strings.Cut(chainText(err), "\n")
	return prefix + clean(s, 160)
}

// chainText is err's whole chain without the "wechatpay: " prefixes, for
// a message that already says it once.
func chainText(err error) string {
	return strings.ReplaceAll(err.Error(), "wechatpay: ", "")
}
