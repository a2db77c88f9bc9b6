package apiv2

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/wire"
)

// Config is what FetchCertificates needs. Its String method never
// prints the keys.
type Config struct {
	// MerchantID (mch_id). Required.
	MerchantID string
	// APIv2Key signs the request and checks the answer. Required.
	APIv2Key string
	// APIv3Key decrypts the certificates (WeChat Pay encrypts them with the
	// APIv3 key even on this APIv2 endpoint). Required.
	APIv3Key string
	// BaseURL is the API host; empty means DefaultBaseURL.
	BaseURL string
	// Base sends the request. Nil means http.DefaultTransport. The
	// endpoint does not seem to need mutual TLS (docs/protocol.md §5), but a Base
	// with a client certificate does no harm.
	Base http.RoundTripper
	// Roots, if set, is the pool the certificates must chain to.
	Roots *x509.CertPool
}

// String describes c without its keys.
func (c Config) String() string {
	return fmt.Sprintf("apiv2.Config{MerchantID: %q, APIv2Key: %s, APIv3Key: %s, BaseURL: %q}",
		c.MerchantID, wire.Redacted(c.APIv2Key != ""), wire.Redacted(c.APIv3Key != ""), c.BaseURL)
}

// GoString is String, so that %#v does not print the keys either.
func (c Config) GoString() string { return c.String() }

// v2CertificatesPath is WeChat Pay's path, misspelling included.
const v2CertificatesPath = "/risk/getcertficates"

// FetchCertificates downloads the merchant's platform certificates with
// the APIv2 call POST /risk/getcertficates (docs/protocol.md §5), for merchants
// wired for APIv2: the request carries mch_id, nonce_str,
// sign_type=HMAC-SHA256 and sign; the answer's sign is checked with the
// APIv2 key; a return_code or result_code other than SUCCESS is a
// *Error (err_code CERT_NOT_EXIST: the merchant has not upgraded its API
// certificate); the certificates, a JSON string shaped like the APIv3
// download, are decrypted with the APIv3 key and checked as the Store
// checks downloads. Errors wrap wechatpay.ErrCertificateDownload and never contain a
// key. Feed the result to a Store with AddCertificates.
func FetchCertificates(ctx context.Context, cfg Config) ([]*x509.Certificate, error) {
	certs, err := fetchCertificatesV2(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w for merchant %s (APIv2 getcertficates): %w", wechatpay.ErrCertificateDownload, wire.Truncate(cfg.MerchantID, 32), err)
	}
	return certs, nil
}

func fetchCertificatesV2(ctx context.Context, cfg Config) ([]*x509.Certificate, error) {
	var problems []string
	if cfg.MerchantID == "" {
		problems = append(problems, "MerchantID is empty")
	}
	if cfg.APIv2Key == "" {
		problems = append(problems, "APIv2Key is empty")
	}
	aead, err := wire.NewAEAD(cfg.APIv3Key)
	if err != nil {
		problems = append(problems, err.Error())
	}
	base := cfg.BaseURL
	if base == "" {
		base = wechatpay.DefaultBaseURL
	}
	u, err := wire.ParseBaseURL(base)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("config: %s", strings.Join(problems, "; "))
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + v2CertificatesPath
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""

	client := &http.Client{Transport: &Transport{MerchantID: cfg.MerchantID, Key: cfg.APIv2Key, Base: cfg.Base, BaseURL: cfg.BaseURL}}
	answer, err := Post(ctx, client, u.String(), map[string]string{
		"mch_id":    cfg.MerchantID,
		"sign_type": SignTypeHMACSHA256,
	})
	if err != nil {
		return nil, err
	}
	if id := answer["mch_id"]; id != "" && id != cfg.MerchantID {
		return nil, fmt.Errorf("answer is for merchant %q", wire.Truncate(id, 32))
	}
	list := answer["certificates"]
	if list == "" {
		return nil, errors.New("answer has no certificates")
	}
	parsed, err := wire.ParseDownload([]byte(list), aead, time.Now(), cfg.Roots)
	if err != nil {
		return nil, err
	}
	certs := make([]*x509.Certificate, len(parsed))
	for i, c := range parsed {
		certs[i] = c.X509
	}
	return certs, nil
}
