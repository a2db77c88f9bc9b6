package wire

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
)

// ErrAPIv3Key is wechatpay.ErrAPIv3Key.
var ErrAPIv3Key = errors.New("wechatpay: APIv3 key must be exactly 32 bytes")

// ErrDecrypt is wechatpay.ErrDecrypt.
var ErrDecrypt = errors.New("wechatpay: AEAD_AES_256_GCM decryption failed (wrong APIv3 key or tampered data)")

// AlgorithmAESGCM is the only resource algorithm supported.
const AlgorithmAESGCM = "AEAD_AES_256_GCM"

// NewAEAD returns the AEAD_AES_256_GCM cipher for an APIv3 key, which must
// be exactly 32 bytes. The error never contains the key.
func NewAEAD(apiv3Key string) (cipher.AEAD, error) {
	if len(apiv3Key) != 32 {
		return nil, fmt.Errorf("%w (got %d bytes)", ErrAPIv3Key, len(apiv3Key))
	}
	block, err := aes.NewCipher([]byte(apiv3Key))
	if err != nil {
		return nil, fmt.Errorf("wechatpay: APIv3 key: %w", err)
	}
	// WeChat Pay's nonces are 12 bytes, the standard GCM nonce size.
	return cipher.NewGCM(block)
}

// Open decrypts an AEAD_AES_256_GCM resource as WeChat Pay sends it in
// certificate downloads and callback notifications: ciphertext is
// Base64(ciphertext ‖ tag), nonce and associatedData are used as raw bytes
// (§4.3).
func Open(aead cipher.AEAD, nonce, associatedData, ciphertext string) ([]byte, error) {
	ct, err := base64.StdEncoding.DecodeString(ciphertext)
	if err != nil {
		return nil, fmt.Errorf("wechatpay: ciphertext is not valid base64: %w", err)
	}
	if len(nonce) != aead.NonceSize() {
		return nil, fmt.Errorf("wechatpay: AEAD nonce is %d bytes, want %d", len(nonce), aead.NonceSize())
	}
	pt, err := aead.Open(ct[:0], []byte(nonce), ct, []byte(associatedData)) // in place: ct is ours
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// Seal is the inverse of Open; the simulator encrypts certificates and
// notifications with it as WeChat Pay does.
func Seal(aead cipher.AEAD, nonce, associatedData string, plaintext []byte) (string, error) {
	if len(nonce) != aead.NonceSize() {
		return "", fmt.Errorf("wechatpay: AEAD nonce is %d bytes, want %d", len(nonce), aead.NonceSize())
	}
	ct := aead.Seal(nil, []byte(nonce), plaintext, []byte(associatedData))
	return base64.StdEncoding.EncodeToString(ct), nil
}

// CertSerial formats a certificate serial number as WeChat Pay writes it:
// upper-case hex of the big-endian bytes.
func CertSerial(c *x509.Certificate) string {
	return fmt.Sprintf("%X", c.SerialNumber.Bytes())
}

// CertificatesResponse is the JSON of a platform certificate download
// (§4.2).
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

// EncryptOAEP encrypts a sensitive request field with RSA-OAEP (SHA-1,
// MGF1-SHA-1, empty label) and returns it Base64-encoded (docs/protocol.md §7).
// Plaintexts longer than the key allows (214 bytes for RSA-2048: 256 - 2*20 - 2)
// are refused with an error that says so.
func EncryptOAEP(pub *rsa.PublicKey, plaintext []byte) (string, error) {
	if pub == nil {
		return "", errors.New("wechatpay: encrypt: nil public key")
	}
	if SHA1Refused() {
		return "", ErrFIPSOnly("encrypt", "RSA-OAEP with SHA-1")
	}
	if limit := pub.Size() - 2*sha1.Size - 2; len(plaintext) > limit {
		return "", fmt.Errorf("wechatpay: encrypt: plaintext is %d bytes, RSA-OAEP allows at most %d", len(plaintext), limit)
	}
	ct, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, plaintext, nil)
	if err != nil {
		return "", fmt.Errorf("wechatpay: encrypt: %w", err)
	}
	return base64.StdEncoding.EncodeToString(ct), nil
}
