package wechatpaytest

import (
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

// sensitiveFields decrypts the sensitive fields of requests with the key
// the request's Wechatpay-Serial names, and encrypts those of answers for
// the merchant, as WeChat Pay does (docs/protocol.md §7). It holds no
// state of its own. Product parts (profitsharing.go) check their
// encrypted request fields with decrypt.
type sensitiveFields struct {
	merchants *merchants
	ca        *authority
}

// decrypt decrypts ciphertext, a field of r (a request dispatched to a
// route), with the private key of the merchant's platform certificate or
// public key that r's Wechatpay-Serial names; see Server.DecryptField.
func (sf *sensitiveFields) decrypt(r *http.Request, ciphertext string) (string, error) {
	id := MerchantIDFrom(r.Context())
	if id == "" {
		return "", errors.New("wechatpaytest: DecryptField: request did not come through the sandbox")
	}
	m := sf.merchants.get(id)
	serial := r.Header.Get(wire.HeaderSerial)
	key := sf.ca.decryptionKey(m, serial, time.Now())
	if key == nil {
		return "", fmt.Errorf("%w: merchant %s has no valid key %q", ErrRequestSerial, id, serial)
	}
	pt, err := wechatpay.DecryptOAEP(key, ciphertext)
	if err != nil {
		return "", fmt.Errorf("%w: the field was not encrypted with key %q", ErrRequestSerial, serial)
	}
	return string(pt), nil
}

// encrypt encrypts a field of an answer for merchant id, with the public
// key of its merchant API certificate.
func (sf *sensitiveFields) encrypt(merchantID, plaintext string) (string, error) {
	m := sf.merchants.get(merchantID)
	return wire.EncryptOAEP(&m.info.PrivateKey.PublicKey, []byte(plaintext))
}

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
	return s.fields.decrypt(r, ciphertext)
}

// EncryptField encrypts a sensitive response field for merchant id as
// WeChat Pay does: RSA-OAEP (SHA-1) with the public key of the merchant
// API certificate, so that the merchant decrypts it with its private key.
func (s *Server) EncryptField(merchantID, plaintext string) (string, error) {
	return s.fields.encrypt(merchantID, plaintext)
}
