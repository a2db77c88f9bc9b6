package wechatpaytest

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/wire"
)

// ErrRequestSerial is returned (wrapped) by DecryptField when the
// request's Wechatpay-Serial does not name a key of the merchant that
// decrypts the field: WeChat Pay answers such requests 400 PARAM_ERROR.
var ErrRequestSerial = errors.New("wechatpaytest: " + msgRequestSerial)

// DecryptField decrypts a sensitive field (RSA-OAEP, SHA-1, Base64) of a
// request received by a handler registered with Handle, as WeChat Pay
// does (docs/protocol.md §7): with the private key of the merchant's platform
// certificate, or WeChat Pay public key, that the request's
// Wechatpay-Serial header names. The certificate must be listed and valid
// now. If the header is missing or names another key than the one used,
// the error wraps ErrRequestSerial; answer it with
//
//	WriteError(w, http.StatusBadRequest, "PARAM_ERROR", "平台证书序列号Wechatpay-Serial错误")
func (s *Server) DecryptField(r *http.Request, ciphertext string) (string, error) {
	id := MerchantIDFrom(r.Context())
	if id == "" {
		return "", errors.New("wechatpaytest: DecryptField: request did not come through the sandbox")
	}
	m := s.merchant(id)
	serial := r.Header.Get(wire.HeaderSerial)
	key := s.decryptionKey(m, serial)
	if key == nil {
		return "", fmt.Errorf("%w: merchant %s has no valid key %q", ErrRequestSerial, id, serial)
	}
	pt, err := wechatpay.DecryptOAEP(key, ciphertext)
	if err != nil {
		return "", fmt.Errorf("%w: the field was not encrypted with key %q", ErrRequestSerial, serial)
	}
	return string(pt), nil
}

// decryptionKey returns the private key of m named by serial: its public
// key, or a listed platform certificate valid now; else nil.
func (s *Server) decryptionKey(m *merchant, serial string) *rsa.PrivateKey {
	if serial == "" {
		return nil
	}
	if m.publicKey != nil && serial == m.info.PublicKeyID {
		return m.publicKey
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range m.certs {
		if c.serial == serial && !now.Before(c.cert.NotBefore) && now.Before(c.cert.NotAfter) {
			return c.key
		}
	}
	return nil
}

// EncryptField encrypts a sensitive response field for merchant id as
// WeChat Pay does: RSA-OAEP (SHA-1) with the public key of the merchant
// API certificate, so that the merchant decrypts it with its private key.
func (s *Server) EncryptField(merchantID, plaintext string) (string, error) {
	m := s.merchant(merchantID)
	return wire.EncryptOAEP(&m.info.PrivateKey.PublicKey, []byte(plaintext))
}

// SetCertificateExpiry replaces the listed platform certificate with the
// given serial by a re-issued one with the same serial and key that
// expires at notAfter (truncated to the second), like ExpireCertificate
// but at any time, so that a test can let a certificate expire while a
// client holds it. If it signs responses, it keeps doing so.
func (s *Server) SetCertificateExpiry(merchantID, serial string, notAfter time.Time) {
	m := s.merchant(merchantID)
	s.mu.Lock()
	old := m.certs[s.listed(m, serial, "SetCertificateExpiry")]
	s.mu.Unlock()

	pc := s.issueWith(old.key, old.cert.SerialNumber, old.cert.NotBefore, notAfter.Truncate(time.Second))

	s.mu.Lock()
	defer s.mu.Unlock()
	for i, c := range m.certs {
		if c == old {
			m.certs[i] = pc
		}
	}
	if m.signing == old {
		m.signing = pc
	}
}
