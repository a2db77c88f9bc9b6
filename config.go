package wechatpay

import (
	"crypto"
	"crypto/cipher"
	"crypto/rsa"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// WeChat Pay's API hosts, and the defaults of Transport, Verifier and Store.
const (
	// DefaultBaseURL is WeChat Pay's mainland API host; its backup is
	// api2.mch.weixin.qq.com.
	DefaultBaseURL = "https://api.mch.weixin.qq.com"
	// GlobalBaseURL is WeChat Pay's global (Hong Kong) API host; a Store
	// fetches certificates from /v3/global/certificates there.
	GlobalBaseURL = "https://apihk.mch.weixin.qq.com"
	// DefaultMaxBodySize bounds the request and response bodies a
	// Transport reads into memory when no MaxBodySize is set.
	DefaultMaxBodySize = 8 << 20
	// DefaultMaxSkew is how far a Wechatpay-Timestamp may be from now
	// (docs/protocol.md §2.3).
	DefaultMaxSkew = 5 * time.Minute

	// The defaults of StoreOptions.
	DefaultStoreSize          = 4096
	DefaultRefreshInterval    = 6 * time.Hour
	DefaultMinRefreshInterval = time.Minute
	DefaultFetchTimeout       = 10 * time.Second
)

// Config is everything a merchant needs to call WeChat Pay APIv3. Its
// String method never prints the private key or the APIv3 key.
type Config struct {
	// MerchantID (商户号, mchid) of the calling merchant. Required.
	MerchantID string
	// CertificateSerial is the serial number of the merchant API
	// certificate (apiclient_cert.pem). Required.
	CertificateSerial string
	// PrivateKey is the merchant API private key (apiclient_key.pem): an
	// *rsa.PrivateKey or any RSA crypto.Signer, such as a KMS key. Required.
	PrivateKey crypto.Signer
	// APIv3Key decrypts platform certificates and callbacks; exactly 32
	// bytes. Required unless the merchant uses only a WeChat Pay public key.
	APIv3Key string
	// PublicKeyID (PUB_KEY_ID_...) and PublicKey are the WeChat Pay public
	// key, for merchants in public-key mode or migrating to it. When set,
	// requests carry Wechatpay-Serial: PublicKeyID, so WeChat Pay signs
	// responses with it.
	PublicKeyID string
	PublicKey   *rsa.PublicKey
	// BaseURL is the API host; empty means DefaultBaseURL. The Store fetches
	// certificates relative to it.
	BaseURL string
	// Base sends requests, including certificate downloads. Nil means
	// http.DefaultTransport.
	Base http.RoundTripper
	// Store holds verification keys. Nil means a new Store of the default
	// size for this merchant alone; share one Store among many merchants.
	Store *Store
	// MaxBodySize bounds request and response bodies read into memory.
	// Zero means 8 MiB.
	MaxBodySize int64
	// UserAgent is sent when the caller's request has none. Empty means
	// a descriptive default naming this library.
	UserAgent string
	// Events, if set, receives an event for every response that fails
	// verification (see Verifier.Events). The Store's own events go to
	// StoreOptions.Events.
	Events EventHook
}

// String describes c without its secrets.
func (c Config) String() string {
	return fmt.Sprintf("wechatpay.Config{MerchantID: %q, CertificateSerial: %q, PrivateKey: %s, APIv3Key: %s, PublicKeyID: %q, BaseURL: %q}",
		c.MerchantID, c.CertificateSerial, redacted(c.PrivateKey != nil), redacted(c.APIv3Key != ""), c.PublicKeyID, c.BaseURL)
}

// GoString is String, so that %#v does not print secrets either.
func (c Config) GoString() string { return c.String() }

// parseBaseURL parses an API host URL; empty means DefaultBaseURL.
func parseBaseURL(base string) (*url.URL, error) {
	if base == "" {
		base = DefaultBaseURL
	}
	return wire.ParseBaseURL(base)
}

// check reports every problem of c at once and returns the parsed APIv3
// key (nil without one) and BaseURL. Its error is a configError: one
// fieldError per problem, each naming the Config field it is about, so
// that a program such as the wechatpay command can say which of its own
// inputs to fix (errors.As on interface{ Field() string }, or Unwrap()
// []error for all of them). No message contains a secret.
func (c *Config) check() (cipher.AEAD, *url.URL, error) {
	var errs configError
	add := func(field, format string, args ...any) {
		errs = append(errs, &fieldError{field: field, problem: fmt.Sprintf(format, args...)})
	}
	switch {
	case c.MerchantID == "":
		add("MerchantID", "is empty")
	case strings.ContainsAny(c.MerchantID, "/\x00\r\n"):
		// A Cache names a merchant's entries "<id>" and "<id>/void": a
		// "/" would let one merchant's ID name another's entry.
		add("MerchantID", "%q contains a '/' or a control character; WeChat Pay's merchant IDs are digits", wire.Truncate(c.MerchantID, 64))
	}
	if c.CertificateSerial == "" {
		add("CertificateSerial", "is empty")
	}
	if c.PrivateKey == nil {
		add("PrivateKey", "is nil")
	}
	var aead cipher.AEAD
	if c.APIv3Key != "" {
		var err error
		if aead, err = wire.NewAEAD(c.APIv3Key); err != nil {
			// Only the length is reported, never the key.
			errs = append(errs, &fieldError{field: "APIv3Key", problem: fmt.Sprintf("must be exactly 32 bytes (got %d)", len(c.APIv3Key)), err: ErrAPIv3Key})
		}
	}
	switch {
	case c.PublicKeyID == "" && c.PublicKey != nil:
		add("PublicKeyID", "is empty: PublicKeyID and PublicKey must be set together")
	case c.PublicKeyID != "" && !strings.HasPrefix(c.PublicKeyID, wire.PublicKeyPrefix):
		add("PublicKeyID", "%q does not start with %s", wire.Truncate(c.PublicKeyID, 64), wire.PublicKeyPrefix)
	}
	if c.PublicKeyID != "" && c.PublicKey == nil {
		add("PublicKey", "is nil: PublicKeyID and PublicKey must be set together")
	}
	if c.APIv3Key == "" && c.PublicKey == nil && c.PublicKeyID == "" {
		add("APIv3Key", "is empty, and there is no public key: set APIv3Key (to download platform certificates) or PublicKeyID and PublicKey")
	}
	base := c.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		add("BaseURL", "%q is not an http(s) URL", wire.Truncate(base, 80))
	}
	if len(errs) > 0 {
		return nil, nil, errs
	}
	return aead, u, nil
}

// A fieldError is one problem with one Config field.
type fieldError struct {
	field   string // the name of the Config field
	problem string // what is wrong with it, never its secret value
	err     error  // a sentinel it wraps, or nil
}

func (e *fieldError) Error() string { return "wechatpay: config: " + e.field + " " + e.problem }

// Field names the Config field the problem is about, such as "APIv3Key".
func (e *fieldError) Field() string { return e.field }

// Problem says what is wrong with the field, without the field's name.
func (e *fieldError) Problem() string { return e.problem }

func (e *fieldError) Unwrap() error { return e.err }

// A configError lists every problem of a Config, in field order.
type configError []*fieldError

func (e configError) Error() string {
	var b strings.Builder
	b.WriteString("wechatpay: config: ")
	for i, f := range e {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.field + " " + f.problem)
	}
	return b.String()
}

func (e configError) Unwrap() []error {
	errs := make([]error, len(e))
	for i, f := range e {
		errs[i] = f
	}
	return errs
}

func redacted(set bool) string {
	if set {
		return "[redacted]"
	}
	return "[unset]"
}
