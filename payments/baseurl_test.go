package payments_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/payments"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// tracing stands for any wrapping transport that says what it wraps.
type tracing struct {
	next  http.RoundTripper
	hosts []string
}

func (t *tracing) RoundTrip(r *http.Request) (*http.Response, error) {
	t.hosts = append(t.hosts, r.URL.Host)
	return t.next.RoundTrip(r)
}
func (t *tracing) Unwrap() http.RoundTripper { return t.next }

// A Client without BaseURL calls the host of the Transport it sends
// through, also behind a wrapper; one with BaseURL calls that.
func TestClientTakesBaseURLFromTransport(t *testing.T) {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	cfg := srv.Config()
	tr, err := wechatpay.NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	wrapped := &tracing{next: tr}
	pay := &payments.Client{HTTP: &http.Client{Transport: wrapped}, MerchantID: cfg.MerchantID, AppID: "wxd678efh567hg6787"}
	codeURL, err := pay.PrepayNative(context.Background(), payments.PrepayRequest{Description: "tea", OutTradeNo: "BASEURL001",
		NotifyURL: "https://merchant.example/notify", Amount: payments.OrderAmount{Total: 1}})
	if err != nil {
		t.Fatalf("PrepayNative without BaseURL: %v", err)
	}
	host := strings.TrimPrefix(cfg.BaseURL, "http://")
	if len(wrapped.hosts) == 0 || wrapped.hosts[0] != host || codeURL == "" {
		t.Errorf("called %v; want the Transport's host %s", wrapped.hosts, host)
	}
	if s := pay.String(); !strings.Contains(s, cfg.BaseURL) {
		t.Errorf("String() = %s; want the BaseURL in use, %s", s, cfg.BaseURL)
	}

	// An explicit BaseURL wins: here one the Transport refuses to sign for.
	pay.BaseURL = "https://elsewhere.example"
	if _, err := pay.QueryByOutTradeNo(context.Background(), "BASEURL001"); !errors.Is(err, wechatpay.ErrHostNotAllowed) {
		t.Errorf("with BaseURL set: %v; want the call to go to elsewhere.example (ErrHostNotAllowed)", err)
	}
}
