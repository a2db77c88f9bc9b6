package wechatpay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// DefaultMaxBodySize bounds request and response bodies a Transport reads
// into memory when no MaxBodySize is set.
const DefaultMaxBodySize = 8 << 20

const defaultUserAgent = "wxpaykit-wechatpay-go/1 (+https://github.com/wxpaykit/wechatpay)"

// userAgentOr returns ua, or the library's default User-Agent when empty.
func userAgentOr(ua string) string {
	if ua == "" {
		return defaultUserAgent
	}
	return ua
}

// baseOr returns rt, or http.DefaultTransport when nil.
func baseOr(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		return http.DefaultTransport
	}
	return rt
}

// ErrNotConfigured is returned by a Transport missing its Signer or
// Verifier: it refuses to send rather than pass unverified data.
var ErrNotConfigured = errors.New("wechatpay: transport needs a Signer and a Verifier")

// Transport is an [http.RoundTripper] that signs WeChat Pay APIv3 requests
// and verifies the signature of every response it returns. Put it in any
// [http.Client]; retries and tracing belong in RoundTrippers that wrap it,
// so that every attempt is signed afresh.
//
// RoundTrip bends the RoundTripper contract in one documented way: it
// interprets responses. A 2xx response is returned only if its signature
// verifies; otherwise RoundTrip closes it and returns a *VerifyError. A
// non-2xx response is verified when it carries a signature and is otherwise
// returned as it is; see CheckResponse and IsVerified. Responses of
// WeChat Pay's unsigned downloads (bill files, complaint images,
// statements), and of requests marked with WithoutResponseVerification,
// are streamed unverified.
//
// RoundTrip never modifies the caller's request and closes its body
// exactly once. A Transport is safe for concurrent use; do not change its
// fields after the first call to RoundTrip.
type Transport struct {
	// Signer signs requests. Required.
	Signer *Signer
	// Verifier checks responses. Required.
	Verifier *Verifier
	// Base sends the signed request. Nil means http.DefaultTransport.
	Base http.RoundTripper
	// PublicKeyID, if set, is sent as Wechatpay-Serial so that WeChat Pay
	// signs responses with that public key. Otherwise the newest platform
	// certificate's serial is sent when the Verifier's *Store knows it.
	PublicKeyID string
	// MaxBodySize bounds the request and response bodies read into
	// memory. Zero means DefaultMaxBodySize (8 MiB).
	MaxBodySize int64
	// UserAgent is set when the request has none. Empty means a default
	// that names this library.
	UserAgent string
}

var _ http.RoundTripper = (*Transport)(nil)

// NewTransport returns a Transport for one merchant, with its Signer, its
// Verifier and the Store they share: cfg.Store, or a new Store of its own.
// It checks the whole configuration at once and names every problem.
func NewTransport(cfg Config) (*Transport, error) {
	store := cfg.Store
	if store == nil {
		var err error
		if store, err = NewStore(StoreOptions{}); err != nil {
			return nil, err
		}
	}
	if err := store.Register(cfg); err != nil {
		return nil, err
	}
	if cfg.MaxBodySize < 0 {
		return nil, fmt.Errorf("wechatpay: config: negative MaxBodySize %d", cfg.MaxBodySize)
	}
	return &Transport{
		Signer:      &Signer{MerchantID: cfg.MerchantID, CertificateSerial: cfg.CertificateSerial, Key: cfg.PrivateKey},
		Verifier:    &Verifier{MerchantID: cfg.MerchantID, Keys: store},
		Base:        cfg.Base,
		PublicKeyID: cfg.PublicKeyID,
		MaxBodySize: cfg.MaxBodySize,
		UserAgent:   cfg.UserAgent,
	}, nil
}

type serialKey struct{}
type unsignedKey struct{}

// WithSerial returns a context that makes the Transport send
// Wechatpay-Serial: serial, overriding its default. Use it for a request
// whose sensitive fields were encrypted with that certificate or public key.
func WithSerial(ctx context.Context, serial string) context.Context {
	return context.WithValue(ctx, serialKey{}, serial)
}

