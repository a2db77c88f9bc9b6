package middleware_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/wire"
	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// benchSetup returns a sandbox, a warm Store for its merchant and one
// signed payment notification (headers and body) built by the sandbox.
func benchSetup(b *testing.B) (*wechatpaytest.Server, *wechatpay.Store, http.Header, []byte) {
	b.Helper()
	srv := wechatpaytest.NewServer()
	b.Cleanup(srv.Close)
	store, err := wechatpay.NewStore(wechatpay.StoreOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	if err := store.Register(srv.Config()); err != nil {
		b.Fatal(err)
	}
	if err := store.Refresh(context.Background(), srv.Merchant().ID); err != nil {
		b.Fatal(err)
	}
	req, err := srv.NotificationRequest(context.Background(), "http://merchant.test/notify", "TRANSACTION.SUCCESS", nil)
	if err != nil {
		b.Fatal(err)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		b.Fatal(err)
	}
	return srv, store, req.Header, body
}

// BenchmarkNotification runs the whole middleware, from the request to
// the handler's 204, on a ResponseRecorder.
func BenchmarkNotification(b *testing.B) {
	srv, store, header, body := benchSetup(b)
	m := srv.Merchant()
	h := middleware.Notifications(middleware.Config{Keys: store, MerchantID: m.ID, APIv3Key: m.APIv3Key})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n, ok := middleware.NotificationFrom(r.Context()); !ok || len(n.Plaintext) == 0 {
				b.Fatal("no notification")
			}
		}))
	u := &url.URL{Path: "/notify"}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		req := &http.Request{Method: http.MethodPost, URL: u, Header: header, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body))}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusNoContent {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkNotificationFloor is the cryptography of the same notification
// alone: the SHA-256 of the signed message, rsa.VerifyPKCS1v15 and the
// AES-GCM open of the resource, with every input decoded beforehand. The
// middleware cannot be faster than this.
func BenchmarkNotificationFloor(b *testing.B) {
	srv, _, header, body := benchSetup(b)
	m := srv.Merchant()
	pub := srv.Certificates(m.ID)[0].PublicKey.(*rsa.PublicKey)
	aead, err := wire.NewAEAD(m.APIv3Key)
	if err != nil {
		b.Fatal(err)
	}
	msg := wire.ResponseMessage(header.Get(wire.HeaderTimestamp), header.Get(wire.HeaderNonce), body)
	sig, err := base64.StdEncoding.DecodeString(header.Get(wire.HeaderSignature))
	if err != nil {
		b.Fatal(err)
	}
	var env struct {
		Resource struct {
			Nonce          string `json:"nonce"`
			AssociatedData string `json:"associated_data"`
			Ciphertext     string `json:"ciphertext"`
		} `json:"resource"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		b.Fatal(err)
	}
	ct, err := base64.StdEncoding.DecodeString(env.Resource.Ciphertext)
	if err != nil {
		b.Fatal(err)
	}
	nonce, ad := []byte(env.Resource.Nonce), []byte(env.Resource.AssociatedData)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		d := sha256.Sum256(msg)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig); err != nil {
			b.Fatal(err)
		}
		if _, err := aead.Open(nil, nonce, ct, ad); err != nil {
			b.Fatal(err)
		}
	}
}
