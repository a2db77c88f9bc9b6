package wechatpay

import (
	"context"
	"crypto/cipher"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxCertResponse bounds a certificate download; a real one is a few KiB.
const maxCertResponse = 1 << 20

// certificatesURL returns the download URL for a base URL: the global host
// serves /v3/global/certificates, every other host /v3/certificates
// (PROTOCOL §4.1).
func certificatesURL(base *url.URL) string {
	path := "/v3/certificates"
	if strings.EqualFold(base.Hostname(), "apihk.mch.weixin.qq.com") {
		path = "/v3/global/certificates"
	}
	u := *base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawPath = ""
	u.RawQuery = ""
	u.Fragment = ""
	return u.String()
}

// CertificatesResponse is the JSON of a platform certificate download
// (PROTOCOL §4.2). The effective_time and expire_time fields are advisory:
// validity is read from the certificates themselves.
type CertificatesResponse struct {
	Data []CertificateData `json:"data"`
}

// CertificateData is one entry of CertificatesResponse.
type CertificateData struct {
	SerialNo           string            `json:"serial_no"`
	EffectiveTime      string            `json:"effective_time,omitempty"`
	ExpireTime         string            `json:"expire_time,omitempty"`
	EncryptCertificate EncryptedResource `json:"encrypt_certificate"`
}

// EncryptedResource is an AEAD_AES_256_GCM ciphertext as WeChat Pay sends
// it in certificate downloads and callbacks.
type EncryptedResource struct {
	Algorithm      string `json:"algorithm"`
	Nonce          string `json:"nonce"`
	AssociatedData string `json:"associated_data"`
	Ciphertext     string `json:"ciphertext"`
	OriginalType   string `json:"original_type,omitempty"`
}

// algorithmAESGCM is the only resource algorithm supported.
const algorithmAESGCM = "AEAD_AES_256_GCM"

// ParseCertificates decrypts and checks the certificates of a download
// body with the APIv3 key's AEAD, as of now; roots, if not nil, is the pool
// they must chain to. Every certificate must decrypt, parse as PEM, carry
// the serial its entry names and an RSA key of at least 2048 bits, or the
// whole download is refused. Certificates outside their validity are left
// out; if none remains, that is an error.
func ParseCertificates(body []byte, aead cipher.AEAD, now time.Time, roots *x509.CertPool) ([]*x509.Certificate, error) {
	var resp CertificatesResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("response is not the certificate JSON: %w", err)
	}
	if len(resp.Data) == 0 {
		return nil, errors.New("response lists no certificates")
	}
	var certs []*x509.Certificate
	var skipped []string
	decryptFailures := 0
	for _, d := range resp.Data {
		c, err := parseCertificate(d, aead, roots, now)
		var skip errSkip
		switch {
		case errors.As(err, &skip):
			skipped = append(skipped, skip.reason)
		case errors.Is(err, ErrDecrypt):
			decryptFailures++
		case err != nil:
			return nil, err
		default:
			certs = append(certs, c)
		}
	}
	switch {
	case decryptFailures == len(resp.Data):
		return nil, fmt.Errorf("no certificate decrypts: the APIv3 key is wrong, or the download was altered: %w", ErrDecrypt)
	case decryptFailures > 0:
		return nil, fmt.Errorf("%d of %d certificates do not decrypt: %w", decryptFailures, len(resp.Data), ErrDecrypt)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("no usable certificate: %s", strings.Join(skipped, "; "))
	}
	return certs, nil
}

// errSkip marks a certificate that is genuine but not usable now.
type errSkip struct{ reason string }

func (e errSkip) Error() string { return e.reason }