// WithoutResponseVerification marks a request whose response WeChat Pay
// does not sign, so that the Transport streams it unverified. The
// documented unsigned downloads need no marking; this is an escape hatch
// for others. Use it only for such endpoints: the response is not
// authenticated.
func WithoutResponseVerification(ctx context.Context) context.Context {
	return context.WithValue(ctx, unsignedKey{}, true)
}

// unsignedPrefixes are WeChat Pay's documented downloads whose responses
// carry no signature (PROTOCOL §2.5). Only GET requests qualify. An entry
// ending in "/" matches the paths below it; any other matches exactly.
var unsignedPrefixes = []string{
	"/v3/billdownload/file",
	"/v3/merchant-service/images/",
	"/v3/statements",
	"/v3/global/statements",
	"/hk/v3/statements",
	"/v3/new-tax-control-fapiao/download",
	"/v3/transferdownload/elecvoucherfile",
	"/v3/transferdownload/signfile",
}

func isUnsignedDownload(req *http.Request) bool {
	if req.Method != http.MethodGet && req.Method != "" {
		return false
	}
	if v, _ := req.Context().Value(unsignedKey{}).(bool); v {
		return true
	}
	p := req.URL.Path
	for _, prefix := range unsignedPrefixes {
		if p == prefix || strings.HasSuffix(prefix, "/") && strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

func (t *Transport) maxBody() int64 {
	if t.MaxBodySize > 0 {
		return t.MaxBodySize
	}
	return DefaultMaxBodySize
}

// RoundTrip signs req, sends it with Base and verifies the response. See
// the type's documentation for what it returns.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := readRequestBody(req, t.maxBody())
	if err != nil {
		return nil, err
	}
	if t.Signer == nil || t.Verifier == nil {
		return nil, ErrNotConfigured
	}
	if req.URL == nil {
		return nil, errors.New("wechatpay: request has no URL")
	}
	r2 := req.Clone(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		r2.ContentLength = int64(len(body))
		if len(body) == 0 {
			r2.Body = http.NoBody
			r2.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
		} else {
			r2.Body = io.NopCloser(bytes.NewReader(body))
			r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
	}
	method := r2.Method
	if method == "" {
		method = http.MethodGet
	}
	signed, err := signedBody(r2.Context(), body) // media uploads sign their meta JSON only
	if err != nil {
		return nil, err
	}
	auth, err := t.Signer.Authorization(method, r2.URL.RequestURI(), signed)
	if err != nil {
		return nil, err
	}
	h := r2.Header
	h.Set("Authorization", auth)
	if h.Get("Accept") == "" {
		h.Set("Accept", "application/json")
	}
	if h.Get("User-Agent") == "" {
		h.Set("User-Agent", userAgentOr(t.UserAgent))
	}
	if len(body) > 0 && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	if serial := t.requestSerial(r2); serial != "" {
		h.Set(HeaderSerial, serial)
	}

	resp, err := baseOr(t.Base).RoundTrip(r2)
	if err != nil {
		return nil, err
	}
	ok2xx := resp.StatusCode >= 200 && resp.StatusCode < 300
	if ok2xx && isUnsignedDownload(r2) {
		return resp, nil // streamed: a bill may be larger than memory
	}
	rbody, err := readAll(resp.Body, resp.ContentLength, t.maxBody())
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("wechatpay: reading response of %s %s: %w", method, r2.URL.Path, err)
	}
	verified := false
	if ok2xx || len(resp.Header[HeaderSignature]) > 0 {
		if err := t.Verifier.Verify(req.Context(), resp.Header, rbody); err != nil {
			return nil, err
		}
		verified = true
	}
	resp.Body = &responseBody{Reader: bytes.NewReader(rbody), verified: verified}
	resp.ContentLength = int64(len(rbody))
	return resp, nil
}

// requestSerial chooses the Wechatpay-Serial header of a request: the
// context's, the caller's own header, the public key ID, or the newest
// platform certificate.
func (t *Transport) requestSerial(r *http.Request) string {
	if s, ok := r.Context().Value(serialKey{}).(string); ok && s != "" {
		return s
	}
	if r.Header.Get(HeaderSerial) != "" {
		return ""
	}
	if t.PublicKeyID != "" {
		return t.PublicKeyID
	}
	if s, ok := t.Verifier.Keys.(*Store); ok {
		return s.requestSerial(t.Verifier.MerchantID)
	}
	return ""
}

// responseBody is the body of a response RoundTrip read and checked.
type responseBody struct {
	*bytes.Reader
	verified bool
}

func (*responseBody) Close() error { return nil }

// IsVerified reports whether resp came from a Transport that verified its
// signature. Every 2xx response a Transport returns is verified, except
// unsigned downloads.
func IsVerified(resp *http.Response) bool {
	b, ok := resp.Body.(*responseBody)
	return ok && b.verified
}

// readRequestBody reads req.Body with a limit and always closes it.
func readRequestBody(req *http.Request, limit int64) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	defer req.Body.Close()
	size := req.ContentLength
	if size <= 0 {
		size = -1 // for client requests, 0 with a body means unknown
	}
	b, err := readAll(req.Body, size, limit)
	if err != nil {
		return nil, fmt.Errorf("wechatpay: reading request body: %w", err)
	}
	return b, nil
}

