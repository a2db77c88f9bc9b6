package middleware_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/wire"
	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// staticKeys is a KeySource that never fetches.
type staticKeys map[string]*rsa.PublicKey

func (k staticKeys) PublicKey(_ context.Context, _, serial string) (*rsa.PublicKey, error) {
	if p := k[serial]; p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("%w %q", wechatpay.ErrUnknownSerial, serial)
}

// FuzzNotifications feeds the middleware arbitrary signature headers and
// bodies. It must never panic, must always answer with a status it
// documents, and must call the handler only for a request whose signature
// verifies with a known key and whose resource decrypts.
func FuzzNotifications(f *testing.F) {
	srv := wechatpaytest.NewServer(wechatpaytest.WithPublicKey())
	defer srv.Close()
	m := srv.Merchant()
	serial := srv.SigningSerial(m.ID)
	keys := staticKeys{m.PublicKeyID: m.PublicKey}
	for _, c := range srv.Certificates(m.ID) {
		keys[wire.CertSerial(c)] = c.PublicKey.(*rsa.PublicKey)
	}
	aead, err := wire.NewAEAD(m.APIv3Key)
	if err != nil {
		f.Fatal(err)
	}

	var reached bool
	h := middleware.Notifications(middleware.Config{Keys: keys, MerchantID: m.ID, APIv3Key: m.APIv3Key, MaxBodySize: 4096})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reached = true
			if _, ok := middleware.NotificationFrom(r.Context()); !ok {
				panic("handler reached without a notification")
			}
		}))

	seed := func(opts ...wechatpaytest.NotifyOption) {
		req, err := srv.NotificationRequest(context.Background(), "http://merchant.test/notify", "", nil, opts...)
		if err != nil {
			f.Fatal(err)
		}
		body, _ := io.ReadAll(req.Body)
		hd := req.Header
		f.Add(hd.Get(wire.HeaderTimestamp), hd.Get(wire.HeaderNonce), hd.Get(wire.HeaderSignature),
			hd.Get(wire.HeaderSerial), hd.Get(wire.HeaderSignatureType), body)
	}
	seed()
	seed(wechatpaytest.NotifyWithPublicKey())
	seed(wechatpaytest.NotifyProbe())
	seed(wechatpaytest.NotifyTamperBody())
	seed(wechatpaytest.NotifyTamperCiphertext())
	seed(wechatpaytest.NotifyBody([]byte(`{"resource":{"algorithm":"AEAD_AES_256_GCM","ciphertext":"!!","nonce":"x"}}`)))
	f.Add("", "", "", "", "", []byte(nil))
	f.Add("99999999999999999999", "n", "WECHATPAY/SIGNTEST/AAAA", serial, "WECHATPAY2-SM2-WITH-SM3", []byte("{}"))

	f.Fuzz(func(t *testing.T, ts, nonce, sig, serial, sigType string, body []byte) {
		req := &http.Request{
			Method:        http.MethodPost,
			Header:        http.Header{},
			Body:          io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)),
		}
		for name, v := range map[string]string{
			wire.HeaderTimestamp: ts, wire.HeaderNonce: nonce, wire.HeaderSignature: sig,
			wire.HeaderSerial: serial, wire.HeaderSignatureType: sigType,
		} {
			if v != "" {
				req.Header[name] = []string{v}
			}
		}
		reached = false
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		switch rec.Code {
		case http.StatusNoContent:
			if !reached {
				t.Fatal("204 without reaching the handler")
			}
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge, http.StatusServiceUnavailable:
			var fail struct{ Code, Message string }
			if err := json.Unmarshal(rec.Body.Bytes(), &fail); err != nil || fail.Code != "FAIL" {
				t.Fatalf("failure answer %d %q is not the failure JSON", rec.Code, rec.Body.Bytes())
			}
		default:
			t.Fatalf("unexpected status %d", rec.Code)
		}
		if !reached {
			return
		}
		// Reached: the request must check out independently.
		key := keys[serial]
		if key == nil || wire.Verify(key, wire.ResponseMessage(ts, nonce, body), sig) != nil {
			t.Fatalf("handler reached with a signature that does not verify (serial %q)", serial)
		}
		var env struct {
			Resource struct {
				Nonce          string `json:"nonce"`
				AssociatedData string `json:"associated_data"`
				Ciphertext     string `json:"ciphertext"`
			} `json:"resource"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			t.Fatalf("handler reached with a body that is not JSON: %v", err)
		}
		if _, err := wire.Open(aead, env.Resource.Nonce, env.Resource.AssociatedData, env.Resource.Ciphertext); err != nil {
			t.Fatalf("handler reached with a resource that does not decrypt: %v", err)
		}
	})
}
