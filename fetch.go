package wechatpay

import (
	"context"
	"crypto/cipher"
	"crypto/rsa"
	"crypto/x509"
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
// (docs/protocol.md §4.1).
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

// parseDownload decrypts and checks the certificates of a download body
// (see wire.ParseDownload) into the store's keys.
func parseDownload(body []byte, aead cipher.AEAD, now time.Time, roots *x509.CertPool) ([]*storedKey, error) {
	certs, err := wire.ParseDownload(body, aead, now, roots)
	if err != nil {
		return nil, err
	}
	keys := make([]*storedKey, len(certs))
	for i, c := range certs {
		keys[i] = newStoredKey(c.X509, c.Key, c.NotAfter)
	}
	return keys, nil
}

// fetchCertificates downloads r's platform certificates with a request
// signed by r's signer but sent without response verification through a
// Transport (that would re-enter the store). It returns the body and
// headers as WeChat Pay sent them, for checkDownload.
func fetchCertificates(ctx context.Context, r *merchant) (body []byte, header http.Header, err error) {
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
	req.Header.Set("User-Agent", wire.UserAgent(r.userAgent))
	resp, err := wire.Base(r.base).RoundTrip(req)
	if err != nil {
		return nil, nil, err
	}
	body, err = wire.ReadResponseBody(resp, http.MethodGet, maxCertResponse)
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
func checkDownload(ctx context.Context, r *merchant, body []byte, header http.Header, now time.Time, roots *x509.CertPool, trusted func(serial string) *rsa.PublicKey) ([]*storedKey, error) {
	return checkDownloadAt(ctx, r, body, header, now, now, roots, trusted)
}

// checkDownloadAt is checkDownload with the certificates' validity checked
// as of validAt and the signature's timestamp as of signedAt: for a
// download read back from a Cache, validAt is now and signedAt the time
// WeChat Pay signed it.
func checkDownloadAt(ctx context.Context, r *merchant, body []byte, header http.Header, validAt, signedAt time.Time, roots *x509.CertPool, trusted func(serial string) *rsa.PublicKey) ([]*storedKey, error) {
	keys, err := parseDownload(body, r.aead, validAt, roots)
	if err != nil {
		return nil, err
	}
	downloaded := make(map[string]*rsa.PublicKey, len(keys))
	for _, k := range keys {
		downloaded[k.serial] = k.pub
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
