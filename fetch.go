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

	"github.com/wxpaykit/wechatpay/internal/wire"
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

// ParseCertificates decrypts and checks the certificates of a download
// body with the APIv3 key's AEAD, as of now; roots, if not nil, is the pool
// they must chain to. Every certificate must decrypt, parse as PEM, carry
// the serial its entry names and an RSA key of at least 2048 bits, or the
// whole download is refused. Certificates outside their validity are left
// out; if none remains, that is an error. Validity ends at the earlier of
// the certificate's NotAfter and its entry's expire_time, which WeChat Pay
// moves up before retiring a certificate early (PROTOCOL §4.4).
func ParseCertificates(body []byte, aead cipher.AEAD, now time.Time, roots *x509.CertPool) ([]*x509.Certificate, error) {
	keys, err := parseDownload(body, aead, now, roots)
	if err != nil {
		return nil, err
	}
	certs := make([]*x509.Certificate, len(keys))
	for i, k := range keys {
		certs[i] = k.cert
	}
	return certs, nil
}

// certEntry is one entry of a download as it arrives: WeChat Pay's own
// documentation spells the key "expire_time " with a space (PROTOCOL
// §4.2), so both spellings are read.
type certEntry struct {
	wire.CertificateData
	ExpireTimeTypo string `json:"expire_time "`
}

func parseDownload(body []byte, aead cipher.AEAD, now time.Time, roots *x509.CertPool) ([]*storedKey, error) {
	var resp struct {
		Data []certEntry `json:"data"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("response is not the certificate JSON: %w", err)
	}
	if len(resp.Data) == 0 {
		return nil, errors.New("response lists no certificates")
	}
	var keys []*storedKey
	var skipped []string
	decryptFailures := 0
	for _, d := range resp.Data {
		k, err := parseCertificate(d, aead, roots, now)
		var skip errSkip
		switch {
		case errors.As(err, &skip):
			skipped = append(skipped, skip.reason)
		case errors.Is(err, ErrDecrypt):
			decryptFailures++
		case err != nil:
			return nil, err
		default:
			keys = append(keys, k)
		}
	}
	switch {
	case decryptFailures == len(resp.Data):
		return nil, fmt.Errorf("no certificate decrypts: the APIv3 key is wrong, or the download was altered: %w", ErrDecrypt)
	case decryptFailures > 0:
		return nil, fmt.Errorf("%d of %d certificates do not decrypt: %w", decryptFailures, len(resp.Data), ErrDecrypt)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no usable certificate: %s", strings.Join(skipped, "; "))
	}
	return keys, nil
}

// errSkip marks a certificate that is genuine but not usable now.
type errSkip struct{ reason string }

func (e errSkip) Error() string { return e.reason }

func parseCertificate(d certEntry, aead cipher.AEAD, roots *x509.CertPool, now time.Time) (*storedKey, error) {
	serial := wire.Truncate(d.SerialNo, 64)
	if d.EncryptCertificate.Algorithm != wire.AlgorithmAESGCM {
		return nil, fmt.Errorf("certificate %s: unsupported algorithm %q", serial, wire.Truncate(d.EncryptCertificate.Algorithm, 32))
	}
	pemBytes, err := wire.Open(aead, d.EncryptCertificate.Nonce, d.EncryptCertificate.AssociatedData, d.EncryptCertificate.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", serial, err)
	}
	c, err := LoadCertificate(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", serial, err)
	}
	if got := wire.CertSerial(c); !strings.EqualFold(got, d.SerialNo) {
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
	notAfter := c.NotAfter
	for _, s := range []string{d.ExpireTime, d.ExpireTimeTypo} {
		// An expire_time that does not parse is ignored: the certificate's
		// own NotAfter still bounds it.
		if t, err := time.Parse(time.RFC3339, strings.TrimSpace(s)); err == nil && t.Before(notAfter) {
			notAfter = t
		}
	}
	if now.Before(c.NotBefore) {
		return nil, errSkip{fmt.Sprintf("certificate %s is not valid before %s", serial, c.NotBefore.Format(time.RFC3339))}
	}
	if !now.Before(notAfter) {
		return nil, errSkip{fmt.Sprintf("certificate %s expired at %s", serial, notAfter.Format(time.RFC3339))}
	}
	return &storedKey{pub: pub, cert: c, notAfter: notAfter}, nil
}

// fetchCertificates downloads r's platform certificates with a request
// signed by r's signer but sent without response verification through a
// Transport (that would re-enter the store). It returns the body and
// headers as WeChat Pay sent them, for checkDownload.
func fetchCertificates(ctx context.Context, r *registration) (body []byte, header http.Header, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.certURL, nil)
	if err != nil {
		return nil, nil, err
	}
	auth, err := r.signer.Authorization(http.MethodGet, req.URL.RequestURI(), nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgentOr(r.userAgent))
	resp, err := baseOr(r.base).RoundTrip(req)
	if err != nil {
		return nil, nil, err
	}
	body, err = readResponseBody(resp, http.MethodGet, maxCertResponse)
	if err != nil {
		return nil, nil, fmt.Errorf("reading response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		// Not verified: an error answer is a reason to try again later,
		// never a reason to trust anything.
		apiErr := newAPIError(resp, body, false)
		if resp.StatusCode == http.StatusNotFound && apiErr.Code == "RESOURCE_NOT_EXISTS" {
			return nil, nil, ErrNoPlatformCertificates
		}
		return nil, nil, apiErr
	}
	return body, resp.Header, nil
}

// checkDownload runs every check of a download on body and header, as of
// now: the AEAD with r's APIv3 key, the certificates themselves (see
// parseCertificate), and the download's own signature, made by one of
// its certificates or by trusted, a key the store already holds.
func checkDownload(ctx context.Context, r *registration, body []byte, header http.Header, now time.Time, roots *x509.CertPool, trusted func(serial string) *rsa.PublicKey) ([]*storedKey, error) {
	return checkDownloadAt(ctx, r, body, header, now, now, roots, trusted)
}

// checkDownloadAt is checkDownload with the certificates' validity checked
// as of validAt and the signature's timestamp as of signedAt: for a
// download read back from a Cache, validAt is now and signedAt the time
// WeChat Pay signed it.
func checkDownloadAt(ctx context.Context, r *registration, body []byte, header http.Header, validAt, signedAt time.Time, roots *x509.CertPool, trusted func(serial string) *rsa.PublicKey) ([]*storedKey, error) {
	keys, err := parseDownload(body, r.aead, validAt, roots)
	if err != nil {
		return nil, err
	}
	downloaded := make(map[string]*rsa.PublicKey, len(keys))
	for _, k := range keys {
		downloaded[wire.CertSerial(k.cert)] = k.pub
	}
	v := &Verifier{MerchantID: r.id, Keys: keyFunc(func(serial string) *rsa.PublicKey {
		if k := downloaded[strings.ToUpper(serial)]; k != nil {
			return k
		}
		return trusted(serial)
	}), now: func() time.Time { return signedAt }}
	if err := v.Verify(ctx, header, body); err != nil {
		return nil, fmt.Errorf("the download's own signature: %w", err)
	}
	return keys, nil
}

// keyFunc is a KeySource over a lookup function that never fetches.
type keyFunc func(serial string) *rsa.PublicKey

func (f keyFunc) PublicKey(_ context.Context, _, serial string) (*rsa.PublicKey, error) {
	if k := f(serial); k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownSerial, wire.Truncate(serial, 64))
}
