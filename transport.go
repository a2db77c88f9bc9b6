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
	"sync/atomic"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// Transport is an [http.RoundTripper] that signs WeChat Pay APIv3 requests
// and verifies the signature of every response it returns. Put it in any
// [http.Client]; retries and tracing belong in RoundTrippers that wrap it,
// so that every attempt is signed afresh.
//
// It signs only requests to the host of BaseURL and to WeChat Pay's other
// documented host of the same region (api.mch.weixin.qq.com and its backup
// api2.mch.weixin.qq.com; see Failover), over BaseURL's scheme; a request
// to any other host fails with ErrHostNotAllowed before anything is sent.
//
// RoundTrip bends the RoundTripper contract in one documented way: it
// interprets responses. A 2xx or 3xx response is returned only if its
// signature verifies (WeChat Pay's APIs do not redirect, so an unsigned
// redirect is refused, never followed); otherwise RoundTrip closes it and
// returns a *VerifyError. Any other response is verified when it carries
// a signature and is otherwise returned as it is; see CheckResponse and
// IsVerified. The only responses passed on unverified are the 2xx answers
// to GET requests marked with WithoutResponseVerification (DownloadBill
// marks its own), and never to a request made to follow a redirect.
//
// RoundTrip never modifies the caller's request and closes its body
// exactly once. A Transport is safe for concurrent use; do not change its
// fields after the first call to RoundTrip. The zero value refuses every
// request with ErrNotConfigured.
type Transport struct {
	// Signer signs requests. Required.
	Signer *Signer
	// Verifier checks responses. Required.
	Verifier *Verifier
	// Base sends the signed request. Nil means http.DefaultTransport.
	Base http.RoundTripper
	// BaseURL is the merchant's API host, as in Config. Empty means
	// DefaultBaseURL. It decides the hosts the Transport signs for.
	BaseURL string
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

	hosts atomic.Pointer[apiHosts] // parsed BaseURL, on first use
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
		Verifier:    &Verifier{MerchantID: cfg.MerchantID, Keys: store, Events: cfg.Events},
		Base:        cfg.Base,
		BaseURL:     cfg.BaseURL,
		PublicKeyID: cfg.PublicKeyID,
		MaxBodySize: cfg.MaxBodySize,
		UserAgent:   cfg.UserAgent,
	}, nil
}

type serialKey struct{}

// WithSerial returns a context that makes the Transport send
// Wechatpay-Serial: serial, overriding its default. Use it for a request
// whose sensitive fields were encrypted with that certificate or public key.
func WithSerial(ctx context.Context, serial string) context.Context {
	return context.WithValue(ctx, serialKey{}, serial)
}

// WithoutResponseVerification marks a GET request whose successful
// response WeChat Pay does not sign (file downloads such as complaint
// images or statements), so that the Transport streams a 2xx answer to it
// unverified. Nothing else is ever passed on unverified: not a 3xx, not a
// request to another host, not a request http.Client makes to follow a
// redirect. DownloadBill marks its own request. The response is not
// authenticated: check it against a hash from a signed answer.
func WithoutResponseVerification(ctx context.Context) context.Context {
	return wire.WithoutVerification(ctx)
}

// signedBody returns the bytes the Transport signs for a request with
// body: those marked by wire.WithSignedBody, which must be part of body,
// or body itself. WeChat Pay's uploads need it: their signature covers
// only the JSON of the multipart "meta" part (docs/protocol.md §1.4);
// NewMediaUploadRequest and the upload package mark it through
// wire.UploadRequest.
func signedBody(ctx context.Context, body []byte) ([]byte, error) {
	b, ok := wire.SignedBody(ctx)
	if !ok {
		return body, nil
	}
	if len(b) == 0 || !bytes.Contains(body, b) {
		return nil, errors.New("wechatpay: the signed meta JSON of this upload is not part of the request body")
	}
	return b, nil
}

// knownUnsigned are WeChat Pay's documented downloads whose responses
// carry no signature (docs/protocol.md §2.5). They decide nothing: they only make
// the error for an unmarked request to one of them say what to do.
var knownUnsigned = []string{
	"/v3/billdownload/file",
	"/v3/bill/downloadurl",
	"/v3/merchant-service/images/",
	"/v3/statements",
	"/v3/global/statements",
	"/hk/v3/statements",
	"/v3/new-tax-control-fapiao/download",
	"/v3/transferdownload/",
}

