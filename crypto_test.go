package wechatpay

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

func TestLoadPrivateKeyForms(t *testing.T) {
	pkcs8, err := os.ReadFile("testdata/official_key.pem")
	if err != nil {
		t.Fatal(err)
	}
	k8, err := LoadPrivateKey(pkcs8)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k8)})
	k1, err := LoadPrivateKey(pkcs1)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k8) {
		t.Error("PKCS#1 and PKCS#8 forms of one key differ")
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: newTestCert(t, testKey(1), 3, time.Now(), time.Now().Add(time.Hour)).Raw})
	pubDER, _ := x509.MarshalPKIXPublicKey(&k8.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	broken := bytes.Replace(pkcs8, []byte("MIIEvAIBADAN"), []byte("MIIEvAIBADAM"), 1)
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"not PEM", []byte("hello"), "no PEM block"},
		{"certificate", certPEM, "apiclient_key.pem"},
		{"public key", pubPEM, "PUBLIC KEY"},
		{"small", smallPEM, "1024 bits"},
		{"corrupt PKCS#8", broken, "not valid PKCS#8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := LoadPrivateKey(tc.in)
			if k != nil || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LoadPrivateKey = %v, %v; want an error saying %q", k != nil, err, tc.want)
			}
		})
	}
	if _, err := LoadPrivateKeyFile("testdata/does-not-exist.pem"); err == nil || !strings.Contains(err.Error(), "does-not-exist.pem") {
		t.Errorf("missing file: %v; want an error naming the file", err)
	}
	pub, err := LoadPublicKey(pubPEM)
	if err != nil || !pub.Equal(&k8.PublicKey) {
		t.Errorf("LoadPublicKey = %v", err)
	}
	if _, err := LoadPublicKey(pkcs8); err == nil {
		t.Error("LoadPublicKey accepted a private key")
	}
}

func TestAEADAndOAEP(t *testing.T) {
	if _, err := wire.NewAEAD("short"); !errors.Is(err, ErrAPIv3Key) || strings.Contains(err.Error(), "short") {
		t.Errorf("wire.NewAEAD(short) = %v; want ErrAPIv3Key without the key", err)
	}
	aead, err := wire.NewAEAD(testAPIv3Key)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := wire.Seal(aead, "0123456789ab", "transaction", []byte(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := wire.Open(aead, "0123456789ab", "transaction", ct); err != nil || string(pt) != `{"a":1}` {
		t.Errorf("OpenResource = %q, %v", pt, err)
	}
	for _, tc := range []struct{ nonce, ad, ct string }{
		{"0123456789ac", "transaction", ct},
		{"0123456789ab", "refund", ct},
		{"0123456789ab", "transaction", "A" + ct[1:]},
	} {
		if _, err := wire.Open(aead, tc.nonce, tc.ad, tc.ct); !errors.Is(err, ErrDecrypt) {
			t.Errorf("wire.Open(%q, %q, tampered) = %v; want ErrDecrypt", tc.nonce, tc.ad, err)
		}
	}
	key := testKey(2)
	enc, err := wire.EncryptOAEP(&key.PublicKey, []byte("张三"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := DecryptOAEP(key, enc); err != nil || string(pt) != "张三" {
		t.Errorf("DecryptOAEP = %q, %v", pt, err)
	}
	if _, err := wire.EncryptOAEP(&key.PublicKey, make([]byte, 215)); err == nil || !strings.Contains(err.Error(), "at most 214") {
		t.Errorf("wire.EncryptOAEP(215 bytes) = %v; want an error naming the 214-byte limit", err)
	}
}

// The documentation's sample has stray spaces in two keys; validity comes
// from the certificate, so it parses.
func TestParseCertificatesDocSample(t *testing.T) {
	f := newFake(t)
	body := f.certificatesBody()
	body = bytes.ReplaceAll(body, []byte(`"effective_time"`), []byte(`"effective_time "`))
	body = bytes.ReplaceAll(body, []byte(`"expire_time"`), []byte(`"expire_time "`))
	aead, _ := wire.NewAEAD(testAPIv3Key)
	certs, err := parseDownload(body, aead, time.Now(), nil)
	if err != nil || len(certs) != 1 || certs[0].serial != wire.CertSerial(f.certs[0].cert) {
		t.Fatalf("parseDownload(doc sample) = %v, %v", certs, err)
	}
	// With a root pool the self-signed test certificate does not chain.
	if _, err := parseDownload(body, aead, time.Now(), x509.NewCertPool()); err == nil || !strings.Contains(err.Error(), "chain") {
		t.Errorf("ParseCertificates with foreign roots = %v; want a chain error", err)
	}
}
