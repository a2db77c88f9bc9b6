package wechatpay

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// V2Config is what FetchCertificatesV2 needs. Its String method never
// prints the keys.
type V2Config struct {
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
	// endpoint does not seem to need mutual TLS (PROTOCOL §5), but a Base
	// with a client certificate does no harm.
	Base http.RoundTripper
	// Roots, if set, is the pool the certificates must chain to.
	Roots *x509.CertPool
}

// String describes c without its keys.
func (c V2Config) String() string {
	return fmt.Sprintf("wechatpay.V2Config{MerchantID: %q, APIv2Key: %s, APIv3Key: %s, BaseURL: %q}",
		c.MerchantID, redacted(c.APIv2Key != ""), redacted(c.APIv3Key != ""), c.BaseURL)
}

// GoString is String, so that %#v does not print the keys either.
func (c V2Config) GoString() string { return c.String() }

// v2CertificatesPath is WeChat Pay's path, misspelling included.
const v2CertificatesPath = "/risk/getcertficates"

// FetchCertificatesV2 downloads the merchant's platform certificates with
// the APIv2 call POST /risk/getcertficates (PROTOCOL §5), for merchants
// wired for APIv2: the request carries mch_id, nonce_str,
// sign_type=HMAC-SHA256 and sign; the answer's sign is checked with the
// APIv2 key; a return_code or result_code other than SUCCESS is a
// *V2Error (err_code CERT_NOT_EXIST: the merchant has not upgraded its API
// certificate); the certificates, a JSON string shaped like the APIv3
// download, are decrypted with the APIv3 key and checked as the Store
// checks downloads. Errors wrap ErrCertificateDownload and never contain a
// key. Feed the result to a Store with AddCertificates.
func FetchCertificatesV2(ctx context.Context, cfg V2Config) ([]*x509.Certificate, error) {
	certs, err := fetchCertificatesV2(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w for merchant %s (APIv2 getcertficates): %w", ErrCertificateDownload, wire.Truncate(cfg.MerchantID, 32), err)
	}
	return certs, nil
}

func fetchCertificatesV2(ctx context.Context, cfg V2Config) ([]*x509.Certificate, error) {
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
	u, err := parseBaseURL(cfg.BaseURL)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("config: %s", strings.Join(problems, "; "))
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + v2CertificatesPath
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""

	client := &http.Client{Transport: &V2Transport{MerchantID: cfg.MerchantID, Key: cfg.APIv2Key, Base: cfg.Base}}
	answer, err := PostV2(ctx, client, u.String(), map[string]string{
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
	return ParseCertificates([]byte(list), aead, time.Now(), cfg.Roots)
}

// AddCertificates adds platform certificates of merchantID obtained
// elsewhere, such as from FetchCertificatesV2, to the store, where they
// verify responses and callbacks like downloaded ones. Each must hold an
// RSA key of at least 2048 bits, be valid now, and chain to
// StoreOptions.Roots if set, or nothing is added. A merchant the store
// does not know is added with these certificates only: the store can then
// verify for it but never downloads (call Register to change that). The
// next download of a registered merchant replaces what AddCertificates
// added, as WeChat Pay's list is authoritative.
func (s *Store) AddCertificates(merchantID string, certs []*x509.Certificate) error {
	if merchantID == "" {
		return errors.New("wechatpay: AddCertificates: empty merchant ID")
	}
	if len(certs) == 0 {
		return errors.New("wechatpay: AddCertificates: no certificates")
	}
	now := s.wall()
	for _, c := range certs {
		serial := wire.CertSerial(c)
		pub, ok := c.PublicKey.(*rsa.PublicKey)
		switch {
		case !ok:
			return fmt.Errorf("wechatpay: AddCertificates: certificate %s has a %T key, want RSA", serial, c.PublicKey)
		case pub.N.BitLen() < 2048:
			return fmt.Errorf("wechatpay: AddCertificates: certificate %s has a %d-bit key, want at least 2048", serial, pub.N.BitLen())
		case now.Before(c.NotBefore) || !now.Before(c.NotAfter):
			return fmt.Errorf("wechatpay: AddCertificates: certificate %s is not valid now (%s to %s)", serial, c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339))
		}
		if s.opts.Roots != nil {
			if _, err := c.Verify(x509.VerifyOptions{Roots: s.opts.Roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				return fmt.Errorf("wechatpay: AddCertificates: certificate %s does not chain to the configured roots: %w", serial, err)
			}
		}
	}
	r, err := s.registration(merchantID)
	if err != nil {
		r = &registration{id: merchantID, gen: s.gen.Add(1)}
		r.lastAttempt.Store(int64(never))
		r.lastSuccess.Store(int64(never))
		s.replace(merchantID, r)
	}
	cs := &certSet{reg: r, keys: map[string]*storedKey{}, source: "added"}
	if cur := s.currentSet(r); cur != nil {
		for serial, k := range cur.keys {
			cs.keys[serial] = k
		}
	}
	for _, c := range certs {
		cs.keys[wire.CertSerial(c)] = &storedKey{pub: c.PublicKey.(*rsa.PublicKey), cert: c, notAfter: c.NotAfter}
	}
	s.sets.Add(merchantID, cs)
	return nil
}
