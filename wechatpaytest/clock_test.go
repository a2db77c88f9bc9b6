package wechatpaytest_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/wire"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// TestWithClockOffset checks that the whole sandbox clock moves: the Date
// header, and the request timestamp check (a client on real time is 10
// minutes off, one on the sandbox clock is not).
func TestWithClockOffset(t *testing.T) {
	const off = 10 * time.Minute
	srv := wechatpaytest.NewServer(wechatpaytest.WithClockOffset(off))
	defer srv.Close()
	m := srv.Merchant()
	signer := &wechatpay.Signer{MerchantID: m.ID, CertificateSerial: m.CertificateSerial, Key: m.PrivateKey}
	get := func(ts int64) (*http.Response, string) {
		t.Helper()
		auth, err := signer.AuthorizationAt("GET", "/v3/certificates", nil, ts, wire.NewNonce())
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("GET", srv.URL+"/v3/certificates", nil)
		req.Header.Set("Authorization", auth)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", "test")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e struct{ Code, Message string }
		json.NewDecoder(resp.Body).Decode(&e)
		return resp, e.Code
	}
	resp, code := get(time.Now().Unix())
	if resp.StatusCode != 401 || code != "SIGN_ERROR" {
		t.Errorf("real-time request: %d %s; want 401 SIGN_ERROR (10 minutes off the sandbox clock)", resp.StatusCode, code)
	}
	date, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		t.Fatalf("Date %q: %v", resp.Header.Get("Date"), err)
	}
	if d := time.Until(date) - off; d < -5*time.Second || d > 5*time.Second {
		t.Errorf("Date = %s; want about now + %s", date, off)
	}
	if resp, code := get(time.Now().Add(off).Unix()); resp.StatusCode != 200 {
		t.Errorf("request on the sandbox clock: %d %s; want 200", resp.StatusCode, code)
	}
	// Without the option, the Date header is the real time.
	plain := wechatpaytest.NewServer()
	defer plain.Close()
	resp2, err := http.Get(plain.URL + "/v3/certificates")
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if date, _ := http.ParseTime(resp2.Header.Get("Date")); time.Since(date) > 5*time.Second || time.Since(date) < -5*time.Second {
		t.Errorf("plain sandbox Date = %s; want now", date)
	}
}
