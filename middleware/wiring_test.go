package middleware_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// TestUnregisteredStoreSaysTheFix: a middleware given a Store that does
// not know the merchant (the Transport was made with a Store of its own)
// answers 404, and the error ErrorHandler receives says what to do.
func TestUnregisteredStoreSaysTheFix(t *testing.T) {
	srv := wechatpaytest.NewServer()
	t.Cleanup(srv.Close)
	m := srv.Merchant()
	if _, err := wechatpay.NewTransport(srv.Config()); err != nil { // with its own Store
		t.Fatal(err)
	}
	store, err := wechatpay.NewStore(wechatpay.StoreOptions{}) // never given the merchant
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var got error
	ts := httptest.NewServer(middleware.Notifications(middleware.Config{Keys: store, MerchantID: m.ID, APIv3Key: m.APIv3Key,
		ErrorHandler: func(_ *http.Request, err error) { got = err }})(http.NotFoundHandler()))
	t.Cleanup(ts.Close)
	resp, err := srv.Notify(context.Background(), ts.URL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("answered %d; want 404", resp.StatusCode)
	}
	if got == nil || !errors.Is(got, wechatpay.ErrUnknownMerchant) || !strings.Contains(got.Error(), "not registered with Config.Keys: use the Store its Transport verifies with (t.Verifier.Keys") {
		t.Errorf("ErrorHandler got %v; want ErrUnknownMerchant leading with the fix", got)
	}
}

// TestKeysFromTransport: t.Verifier.Keys of a Transport made without a
// Store verifies the merchant's callbacks: no ordering to get right.
func TestKeysFromTransport(t *testing.T) {
	srv := wechatpaytest.NewServer()
	t.Cleanup(srv.Close)
	m := srv.Merchant()
	tr, err := wechatpay.NewTransport(srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	ran := false
	ts := httptest.NewServer(middleware.Notifications(middleware.Config{Keys: tr.Verifier.Keys, MerchantID: m.ID, APIv3Key: m.APIv3Key})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ran = true })))
	t.Cleanup(ts.Close)
	resp, err := srv.Notify(context.Background(), ts.URL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || !ran {
		t.Errorf("answered %d, handler ran %t; want 204 and true", resp.StatusCode, ran)
	}
}
