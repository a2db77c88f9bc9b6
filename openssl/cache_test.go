package openssl

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"testing"

	"github.com/wxpaykit/wechatpay"
)

// TestKeyCacheBound: one libcrypto key object per *rsa.PublicKey, reused
// while held, and never more than maxKeys of them; an evicted key is
// made again when it comes back, and still verifies.
func TestKeyCacheBound(t *testing.T) {
	goKey, err := wechatpay.LoadPrivateKeyFile("../testdata/official_key.pem")
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("x"))
	sig, err := rsa.SignPKCS1v15(nil, goKey, crypto.SHA256, d[:])
	if err != nil {
		t.Fatal(err)
	}
	first := &rsa.PublicKey{N: goKey.N, E: goKey.E}
	if err := VerifyPKCS1v15(first, crypto.SHA256, d[:], sig); err != nil {
		t.Fatal(err)
	}
	k1, _ := keys.m.Load(first)
	if err := VerifyPKCS1v15(first, crypto.SHA256, d[:], sig); err != nil {
		t.Fatal(err)
	}
	if k2, _ := keys.m.Load(first); k1 == nil || k2 != k1 {
		t.Fatalf("second verification with the same key made a new key object")
	}
	for range maxKeys + 10 {
		pub := &rsa.PublicKey{N: goKey.N, E: goKey.E}
		if _, err := keys.get(pub); err != nil {
			t.Fatal(err)
		}
	}
	if n := keys.len(); n != maxKeys {
		t.Errorf("keys held = %d; want the bound %d", n, maxKeys)
	}
	if _, ok := keys.m.Load(first); ok {
		t.Errorf("the oldest key is still held past the bound")
	}
	if err := VerifyPKCS1v15(first, crypto.SHA256, d[:], sig); err != nil {
		t.Errorf("verification with an evicted key = %v", err)
	}
	n := 0
	keys.m.Range(func(any, any) bool { n++; return true })
	if n != maxKeys {
		t.Errorf("map holds %d keys; want %d", n, maxKeys)
	}
}
