package wire

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"os"
	"testing"
)

// TestOfficialVectors pins the signing string and the signature to WeChat
// Pay's published examples (docs/protocol.md §9). The client, the
// simulator and the command all sign and check through this package, so
// none of them can drift from WeChat Pay, or from each other.
func TestOfficialVectors(t *testing.T) {
	pemBytes, err := os.ReadFile("../../testdata/official_key.pem")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key := parsed.(*rsa.PrivateKey)
	b, err := os.ReadFile("../../testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Timestamp int64  `json:"timestamp"`
		Nonce     string `json:"nonce"`
		Cases     []struct {
			Name, Method, URL, Body, Signature string
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Cases) == 0 {
		t.Fatal("testdata/vectors.json has no cases")
	}
	for _, tc := range v.Cases {
		msg := RequestMessage(tc.Method, tc.URL, v.Timestamp, v.Nonce, []byte(tc.Body))
		got, err := Sign(key, msg)
		if err != nil || got != tc.Signature {
			t.Errorf("%s: Sign = %s, %v; want %s", tc.Name, got, err, tc.Signature)
		}
		if err := Verify(&key.PublicKey, msg, tc.Signature); err != nil {
			t.Errorf("%s: Verify(official signature) = %v", tc.Name, err)
		}
		if err := Verify(&key.PublicKey, append(msg, ' '), tc.Signature); err == nil {
			t.Errorf("%s: Verify accepted a changed message", tc.Name)
		}
	}
}

func TestMarkVerifiedCannotBeForged(t *testing.T) {
	h := map[string][]string{VerifiedHeader: {"true"}}
	if IsVerified(h) {
		t.Error("a guessed value passes IsVerified")
	}
	MarkVerified(h)
	if !IsVerified(h) {
		t.Error("a marked header fails IsVerified")
	}
	h[VerifiedHeader] = append(h[VerifiedHeader], "x")
	if IsVerified(h) {
		t.Error("two values pass IsVerified")
	}
}

// TestUploadRequestFileNameCannotAddHeaders: a file name with line
// breaks stays inside its quoted parameter.
func TestUploadRequestFileNameCannotAddHeaders(t *testing.T) {
	req, err := UploadRequest(context.Background(), "https://api.mch.weixin.qq.com/v3/merchant/media/upload",
		[]byte(`{"filename":"a.jpg","sha256":"x"}`), "a.jpg\"\r\nX-Injected: 1\r\n", []byte("content"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(req.Body)
	if bytes.Contains(body, []byte("\r\nX-Injected")) {
		t.Fatalf("the file name added a header:\n%s", body)
	}
	if got, ok := SignedBody(req.Context()); !ok || string(got) != `{"filename":"a.jpg","sha256":"x"}` {
		t.Errorf("signed meta = %q, %v", got, ok)
	}
}