// unsignedHint says what to do when an unmarked request to a documented
// unsigned download gets an unsigned answer.
func unsignedHint(path string) string {
	for _, p := range knownUnsigned {
		if strings.HasPrefix(path, p) {
			return fmt.Sprintf("%s answers unsigned: download it with wechatpay.DownloadBill, or mark the request with wechatpay.WithoutResponseVerification and check the file against the hash of a signed answer", p)
		}
	}
	return ""
}

func (t *Transport) maxBody() int64 {
	if t.MaxBodySize > 0 {
		return t.MaxBodySize
	}
	return DefaultMaxBodySize
}

// apiHosts returns the hosts t signs for, parsing BaseURL on first use.
func (t *Transport) apiHosts() (*apiHosts, error) {
	if h := t.hosts.Load(); h != nil {
		return h, nil
	}
	u, err := parseBaseURL(t.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("wechatpay: transport: %w", err)
	}
	h := newAPIHosts(u)
	t.hosts.Store(&h)
	return &h, nil
}

// RoundTrip signs req, sends it with Base and verifies the response. See
// the type's documentation for what it returns.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	r2, method, err := t.signedClone(req)
	if err != nil {
		return nil, notSentError{err}
	}
	resp, err := wire.Base(t.Base).RoundTrip(r2)
	if err != nil {
		return nil, err
	}
	wire.ForgetVerified(resp)
	mustVerify := resp.StatusCode >= 200 && resp.StatusCode < 400
	if resp.StatusCode >= 200 && resp.StatusCode < 300 && wire.UnverifiedAllowed(r2) {
		return resp, nil // streamed: a bill may be larger than memory
	}
	rbody, err := wire.ReadResponseBody(resp, method, t.maxBody())
	if err != nil {
		return nil, fmt.Errorf("wechatpay: reading response of %s %s: %w", method, r2.URL.Path, err)
	}
	if mustVerify || len(resp.Header[wire.HeaderSignature]) > 0 {
		if err := t.Verifier.Verify(req.Context(), resp.Header, rbody); err != nil {
			var ve *VerifyError
			if hint := unsignedHint(r2.URL.Path); hint != "" && errors.As(err, &ve) && errors.Is(err, ErrMissingSignature) {
				ve.Err = fmt.Errorf("%w; %s", ve.Err, hint)
			}
			return nil, err
		}
		wire.SetVerifiedBody(resp, rbody)
		return resp, nil
	}
	resp.Body = wire.NewBody(rbody)
	resp.ContentLength = int64(len(rbody))
	return resp, nil
}

