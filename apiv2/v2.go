package apiv2

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/wire"
)

// APIv2 sign types (docs/protocol.md §5.1).
const (
	SignTypeMD5        = "MD5"
	SignTypeHMACSHA256 = "HMAC-SHA256"
)

// DefaultMaxBodySize bounds APIv2 request and response bodies when a
// Transport has no MaxBodySize. APIv2 messages are a few KiB.
const DefaultMaxBodySize = 1 << 20

// maxV2Fields bounds the number of elements of an APIv2 XML document.
const maxV2Fields = 512

// ErrXML is returned (wrapped) for a body that is not a flat APIv2 XML
// document <xml><name>value</name>...</xml>: malformed XML, a DOCTYPE or
// entity declaration, nested elements, repeated names, or too many fields.
var ErrXML = errors.New("wechatpay: not a flat APIv2 XML document")

// v2Field is one element of an APIv2 document, in document order.
type v2Field struct{ name, value string }

// parseV2 reads a flat APIv2 document. It refuses any directive (DOCTYPE,
// ENTITY) as soon as it meets it, so that no declaration is ever acted
// on; encoding/xml expands no entity but the five predefined ones and
// character references.
func parseV2(b []byte) ([]v2Field, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	var (
		fields []v2Field
		depth  int
		root   bool
		name   string
		text   strings.Builder
	)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrXML, err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, fmt.Errorf("%w: DOCTYPE and ENTITY declarations are not allowed", ErrXML)
		case xml.ProcInst:
			if depth != 0 || root || t.Target != "xml" {
				return nil, fmt.Errorf("%w: unexpected processing instruction", ErrXML)
			}
		case xml.Comment:
		case xml.StartElement:
			depth++
			if t.Name.Space != "" {
				return nil, fmt.Errorf("%w: namespaced element", ErrXML)
			}
			switch depth {
			case 1:
				if root || t.Name.Local != "xml" {
					return nil, fmt.Errorf("%w: the root element must be a single <xml>", ErrXML)
				}
				root = true
			case 2:
				name = t.Name.Local
				text.Reset()
			default:
				return nil, fmt.Errorf("%w: element <%s> is nested in <%s>", ErrXML, wire.Truncate(t.Name.Local, 32), wire.Truncate(name, 32))
			}
		case xml.CharData:
			if depth == 2 {
				text.Write(t)
			} else if len(bytes.TrimSpace(t)) > 0 {
				return nil, fmt.Errorf("%w: text outside the fields", ErrXML)
			}
		case xml.EndElement:
			if depth == 2 {
				if slices.ContainsFunc(fields, func(f v2Field) bool { return f.name == name }) {
					return nil, fmt.Errorf("%w: field <%s> appears twice", ErrXML, wire.Truncate(name, 32))
				}
				if len(fields) == maxV2Fields {
					return nil, fmt.Errorf("%w: more than %d fields", ErrXML, maxV2Fields)
				}
				fields = append(fields, v2Field{name, text.String()})
			}
			depth--
		}
	}
	if !root {
		return nil, fmt.Errorf("%w: no <xml> element", ErrXML)
	}
	return fields, nil
}

func v2Map(fields []v2Field) map[string]string {
	m := make(map[string]string, len(fields))
	for _, f := range fields {
		m[f.name] = f.value
	}
	return m
}

// ParseXML parses an APIv2 XML document, <xml><name>value</name>...</xml>,
// into its fields. It accepts only that flat shape: DOCTYPE and ENTITY
// declarations, nested elements and repeated names are errors wrapping
// ErrXML. Bound the input's size before calling it.
func ParseXML(b []byte) (map[string]string, error) {
	fields, err := parseV2(b)
	if err != nil {
		return nil, err
	}
	return v2Map(fields), nil
}

