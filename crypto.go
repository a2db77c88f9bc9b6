package wechatpay

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// LoadPrivateKey parses a merchant API private key (apiclient_key.pem) in
// PKCS#8 ("BEGIN PRIVATE KEY") or PKCS#1 ("BEGIN RSA PRIVATE KEY") PEM form.
// The error says what is wrong with the input and never contains key bytes.
func LoadPrivateKey(pemBytes []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("wechatpay: private key: no PEM block found (expected -----BEGIN PRIVATE KEY-----)")
	}
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("wechatpay: private key: PEM block \"PRIVATE KEY\" is not valid PKCS#8")
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("wechatpay: private key: PKCS#8 key is %T, want an RSA key", k)
		}
		return checkRSAPrivate(rk)
	case "RSA PRIVATE KEY":
		rk, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("wechatpay: private key: PEM block \"RSA PRIVATE KEY\" is not valid PKCS#1")
		}
		return checkRSAPrivate(rk)
	case "CERTIFICATE":
		return nil, errors.New("wechatpay: private key: got a CERTIFICATE (apiclient_cert.pem?); want the private key file apiclient_key.pem")
	case "PUBLIC KEY":
		return nil, errors.New("wechatpay: private key: got a PUBLIC KEY; want the merchant private key file apiclient_key.pem")
	default:
		return nil, fmt.Errorf("wechatpay: private key: unsupported PEM block type %q", block.Type)
	}
}

func checkRSAPrivate(k *rsa.PrivateKey) (*rsa.PrivateKey, error) {
	if k.N.BitLen() < 2048 {
		return nil, fmt.Errorf("wechatpay: private key: RSA key is %d bits, want at least 2048", k.N.BitLen())
	}
	return k, nil
}

// LoadPrivateKeyFile reads and parses a merchant private key PEM file.
func LoadPrivateKeyFile(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("wechatpay: private key: %w", err)
	}
	k, err := LoadPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return k, nil
}

// LoadPublicKey parses a WeChat Pay public key (pub_key.pem): a PEM
// "PUBLIC KEY" (SubjectPublicKeyInfo) or "RSA PUBLIC KEY" (PKCS#1) block,
// or a certificate, whose key is returned.
func LoadPublicKey(pemBytes []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("wechatpay: public key: no PEM block found (expected -----BEGIN PUBLIC KEY-----)")
	}
	var k any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		k, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		k, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var c *x509.Certificate
		if c, err = x509.ParseCertificate(block.Bytes); err == nil {
			k = c.PublicKey
		}
	case "PRIVATE KEY", "RSA PRIVATE KEY":
		return nil, errors.New("wechatpay: public key: got a PRIVATE KEY; want the WeChat Pay public key pub_key.pem")
	default:
		return nil, fmt.Errorf("wechatpay: public key: unsupported PEM block type %q", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("wechatpay: public key: %w", err)
	}
	rk, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("wechatpay: public key: key is %T, want RSA", k)
	}
	if rk.N.BitLen() < 2048 {
		return nil, fmt.Errorf("wechatpay: public key: RSA key is %d bits, want at least 2048", rk.N.BitLen())
	}
	return rk, nil
}

// DecryptOAEP decrypts a Base64 RSA-OAEP (SHA-1) field that WeChat Pay
// encrypted with the merchant certificate, using the merchant private key.
func DecryptOAEP(key crypto.Decrypter, ciphertext string) ([]byte, error) {
	ct, err := base64.StdEncoding.DecodeString(ciphertext)
	if err != nil {
		return nil, errors.New("wechatpay: decrypt: ciphertext is not valid base64")
	}
	if _, ok := key.(*rsa.PrivateKey); ok && wire.SHA1Refused() {
		return nil, wire.ErrFIPSOnly("decrypt", "RSA-OAEP with SHA-1")
	}
	pt, err := key.Decrypt(rand.Reader, ct, &rsa.OAEPOptions{Hash: crypto.SHA1})
	if err != nil {
		return nil, errors.New("wechatpay: decrypt: RSA-OAEP decryption failed (wrong key or altered ciphertext)")
	}
	return pt, nil
}