// signedClone reads req's body, checks the request, and returns the clone
// to send, signed, with its method. Its errors come before anything is
// sent.
func (t *Transport) signedClone(req *http.Request) (*http.Request, string, error) {
	body, err := wire.ReadRequestBody(req, t.maxBody())
	if err != nil {
		return nil, "", err
	}
	if t.Signer == nil || t.Verifier == nil {
		return nil, "", ErrNotConfigured
	}
	if req.URL == nil {
		return nil, "", errors.New("wechatpay: request has no URL")
	}
	hosts, err := t.apiHosts()
	if err != nil {
		return nil, "", err
	}
	if err := hosts.check(req.URL); err != nil {
		return nil, "", err
	}
	// A shallow copy with a header of its own: nothing below writes to
	// the URL (but the sensitive-field step, which gets a copy) or the
	// other shared fields, so they need no copy.
	p := new(signedRequest)
	r2 := &p.req
	*r2 = *req
	fields := wire.FieldsFrom(req.Context())
	var fieldsSerial string
	if fields != nil && fields.Build != nil {
		u := *req.URL // the query string may be rebuilt
		r2.URL = &u
		if body, fieldsSerial, err = t.encryptFields(r2, fields); err != nil {
			return nil, "", err
		}
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	signed, err := signedBody(req.Context(), body) // media uploads sign their meta JSON only
	if err != nil {
		return nil, "", err
	}
	auth, err := t.Signer.Authorization(method, r2.URL.RequestURI(), signed)
	if err != nil {
		return nil, "", err
	}
	r2.Header = t.signedHeader(req, auth, len(body) > 0, fieldsSerial, p.values[:])
	if req.Body != nil && req.Body != http.NoBody || len(body) > 0 {
		wire.SetBody(r2, body, &p.body)
	}
	if fields != nil {
		fields.Serial, fields.Key = fieldsSerial, t.Signer.Key
	}
	return r2, method, nil
}

// signedRequest is the request a Transport sends, allocated at once with
// its body reader and room for the values of a usual header.
type signedRequest struct {
	req    http.Request
	body   wire.Body
	values [8]string
}

// signedHeader returns a copy of req's header with the signature headers
// set, its values in one backing array (like http.Header.Clone's), the
// new ones included: buf if they fit.
func (t *Transport) signedHeader(req *http.Request, auth string, hasBody bool, fieldsSerial string, buf []string) http.Header {
	src := req.Header
	var set [5][2]string // the headers to set: at most five
	n := 0
	add := func(k, v string) { set[n] = [2]string{k, v}; n++ }
	add("Authorization", auth)
	if src.Get("Accept") == "" {
		add("Accept", "application/json")
	}
	if src.Get("User-Agent") == "" {
		add("User-Agent", wire.UserAgent(t.UserAgent))
	}
	if hasBody && src.Get("Content-Type") == "" {
		add("Content-Type", "application/json")
	}
	if fieldsSerial != "" {
		add(wire.HeaderSerial, fieldsSerial) // the key the fields were encrypted with
	} else if serial := t.requestSerial(req); serial != "" {
		add(wire.HeaderSerial, serial)
	}
	nv := n
	for _, vv := range src {
		nv += len(vv)
	}
	values := buf
	if nv > len(buf) {
		values = make([]string, nv)
	}
	h := make(http.Header, len(src)+n)
	for k, vv := range src {
		if vv == nil {
			h[k] = nil // as Header.Clone: a nil value stays nil
			continue
		}
		c := copy(values, vv)
		h[k] = values[:c:c]
		values = values[c:]
	}
	for _, kv := range set[:n] {
		values[0] = kv[1]
		h[kv[0]] = values[:1:1]
		values = values[1:]
	}
	return h
}

// notSentError is an error the Transport returned before sending
// anything: ClassifyError never calls its outcome unknown.
type notSentError struct{ err error }

func (e notSentError) Error() string { return e.err.Error() }
func (e notSentError) Unwrap() error { return e.err }

// requestSerial chooses the Wechatpay-Serial header of a request: the
// context's, the caller's own header, the public key ID, or the newest
// platform certificate.
func (t *Transport) requestSerial(r *http.Request) string {
	if s, ok := r.Context().Value(serialKey{}).(string); ok && s != "" {
		return s
	}
	if r.Header.Get(wire.HeaderSerial) != "" {
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

// IsVerified reports whether resp's signature was verified by a Transport
// (or an apiv2.Transport) of this process. Every 2xx and 3xx response a
// Transport returns is verified, except the answers to requests marked
// with WithoutResponseVerification. It keeps working when anything wraps
// the response's body, and a server cannot make it report true.
func IsVerified(resp *http.Response) bool {
	return wire.IsVerified(resp.Header)
}

// APIError is WeChat Pay's answer to a request that did not succeed
// (docs/protocol.md §8), as returned by CheckResponse.
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
		fmt.Fprintf(&b, ": %s", wire.Truncate(e.Message, 200))
	}
	if len(e.Detail) > 0 {
		fmt.Fprintf(&b, " (detail %s)", wire.Truncate(string(e.Detail), 500))
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " [Request-ID %s]", wire.Truncate(e.RequestID, 64))
	}
	if !e.Verified {
		b.WriteString(" [unverified]")
	}
	return b.String()
}

func newAPIError(resp *http.Response, body []byte, verified bool) *APIError {
	e := &APIError{StatusCode: resp.StatusCode, RequestID: resp.Header.Get(wire.HeaderRequestID), Verified: verified}
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
	body, err := wire.ReadAll(resp.Body, -1, 1<<20)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("wechatpay: reading HTTP %d response: %w", resp.StatusCode, err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return newAPIError(resp, body, verified)
}
