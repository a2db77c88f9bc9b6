package wechatpay

import (
	"crypto"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// A Signer computes the Authorization header of APIv3 requests for one
// merchant. Its key may be any RSA crypto.Signer, so keys held in a KMS or
// HSM work. A Signer is safe for concurrent use; do not change its fields
// after first use. Its String method never prints the key.
type Signer struct {
	// MerchantID is the calling merchant (for a service provider, the
	// sp_mchid). Required.
	MerchantID string
	// CertificateSerial is the serial of the merchant API certificate
	// (apiclient_cert.pem), not a platform certificate. Required.
	CertificateSerial string
	// Key is the merchant API private key. Required.
	Key crypto.Signer

	now func() time.Time // test hook; nil means time.Now
}

func (s *Signer) check() error {
	var missing []string
	if s.MerchantID == "" {
		missing = append(missing, "MerchantID")
	}
	if s.CertificateSerial == "" {
		missing = append(missing, "CertificateSerial")
	}
	if s.Key == nil {
		missing = append(missing, "Key")
	}
	if len(missing) > 0 {
		return fmt.Errorf("wechatpay: signer: missing %s", strings.Join(missing, ", "))
	}
	return nil
}

// Authorization signs a request with a fresh nonce and the current time and
// returns the value of its Authorization header. uri is the raw
// request-target (url.URL.RequestURI()), body the exact bytes sent.
func (s *Signer) Authorization(method, uri string, body []byte) (string, error) {
	now := time.Now
	if s.now != nil {
		now = s.now
	}
	var nonce [32]byte
	wire.PutNonce(&nonce)
	return s.authorization(method, uri, body, now().Unix(), nonce[:])
}

// AuthorizationAt is Authorization with a given timestamp (Unix seconds)
// and nonce, for known-answer tests and for debugging a SIGN_ERROR.
func (s *Signer) AuthorizationAt(method, uri string, body []byte, timestamp int64, nonce string) (string, error) {
	return s.authorization(method, uri, body, timestamp, []byte(nonce))
}

// authorization hashes the signed message as it goes, without building
// it, and writes the header into one buffer.
func (s *Signer) authorization(method, uri string, body []byte, timestamp int64, nonce []byte) (string, error) {
	if err := s.check(); err != nil {
		return "", err
	}
	var tsBuf [20]byte
	ts := strconv.AppendInt(tsBuf[:0], timestamp, 10)
	sig, err := wire.SignDigest(s.Key, wire.RequestDigest(method, uri, ts, nonce, body))
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(len(wire.SchemeRSA) + len(s.MerchantID) + len(nonce) + len(ts) + len(s.CertificateSerial) +
		base64.StdEncoding.EncodedLen(len(sig)) + len(` mchid="",nonce_str="",timestamp="",serial_no="",signature=""`))
	b.WriteString(wire.SchemeRSA)
	b.WriteString(` mchid="`)
	b.WriteString(s.MerchantID)
	b.WriteString(`",nonce_str="`)
	b.Write(nonce)
	b.WriteString(`",timestamp="`)
	b.Write(ts)
	b.WriteString(`",serial_no="`)
	b.WriteString(s.CertificateSerial)
	b.WriteString(`",signature="`)
	wire.WriteBase64(&b, sig)
	b.WriteString(`"`)
	return b.String(), nil
}

// String describes the signer without its key.
func (s *Signer) String() string {
	return fmt.Sprintf("wechatpay.Signer{MerchantID: %q, CertificateSerial: %q, Key: [redacted]}", s.MerchantID, s.CertificateSerial)
}

// GoString is String, so that %#v does not print the key either.
func (s *Signer) GoString() string { return s.String() }
