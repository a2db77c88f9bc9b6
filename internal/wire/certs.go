package wire

import (
	"crypto/cipher"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Cert is a platform certificate that passed ParseDownload's checks.
type Cert struct {
	X509     *x509.Certificate
	Key      *rsa.PublicKey
	NotAfter time.Time // the earlier of X509.NotAfter and the listed expire_time
}

// ParseCertificatePEM parses one PEM certificate.
func ParseCertificatePEM(pemBytes []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("wechatpay: certificate: no PEM CERTIFICATE block found")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("wechatpay: certificate: %w", err)
	}
	return c, nil
}

// certEntry is one entry of a download as it arrives: WeChat Pay's own
// documentation spells the key "expire_time " with a space
// (docs/protocol.md §4.2), so both spellings are read.
type certEntry struct {
	CertificateData
	ExpireTimeTypo string `json:"expire_time "`
}

// ParseDownload decrypts and checks the certificates of a download body
// with the APIv3 key's AEAD, as of now; roots, if not nil, is the pool
// they must chain to. Every certificate must decrypt, parse as PEM, carry
// the serial its entry names and an RSA key of at least 2048 bits, or the
// whole download is refused. Certificates outside their validity are left
// out; if none remains, that is an error. Validity ends at the earlier of
// the certificate's NotAfter and its entry's expire_time, which WeChat Pay
// moves up before retiring a certificate early (§4.4).
func ParseDownload(body []byte, aead cipher.AEAD, now time.Time, roots *x509.CertPool) ([]Cert, error) {
	var resp struct {
		Data []certEntry `json:"data"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("response is not the certificate JSON: %w", err)
	}
	if len(resp.Data) == 0 {
		return nil, errors.New("response lists no certificates")
	}
	var keys []Cert
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

func parseCertificate(d certEntry, aead cipher.AEAD, roots *x509.CertPool, now time.Time) (Cert, error) {
	serial := Truncate(d.SerialNo, 64)
	if d.EncryptCertificate.Algorithm != AlgorithmAESGCM {
		return Cert{}, fmt.Errorf("certificate %s: unsupported algorithm %q", serial, Truncate(d.EncryptCertificate.Algorithm, 32))
	}
	pemBytes, err := Open(aead, d.EncryptCertificate.Nonce, d.EncryptCertificate.AssociatedData, d.EncryptCertificate.Ciphertext)
	if err != nil {
		return Cert{}, fmt.Errorf("certificate %s: %w", serial, err)
	}
	c, err := ParseCertificatePEM(pemBytes)
	if err != nil {
		return Cert{}, fmt.Errorf("certificate %s: %w", serial, err)
	}
	if got := CertSerial(c); !strings.EqualFold(got, d.SerialNo) {
		return Cert{}, fmt.Errorf("certificate listed as %s has serial %s", serial, got)
	}
	pub, ok := c.PublicKey.(*rsa.PublicKey)
	if !ok {
		return Cert{}, fmt.Errorf("certificate %s: key is %T, want RSA", serial, c.PublicKey)
	}
	if pub.N.BitLen() < 2048 {
		return Cert{}, fmt.Errorf("certificate %s: RSA key is %d bits, want at least 2048", serial, pub.N.BitLen())
	}
	if roots != nil {
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			return Cert{}, fmt.Errorf("certificate %s does not chain to the configured roots: %w", serial, err)
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
		return Cert{}, errSkip{fmt.Sprintf("certificate %s is not valid before %s", serial, c.NotBefore.Format(time.RFC3339))}
	}
	if !now.Before(notAfter) {
		return Cert{}, errSkip{fmt.Sprintf("certificate %s expired at %s", serial, notAfter.Format(time.RFC3339))}
	}
	return Cert{X509: c, Key: pub, NotAfter: notAfter}, nil
}