// EncodeXML returns the APIv2 XML document of params, fields in name
// order, values escaped.
func EncodeXML(params map[string]string) []byte {
	fields := make([]v2Field, 0, len(params))
	for _, k := range sortedKeys(params) {
		fields = append(fields, v2Field{k, params[k]})
	}
	return encodeV2(fields)
}

func encodeV2(fields []v2Field) []byte {
	var b bytes.Buffer
	b.WriteString("<xml>")
	for _, f := range fields {
		b.WriteByte('<')
		b.WriteString(f.name)
		b.WriteByte('>')
		xml.EscapeText(&b, []byte(f.value))
		b.WriteString("</")
		b.WriteString(f.name)
		b.WriteByte('>')
	}
	b.WriteString("</xml>")
	return b.Bytes()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Sign returns the APIv2 sign of params (docs/protocol.md §5.1): the parameters
// with non-empty values except sign, sorted by name in byte order, joined
// as k1=v1&k2=v2, then "&key=" and the APIv2 key appended; the MD5 of that
// string, or its HMAC-SHA256 keyed with the APIv2 key, in upper-case hex.
// signType is SignTypeMD5 or SignTypeHMACSHA256 ("" means HMAC-SHA256).
// Errors never contain the key.
func Sign(params map[string]string, key, signType string) (string, error) {
	if key == "" {
		return "", errors.New("wechatpay: APIv2 sign: empty APIv2 key")
	}
	var b strings.Builder
	for _, k := range sortedKeys(params) {
		if k == "sign" || params[k] == "" {
			continue
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(params[k])
		b.WriteByte('&')
	}
	b.WriteString("key=")
	b.WriteString(key)
	var sum []byte
	switch signType {
	case SignTypeHMACSHA256, "":
		mac := hmac.New(sha256.New, []byte(key))
		mac.Write([]byte(b.String()))
		sum = mac.Sum(nil)
	case SignTypeMD5:
		if wire.MD5Refused() {
			return "", wire.ErrFIPSOnly("APIv2 sign", "MD5 (sign_type MD5; HMAC-SHA256 works)")
		}
		s := md5.Sum([]byte(b.String()))
		sum = s[:]
	default:
		return "", fmt.Errorf("wechatpay: APIv2 sign: unsupported sign_type %q (want %s or %s)", wire.Truncate(signType, 20), SignTypeHMACSHA256, SignTypeMD5)
	}
	return strings.ToUpper(hex.EncodeToString(sum)), nil
}

// Verify checks the sign field of params with the APIv2 key. A missing
// sign is an error wrapping wechatpay.ErrMissingSignature, a wrong one wraps
// wechatpay.ErrBadSignature. Fields it does not know are covered like any other.
func Verify(params map[string]string, key, signType string) error {
	got := params["sign"]
	if got == "" {
		return fmt.Errorf("%w: APIv2 response has no sign", wechatpay.ErrMissingSignature)
	}
	want, err := Sign(params, key, signType)
	if err != nil {
		return err
	}
	if !hmac.Equal([]byte(strings.ToUpper(got)), []byte(want)) {
		return fmt.Errorf("%w: APIv2 %s sign", wechatpay.ErrBadSignature, signTypeName(signType))
	}
	return nil
}

func signTypeName(t string) string {
	if t == "" {
		return SignTypeHMACSHA256
	}
	return t
}

// A Error is an APIv2 answer whose return_code or result_code is not
// SUCCESS. Its fields are WeChat Pay's and safe to log.
type Error struct {
	ReturnCode string // SUCCESS or FAIL: whether the call itself worked
	ReturnMsg  string
	ResultCode string // SUCCESS or FAIL: whether the business operation did
	ErrCode    string // e.g. CERT_NOT_EXIST
	ErrCodeDes string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("wechatpay: APIv2")
	if e.ReturnCode != "SUCCESS" {
		fmt.Fprintf(&b, " return_code %s", wire.Truncate(e.ReturnCode, 32))
		if e.ReturnMsg != "" {
			fmt.Fprintf(&b, ": %s", wire.Truncate(e.ReturnMsg, 200))
		}
		return b.String()
	}
	fmt.Fprintf(&b, " result_code %s", wire.Truncate(e.ResultCode, 32))
	if e.ErrCode != "" {
		fmt.Fprintf(&b, " err_code %s", wire.Truncate(e.ErrCode, 64))
	}
	if e.ErrCodeDes != "" {
		fmt.Fprintf(&b, ": %s", wire.Truncate(e.ErrCodeDes, 200))
	}
	return b.String()
}

// Check returns a *Error unless fields (an APIv2 answer) say
// return_code SUCCESS and, when present, result_code SUCCESS.
func Check(fields map[string]string) error {
	rc, res := fields["return_code"], fields["result_code"]
	if rc == "SUCCESS" && (res == "" || res == "SUCCESS") {
		return nil
	}
	return &Error{ReturnCode: rc, ReturnMsg: fields["return_msg"], ResultCode: res, ErrCode: fields["err_code"], ErrCodeDes: fields["err_code_des"]}
}

// Transport is an [http.RoundTripper] for WeChat Pay's APIv2 (XML)
// endpoints. The caller posts an XML body with the business fields; the
// transport adds nonce_str (unless present), mch_id (when MerchantID is
// set and the body has none) and sign, computed with the sign_type the
// body names (HMAC-SHA256 when it names none, in which case it adds
// sign_type=HMAC-SHA256 too). It then checks the sign of the answer: a
// response with return_code SUCCESS and a missing or wrong sign is closed
// and an error wrapping wechatpay.ErrMissingSignature or wechatpay.ErrBadSignature is
// returned. Answers with another return_code are not signed by WeChat Pay
// and are returned unverified (wechatpay.IsVerified reports false); non-2xx
// responses too. Use Check on the parsed answer.
//
// Endpoints whose successful answer is not XML (APIv2 bill downloads) need
// a request context from wechatpay.WithoutResponseVerification; their
// responses are streamed unverified.
//
// Some APIv2 endpoints (refunds, reversals, red packets, transfers)
// require mutual TLS with the merchant API certificate. Configure it on
// Base the usual Go way:
//
//	cert, err := tls.LoadX509KeyPair("apiclient_cert.pem", "apiclient_key.pem")
//	if err != nil { ... }
//	base := http.DefaultTransport.(*http.Transport).Clone()
//	base.TLSClientConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
//	client := &http.Client{Transport: &apiv2.Transport{MerchantID: "1900000001", Key: apiv2Key, Base: base}}
//
// Like Transport, RoundTrip never modifies the caller's request, closes
// its body exactly once and reads bodies only up to MaxBodySize. A
// Transport is safe for concurrent use; do not change its fields after
// the first call. Its String method never prints the key.
type Transport struct {
	// MerchantID is added as mch_id to bodies that have none. Optional.
	MerchantID string
	// Key is the APIv2 key (32 characters, set in the merchant platform;
	// not the APIv3 key). Required.
	Key string
	// SignType is used for bodies without sign_type. Empty means
	// HMAC-SHA256 (and sign_type=HMAC-SHA256 is added to the body);
	// SignTypeMD5 signs with MD5 and adds no sign_type, which WeChat Pay
	// reads as MD5 (for the few endpoints that refuse sign_type).
	SignType string
	// Base sends the request. Nil means http.DefaultTransport.
	Base http.RoundTripper
	// BaseURL is the merchant's API host. Empty, or one of WeChat Pay's
	// hosts, means the Transport signs for WeChat Pay's APIv2 hosts
	// (api.mch, api2.mch, apihk.mch and fraud.mch.weixin.qq.com) over
	// https; any other value (a sandbox) means that host alone. A request
	// to another host fails with wechatpay.ErrHostNotAllowed before
	// anything is sent: an APIv2 sign carries no timestamp, so a signed
	// body handed to another host could be replayed for ever.
	BaseURL string
	// MaxBodySize bounds request and response bodies. Zero means
	// DefaultMaxBodySize (1 MiB).
	MaxBodySize int64
	// UserAgent is set when the request has none. Empty means a default
	// that names this library.
	UserAgent string

	hosts atomic.Pointer[allowedHosts] // from BaseURL, on first use
}

var _ http.RoundTripper = (*Transport)(nil)

// String describes t without its key.
func (t *Transport) String() string {
	return fmt.Sprintf("apiv2.Transport{MerchantID: %q, Key: %s, SignType: %q}", t.MerchantID, wire.Redacted(t.Key != ""), t.SignType)
}

// GoString is String, so that %#v does not print the key either.
func (t *Transport) GoString() string { return t.String() }

func (t *Transport) maxBody() int64 {
	if t.MaxBodySize > 0 {
		return t.MaxBodySize
	}
	return DefaultMaxBodySize
}

// RoundTrip signs req, sends it with Base and checks the answer's sign.
// See the type's documentation.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := wire.ReadRequestBody(req, t.maxBody())
	if err != nil {
		return nil, err
	}
	if t.Key == "" {
		return nil, errors.New("wechatpay: Transport needs Key (the APIv2 key)")
	}
	if req.URL == nil {
		return nil, errors.New("wechatpay: request has no URL")
	}
	if err := t.checkHost(req.URL); err != nil {
		return nil, err
	}
	fields, err := parseV2(body)
	if err != nil {
		return nil, fmt.Errorf("wechatpay: APIv2 request body: %w", err)
	}
	fields = slices.DeleteFunc(fields, func(f v2Field) bool { return f.name == "sign" })
	params := v2Map(fields)
	signType, named := params["sign_type"]
	if !named {
		signType = t.SignType
		if signType == "" {
			signType = SignTypeHMACSHA256
		}
		if signType != SignTypeMD5 {
			fields = append(fields, v2Field{"sign_type", signType})
		}
	}
	if signType != SignTypeHMACSHA256 && signType != SignTypeMD5 {
		return nil, fmt.Errorf("wechatpay: APIv2 request: unsupported sign_type %q (want %s or %s)", wire.Truncate(signType, 20), SignTypeHMACSHA256, SignTypeMD5)
	}
	if _, ok := params["mch_id"]; !ok && t.MerchantID != "" {
		fields = append(fields, v2Field{"mch_id", t.MerchantID})
	}
	if params["nonce_str"] == "" {
		fields = slices.DeleteFunc(fields, func(f v2Field) bool { return f.name == "nonce_str" })
		fields = append(fields, v2Field{"nonce_str", wire.NewNonce()})
	}
	sign, err := Sign(v2Map(fields), t.Key, signType)
	if err != nil {
		return nil, err
	}
	out := encodeV2(append(fields, v2Field{"sign", sign}))

	r2 := req.Clone(req.Context())
	r2.Body = io.NopCloser(bytes.NewReader(out))
	r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(out)), nil }
	r2.ContentLength = int64(len(out))
	if r2.Header.Get("Content-Type") == "" {
		r2.Header.Set("Content-Type", "text/xml; charset=utf-8")
	}
	if r2.Header.Get("User-Agent") == "" {
		r2.Header.Set("User-Agent", wire.UserAgent(t.UserAgent))
	}
	resp, err := wire.Base(t.Base).RoundTrip(r2)
	if err != nil {
		return nil, err
	}
	wire.ForgetVerified(resp)
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		resp.Body.Close() // WeChat Pay does not redirect: never follow one
		return nil, fmt.Errorf("wechatpay: APIv2 %s answered HTTP %d, a redirect: refused", r2.URL.Path, resp.StatusCode)
	}
	ok2xx := resp.StatusCode >= 200 && resp.StatusCode < 300
	if ok2xx && wire.UnverifiedAllowed(r2) {
		return resp, nil
	}
	rbody, err := wire.ReadResponseBody(resp, r2.Method, t.maxBody())
	if err != nil {
		return nil, fmt.Errorf("wechatpay: reading APIv2 response of %s: %w", r2.URL.Path, err)
	}
	if ok2xx {
		rfields, err := parseV2(rbody)
		if err != nil {
			return nil, fmt.Errorf("wechatpay: APIv2 response of %s: %w", r2.URL.Path, err)
		}
		answer := v2Map(rfields)
		if answer["return_code"] == "SUCCESS" {
			if err := Verify(answer, t.Key, signType); err != nil {
				return nil, fmt.Errorf("wechatpay: APIv2 response of %s: %w", r2.URL.Path, err)
			}
			wire.MarkVerified(resp.Header)
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(rbody))
	resp.ContentLength = int64(len(rbody))
	return resp, nil
}