func parseCertificate(d CertificateData, aead cipher.AEAD, roots *x509.CertPool, now time.Time) (*x509.Certificate, error) {
	serial := truncate(d.SerialNo, 64)
	if d.EncryptCertificate.Algorithm != algorithmAESGCM {
		return nil, fmt.Errorf("certificate %s: unsupported algorithm %q", serial, truncate(d.EncryptCertificate.Algorithm, 32))
	}
	pemBytes, err := OpenResource(aead, d.EncryptCertificate.Nonce, d.EncryptCertificate.AssociatedData, d.EncryptCertificate.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", serial, err)
	}
	c, err := LoadCertificate(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", serial, err)
	}
	if got := certSerial(c); !strings.EqualFold(got, d.SerialNo) {
		return nil, fmt.Errorf("certificate listed as %s has serial %s", serial, got)
	}
	pub, ok := c.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("certificate %s: key is %T, want RSA", serial, c.PublicKey)
	}
	if pub.N.BitLen() < 2048 {
		return nil, fmt.Errorf("certificate %s: RSA key is %d bits, want at least 2048", serial, pub.N.BitLen())
	}
	if roots != nil {
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			return nil, fmt.Errorf("certificate %s does not chain to the configured roots: %w", serial, err)
		}
	}
	if now.Before(c.NotBefore) {
		return nil, errSkip{fmt.Sprintf("certificate %s is not valid before %s", serial, c.NotBefore.Format(time.RFC3339))}
	}
	if !now.Before(c.NotAfter) {
		return nil, errSkip{fmt.Sprintf("certificate %s expired at %s", serial, c.NotAfter.Format(time.RFC3339))}
	}
	return c, nil
}

// fetchCertificates downloads m's platform certificates with a request
// signed by m's signer but sent without response verification through a
// Transport (that would re-enter the store), and checks them with
// checkDownload as of now. It returns the download as received too, for
// the Store's Cache.
func fetchCertificates(ctx context.Context, m *merchant, roots *x509.CertPool, now time.Time, trusted func(serial string) *rsa.PublicKey) (certs []*x509.Certificate, raw *cachedDownload, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w for merchant %s: %w", ErrCertificateDownload, m.id, err)
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.certURL, nil)
	if err != nil {
		return nil, nil, err
	}
	auth, err := m.signer.Authorization(http.MethodGet, req.URL.RequestURI(), nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgentOr(m.userAgent))
	resp, err := baseOr(m.base).RoundTrip(req)
	if err != nil {
		return nil, nil, err
	}
	body, err := readAll(resp.Body, resp.ContentLength, maxCertResponse)
	resp.Body.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("reading response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		apiErr := newAPIError(resp, body, false)
		if resp.StatusCode == http.StatusNotFound && apiErr.Code == "RESOURCE_NOT_EXISTS" {
			return nil, nil, ErrNoPlatformCertificates
		}
		return nil, nil, apiErr
	}
	certs, err = checkDownload(ctx, m, resp.Header, body, roots, now, now, trusted)
	if err != nil {
		return nil, nil, err
	}
	return certs, newCachedDownload(m.id, m.certURL, now, resp.Header, body), nil
}

// checkDownload runs every check on a certificate download, fresh or read
// back from a Cache: the certificates decrypt with m's APIv3 key, parse,
// carry their serials and RSA keys of 2048 bits or more, chain to roots if
// set, and are valid at validAt (those that are not are left out); and the
// download's own signature verifies, as of signedAt, with one of them or
// with trusted, a key the store already holds.
func checkDownload(ctx context.Context, m *merchant, h http.Header, body []byte, roots *x509.CertPool, validAt, signedAt time.Time, trusted func(serial string) *rsa.PublicKey) ([]*x509.Certificate, error) {
	certs, err := ParseCertificates(body, m.aead, validAt, roots)
	if err != nil {
		return nil, err
	}
	downloaded := make(map[string]*rsa.PublicKey, len(certs))
	for _, c := range certs {
		downloaded[certSerial(c)] = c.PublicKey.(*rsa.PublicKey)
	}
	v := &Verifier{MerchantID: m.id, Keys: keyFunc(func(serial string) *rsa.PublicKey {
		if k := downloaded[strings.ToUpper(serial)]; k != nil {
			return k
		}
		return trusted(serial)
	}), now: func() time.Time { return signedAt }}
	if err := v.Verify(ctx, h, body); err != nil {
		return nil, fmt.Errorf("the download's own signature: %w", err)
	}
	return certs, nil
}

// keyFunc is a KeySource over a lookup function that never fetches.
type keyFunc func(serial string) *rsa.PublicKey

func (f keyFunc) PublicKey(_ context.Context, _, serial string) (*rsa.PublicKey, error) {
	if k := f(serial); k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownSerial, truncate(serial, 64))
}