// readAll reads r up to limit bytes, using size (a Content-Length, or -1)
// to allocate once. More than limit bytes is ErrBodyTooLarge.
func readAll(r io.Reader, size, limit int64) ([]byte, error) {
	if size > limit {
		return nil, fmt.Errorf("%w (%d bytes, limit %d)", ErrBodyTooLarge, size, limit)
	}
	if size >= 0 {
		b := make([]byte, size, size+1)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		// Content-Length is a promise; make sure nothing follows.
		var one [1]byte
		if n, _ := r.Read(one[:]); n > 0 {
			return nil, errors.New("body longer than its Content-Length")
		}
		return b, nil
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w (limit %d bytes)", ErrBodyTooLarge, limit)
	}
	return b, nil
}

// APIError is WeChat Pay's answer to a request that did not succeed
// (PROTOCOL §8), as returned by CheckResponse.
type APIError struct {
	StatusCode int
	Code       string          // e.g. PARAM_ERROR, SIGN_ERROR
	Message    string          // WeChat Pay's message
	Detail     json.RawMessage // raw detail object, if any (SIGN_ERROR's includes the signed message it expected)
	RequestID  string          // quote it to WeChat Pay support
	Verified   bool            // whether the response's signature was verified
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "wechatpay: HTTP %d", e.StatusCode)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", truncate(e.Message, 200))
	}
	if len(e.Detail) > 0 {
		fmt.Fprintf(&b, " (detail %s)", truncate(string(e.Detail), 500))
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " [Request-ID %s]", truncate(e.RequestID, 64))
	}
	if !e.Verified {
		b.WriteString(" [unverified]")
	}
	return b.String()
}

func newAPIError(resp *http.Response, body []byte, verified bool) *APIError {
	e := &APIError{StatusCode: resp.StatusCode, RequestID: resp.Header.Get(HeaderRequestID), Verified: verified}
	var j struct {
		Code    string          `json:"code"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &j) == nil {
		e.Code, e.Message = j.Code, j.Message
		if len(j.Detail) > 0 && string(j.Detail) != "null" {
			e.Detail = j.Detail
		}
	}
	return e
}

// CheckResponse returns nil for a 2xx response and an *APIError for any
// other, parsed from WeChat Pay's error JSON. The body stays readable.
func CheckResponse(resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	verified := IsVerified(resp)
	body, err := readAll(resp.Body, -1, 1<<20)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("wechatpay: reading HTTP %d response: %w", resp.StatusCode, err)
	}
	resp.Body = &responseBody{Reader: bytes.NewReader(body), verified: verified}
	return newAPIError(resp, body, verified)
}
