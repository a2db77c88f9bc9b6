package wechatpaytest_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// TestPublicKeyOnlyMerchant plays the merchant most new merchants are,
// with a client in public-key mode: answers and callbacks are signed with
// the public key and verified, the Store learns from the 404
// RESOURCE_NOT_EXISTS that there are no platform certificates and stays
// in public-key mode.
func TestPublicKeyOnlyMerchant(t *testing.T) {
	srv := wechatpaytest.NewServer(wechatpaytest.PublicKeyOnly())
	defer srv.Close()
	m := srv.Merchant()
	ms := newMerchantSideWith(t, srv, srv.Config()) // PublicKeyID and PublicKey set

	status, _, apiErr := ms.call(t, "POST", "/v3/pay/transactions/native", nativeOrder(m, "PUBKEY0001", ms.notify.URL, 100))
	if apiErr != nil || status != 200 {
		t.Fatalf("order: %d %v", status, apiErr)
	}
	// The certificate endpoint says there are none; the Store remembers.
	if err := ms.store.Refresh(context.Background(), m.ID); !errors.Is(err, wechatpay.ErrNoPlatformCertificates) {
		t.Fatalf("Refresh = %v; want ErrNoPlatformCertificates", err)
	}
	st := ms.store.Status(m.ID)
	if len(st) != 1 || !st[0].PublicKeyOnly {
		t.Fatalf("Status = %+v; want PublicKeyOnly", st)
	}
	downloads := srv.MerchantCertificateDownloads(m.ID)

	// Answers: verified, signed with the public key.
	req, _ := http.NewRequest("GET", srv.URL+"/v3/pay/transactions/out-trade-no/PUBKEY0001?mchid="+m.ID, nil)
	resp, err := ms.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !wechatpay.IsVerified(resp) || resp.Header.Get("Wechatpay-Serial") != m.PublicKeyID {
		t.Errorf("answer verified %v, signed by %q; want verified, by %s", wechatpay.IsVerified(resp), resp.Header.Get("Wechatpay-Serial"), m.PublicKeyID)
	}

	// Callbacks: signed with the public key, accepted by the middleware.
	if err := srv.Pay(m.ID, "PUBKEY0001", wechatpaytest.PaySuccess); err != nil {
		t.Fatal(err)
	}
	n := ms.next(t)
	if n.EventType != "TRANSACTION.SUCCESS" {
		t.Errorf("event %s", n.EventType)
	}
	if serial := <-ms.serials; serial != m.PublicKeyID {
		t.Errorf("callback signed by %q; want %s", serial, m.PublicKeyID)
	}
	if st := ms.store.Status(m.ID); !st[0].PublicKeyOnly {
		t.Errorf("after the callback, Status = %+v; want still PublicKeyOnly", st[0])
	}
	if got := srv.MerchantCertificateDownloads(m.ID); got != downloads {
		t.Errorf("%d certificate downloads after learning there are none; want %d", got, downloads)
	}
}

// TestMigratingCallbacks checks the mixed mode: callbacks come signed with
// either key, and a merchant holding both verifies each by the serial it
// names.
func TestMigratingCallbacks(t *testing.T) {
	srv := wechatpaytest.NewServer(wechatpaytest.Migrating())
	defer srv.Close()
	m := srv.Merchant()
	if m.PublicKeyID == "" {
		t.Fatal("Migrating gave the merchant no public key")
	}
	cfg := srv.Config()
	cfg.PublicKeyID, cfg.PublicKey = m.PublicKeyID, m.PublicKey
	ms := newMerchantSideWith(t, srv, cfg)
	var serials []string
	for _, no := range []string{"MIGRATE001", "MIGRATE002", "MIGRATE003", "MIGRATE004"} {
		if _, _, apiErr := ms.call(t, "POST", "/v3/pay/transactions/native", nativeOrder(m, no, ms.notify.URL, 1)); apiErr != nil {
			t.Fatal(apiErr)
		}
		if err := srv.Pay(m.ID, no, wechatpaytest.PaySuccess); err != nil {
			t.Fatal(err)
		}
		ms.next(t) // accepted: verified and decrypted
		serials = append(serials, <-ms.serials)
	}
	cert := srv.SigningSerial(m.ID)
	want := []string{m.PublicKeyID, cert, m.PublicKeyID, cert}
	if !slices.Equal(serials, want) {
		t.Errorf("callbacks signed by %v; want in turn %v", serials, want)
	}
}

// TestNonJSONContentTypeRefused checks that a JSON route refuses another
// Content-Type with WeChat Pay's INVALID_REQUEST, signed, and does nothing.
func TestNonJSONContentTypeRefused(t *testing.T) {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	m := srv.Merchant()
	ms := newMerchantSide(t, srv)
	body := `{"appid":"wx1","mchid":"` + m.ID + `","description":"d","out_trade_no":"CTYPE00001","notify_url":"https://example.com/n","amount":{"total":1}}`
	for _, ct := range []string{"application/x-www-form-urlencoded", "text/plain", "application/jsonx"} {
		req, _ := http.NewRequest("POST", srv.URL+"/v3/pay/transactions/native", strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		resp, err := ms.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		err = wechatpay.CheckResponse(resp)
		resp.Body.Close()
		var apiErr *wechatpay.APIError
		if !wechatpay.IsVerified(resp) || !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "INVALID_REQUEST" {
			t.Errorf("Content-Type %q: verified %v, %v; want a signed 400 INVALID_REQUEST", ct, wechatpay.IsVerified(resp), err)
		}
	}
	if _, _, apiErr := ms.call(t, "GET", "/v3/pay/transactions/out-trade-no/CTYPE00001?mchid="+m.ID, nil); apiErr == nil || apiErr.Code != "ORDER_NOT_EXIST" {
		t.Errorf("the refused order exists: %v", apiErr)
	}
	// With application/json (and a charset) it goes through.
	req, _ := http.NewRequest("POST", srv.URL+"/v3/pay/transactions/native", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := ms.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("application/json; charset=utf-8: %d", resp.StatusCode)
	}
}

// TestHTTPNotifyURLWarning checks that a callback to an http notify_url
// carries a warning, which Delivery.String shows.
func TestHTTPNotifyURLWarning(t *testing.T) {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	m := srv.Merchant()
	ms := newMerchantSide(t, srv)
	if _, _, apiErr := ms.call(t, "POST", "/v3/pay/transactions/native", nativeOrder(m, "HTTPWARN01", ms.notify.URL, 1)); apiErr != nil {
		t.Fatal(apiErr)
	}
	if err := srv.Pay(m.ID, "HTTPWARN01", wechatpaytest.PaySuccess); err != nil {
		t.Fatal(err)
	}
	ms.next(t)
	ds := waitDeliveries(t, srv, 1)
	if len(ds) != 1 || !strings.Contains(ds[0].Warning, "https") || !strings.Contains(ds[0].String(), "warning: notify_url is http") {
		t.Errorf("deliveries %v; want one with the http warning", ds)
	}
}
