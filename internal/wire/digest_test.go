package wire

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// TestDigestsWithoutBuilding: hashing the lines as they come gives the
// digest of the message built whole, for empty, short and long parts
// (longer than the hasher's scratch buffer), from many goroutines sharing
// the pool (run with -race).
func TestDigestsWithoutBuilding(t *testing.T) {
	long := strings.Repeat("长", 400) // 1200 bytes
	parts := []string{"", "x", "/v3/pay/transactions/id/4200000001?mchid=1900000001", long}
	done := make(chan bool)
	for g := range 4 {
		go func() {
			defer func() { done <- true }()
			for _, uri := range parts {
				for _, nonce := range parts {
					for _, body := range parts {
						ts := int64(1554208460 + g)
						want := sha256.Sum256(RequestMessage("POST", uri, ts, nonce, []byte(body)))
						got := RequestDigest("POST", uri, []byte(strconv.FormatInt(ts, 10)), []byte(nonce), []byte(body))
						if got != want {
							t.Errorf("RequestDigest(%d, %d, %d bytes) differs from the built message's", len(uri), len(nonce), len(body))
						}
					}
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}

// TestVerifyResponse: the same verdicts as Verify on the built message,
// with crypto/rsa or a given check, which sees the digest and the decoded
// signature; a failing check is ErrBadSignature.
func TestVerifyResponse(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ts, nonce, body := "1554208460", strings.Repeat("N", 300), []byte(`{"ok":true}`)
	d := sha256.Sum256(ResponseMessage(ts, nonce, body))
	raw, _ := rsa.SignPKCS1v15(nil, key, crypto.SHA256, d[:])
	sig := base64.StdEncoding.EncodeToString(raw)
	if err := VerifyResponse(nil, &key.PublicKey, ts, nonce, body, sig); err != nil {
		t.Errorf("VerifyResponse = %v", err)
	}
	if err := VerifyResponse(nil, &key.PublicKey, ts, nonce, []byte(`{"ok":false}`), sig); !errors.Is(err, ErrBadSignature) {
		t.Errorf("VerifyResponse of another body = %v; want ErrBadSignature", err)
	}
	var seen bool
	check := func(pub *rsa.PublicKey, h crypto.Hash, hashed, s []byte) error {
		seen = h == crypto.SHA256 && bytes.Equal(hashed, d[:]) && bytes.Equal(s, raw)
		return errors.New("no")
	}
	if err := VerifyResponse(check, &key.PublicKey, ts, nonce, body, sig); !errors.Is(err, ErrBadSignature) || !seen {
		t.Errorf("VerifyResponse with a refusing check = %v (check saw the digest and signature: %v); want ErrBadSignature", err, seen)
	}
	huge := base64.StdEncoding.EncodeToString(make([]byte, 513))
	if err := VerifyResponse(nil, &key.PublicKey, ts, nonce, body, huge); !errors.Is(err, ErrBadSignature) {
		t.Errorf("VerifyResponse of a 513-byte signature = %v; want ErrBadSignature", err)
	}
}

// TestWriteBase64: the Base64 written in pieces is the standard encoding.
func TestWriteBase64(t *testing.T) {
	for n := range 200 {
		src := make([]byte, n)
		rand.Read(src)
		var b strings.Builder
		WriteBase64(&b, src)
		if want := base64.StdEncoding.EncodeToString(src); b.String() != want {
			t.Fatalf("WriteBase64 of %d bytes = %q; want %q", n, b.String(), want)
		}
	}
}