// Post posts params to an APIv2 endpoint with client, whose Transport
// should be a *Transport (it adds nonce_str and sign), and returns the
// answer's fields. The answer must have been verified by the transport
// and say SUCCESS (see Check); otherwise the error is a *Error, or
// says why the answer cannot be trusted.
func Post(ctx context.Context, client *http.Client, url string, params map[string]string) (map[string]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(EncodeXML(params)))
	if err != nil {
		return nil, fmt.Errorf("wechatpay: APIv2: %w", err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := wire.ReadAll(resp.Body, -1, DefaultMaxBodySize)
	if err != nil {
		return nil, fmt.Errorf("wechatpay: APIv2: reading answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("wechatpay: APIv2 %s: HTTP %d", req.URL.Path, resp.StatusCode)
	}
	fields, err := ParseXML(b)
	if err != nil {
		return nil, fmt.Errorf("wechatpay: APIv2 %s: %w", req.URL.Path, err)
	}
	if err := Check(fields); err != nil {
		return nil, err
	}
	if !wechatpay.IsVerified(resp) {
		return nil, fmt.Errorf("wechatpay: APIv2 %s: answer not verified (is the client's Transport a *Transport?)", req.URL.Path)
	}
	return fields, nil
}

// v2Hosts are WeChat Pay's hosts that serve APIv2 (docs/protocol.md §1.6,
// §5).
var v2Hosts = []string{"api.mch.weixin.qq.com", "api2.mch.weixin.qq.com", "apihk.mch.weixin.qq.com", "fraud.mch.weixin.qq.com"}

// allowedHosts is the scheme and the hosts a Transport signs for.
type allowedHosts struct {
	scheme string
	hosts  []string
}

// allowed returns the hosts t signs for, parsing BaseURL on first use.
func (t *Transport) allowed() (*allowedHosts, error) {
	if a := t.hosts.Load(); a != nil {
		return a, nil
	}
	a := &allowedHosts{scheme: "https", hosts: v2Hosts}
	if t.BaseURL != "" {
		b, err := wire.ParseBaseURL(t.BaseURL)
		if err != nil {
			return nil, fmt.Errorf("wechatpay: APIv2 transport: %w", err)
		}
		if h := wire.NormalHost(b.Scheme, b.Host); !slices.Contains(v2Hosts, h) {
			a = &allowedHosts{scheme: b.Scheme, hosts: []string{h}}
		}
	}
	t.hosts.Store(a)
	return a, nil
}

// checkHost refuses a request for a host t does not sign for.
func (t *Transport) checkHost(u *url.URL) error {
	a, err := t.allowed()
	if err != nil {
		return err
	}
	if u.Scheme == a.scheme && slices.Contains(a.hosts, wire.NormalHost(u.Scheme, u.Host)) {
		return nil
	}
	return fmt.Errorf("%w: %s://%s (APIv2 requests are signed for %s over %s)", wechatpay.ErrHostNotAllowed, wire.Truncate(u.Scheme, 16), wire.Truncate(u.Host, 80), strings.Join(a.hosts, ", "), a.scheme)
}
