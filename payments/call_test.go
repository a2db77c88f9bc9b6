package payments_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/payments"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// sandboxClient returns a sandbox and a payments.Client for its merchant
// whose HTTP client carries a real Transport.
func sandboxClient(t *testing.T) (*wechatpaytest.Server, *payments.Client) {
	t.Helper()
	srv := wechatpaytest.NewServer()
	t.Cleanup(srv.Close)
	tr, err := wechatpay.NewTransport(srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	m := srv.Merchant()
	return srv, &payments.Client{
		HTTP:       &http.Client{Transport: tr},
		BaseURL:    srv.URL,
		MerchantID: m.ID,
		AppID:      "wxd678efh567hg6787",
		Key:        m.PrivateKey,
	}
}

// TestPathEscapingOnTheWire: an out_trade_no (or refund number) made of
// path syntax stays inside its segment in the request-target WeChat Pay
// receives, and never reaches another endpoint.
func TestPathEscapingOnTheWire(t *testing.T) {
	srv, c := sandboxClient(t)
	var mu sync.Mutex
	var targets, values []string
	record := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			targets = append(targets, r.RequestURI)
			values = append(values, r.PathValue(name))
			mu.Unlock()
			switch {
			case strings.HasSuffix(r.URL.Path, "/close"):
				w.WriteHeader(http.StatusNoContent)
			default:
				w.Write([]byte(`{"out_trade_no":"x","trade_state":"NOTPAY","out_refund_no":"x","status":"PROCESSING"}`))
			}
		})
	}
	srv.Handle("GET /v3/pay/transactions/out-trade-no/{no}", record("no"))
	srv.Handle("POST /v3/pay/transactions/out-trade-no/{no}/close", record("no"))
	srv.Handle("GET /v3/pay/transactions/id/{id}", record("id"))
	srv.Handle("GET /v3/refund/domestic/refunds/{no}", record("no"))
	srv.Handle("/v3/merchant/fund/balance/{type}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a path parameter reached %s", r.RequestURI)
		w.Write([]byte(`{"available_amount":1}`))
	}))

	ctx := context.Background()
	const evil = "../../v3/merchant/fund/balance/BASIC"
	const escaped = "..%2F..%2Fv3%2Fmerchant%2Ffund%2Fbalance%2FBASIC"
	if _, err := c.QueryByOutTradeNo(ctx, evil); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx, evil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.QueryByTransactionID(ctx, evil+"?mchid=1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.QueryRefund(ctx, evil+"#x"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/v3/pay/transactions/out-trade-no/" + escaped + "?mchid=" + c.MerchantID,
		"/v3/pay/transactions/out-trade-no/" + escaped + "/close",
		"/v3/pay/transactions/id/" + escaped + "%3Fmchid=1?mchid=" + c.MerchantID,
		"/v3/refund/domestic/refunds/" + escaped + "%23x",
	}
	wantValues := []string{evil, evil, evil + "?mchid=1", evil + "#x"}
	mu.Lock()
	defer mu.Unlock()
	if len(targets) != len(want) {
		t.Fatalf("server saw %q; want %q", targets, want)
	}
	for i := range want {
		if targets[i] != want[i] {
			t.Errorf("request-target %d = %s; want %s", i, targets[i], want[i])
		}
		if values[i] != wantValues[i] {
			t.Errorf("path value %d = %q; want %q", i, values[i], wantValues[i])
		}
	}

	// Dot segments, which a server may resolve, and empty numbers are
	// refused before anything is sent.
	before := srv.Requests()
	for _, bad := range []string{"", ".", ".."} {
		if _, err := c.QueryByOutTradeNo(ctx, bad); err == nil || !strings.Contains(err.Error(), "out_trade_no") {
			t.Errorf("QueryByOutTradeNo(%q) = %v; want an error naming out_trade_no", bad, err)
		}
		if err := c.Close(ctx, bad); err == nil {
			t.Errorf("Close(%q) succeeded", bad)
		}
		if _, err := c.QueryRefund(ctx, bad); err == nil || !strings.Contains(err.Error(), "out_refund_no") {
			t.Errorf("QueryRefund(%q) = %v; want an error naming out_refund_no", bad, err)
		}
	}
	if n := srv.Requests() - before; n != 0 {
		t.Errorf("%d requests sent for refused numbers", n)
	}
}

func TestDo(t *testing.T) {
	srv, c := sandboxClient(t)
	var gotBody, gotType string
	srv.Handle("POST /v3/test/echo", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody, gotType = string(b), r.Header.Get("Content-Type")
		w.Write([]byte(`{"answer":42}`))
	}))
	srv.Handle("GET /v3/test/notjson", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"answer":"forty-two"}`))
	}))
	srv.Handle("GET /v3/test/missing", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wechatpaytest.WriteError(w, http.StatusNotFound, "ORDER_NOT_EXIST", "订单不存在")
	}))
	ctx := context.Background()

	var out struct {
		Answer int `json:"answer"`
	}
	if err := payments.Do(ctx, c.HTTP, "POST", srv.URL+"/v3/test/echo", map[string]string{"q": "life"}, &out); err != nil {
		t.Fatal(err)
	}
	if out.Answer != 42 || gotBody != `{"q":"life"}` || gotType != "application/json" {
		t.Errorf("Do: out %+v, server saw %q (%s)", out, gotBody, gotType)
	}

	// A verified 2xx that does not decode says the call succeeded.
	err := payments.Do(ctx, c.HTTP, "GET", srv.URL+"/v3/test/notjson", nil, &out)
	if err == nil || !strings.Contains(err.Error(), "succeeded") || !strings.Contains(err.Error(), "Request-ID") {
		t.Errorf("undecodable answer: %v; want an error saying the call succeeded, with its Request-ID", err)
	}

	var apiErr *wechatpay.APIError
	err = payments.Do(ctx, c.HTTP, "GET", srv.URL+"/v3/test/missing", nil, &out)
	if !errors.As(err, &apiErr) || apiErr.Code != "ORDER_NOT_EXIST" || apiErr.StatusCode != 404 {
		t.Errorf("404: %v; want *APIError ORDER_NOT_EXIST", err)
	}

	if err := payments.Do(ctx, nil, "GET", srv.URL, nil, nil); err == nil {
		t.Error("Do with a nil client succeeded")
	}
	if err := payments.Do(ctx, c.HTTP, "POST", srv.URL+"/v3/test/echo", func() {}, nil); err == nil || !strings.Contains(err.Error(), "/v3/test/echo") {
		t.Errorf("unmarshalable request: %v; want an error naming the path", err)
	}
}

// TestOutcomeUnknownThroughPayments: a refund whose answer is tampered with
// is an *OutcomeUnknownError telling to query by out_refund_no.
func TestOutcomeUnknownThroughPayments(t *testing.T) {
	srv, c := sandboxClient(t)
	srv.Handle("POST /v3/refund/domestic/refunds", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"refund_id":"50000000382019052709732678859","out_refund_no":"R1","status":"PROCESSING","create_time":"2026-11-23T20:00:00+08:00"}`))
	}))
	srv.SetFault(wechatpaytest.FaultTamperBody)
	_, err := c.Refund(context.Background(), payments.RefundRequest{OutTradeNo: "T1", OutRefundNo: "R1", Amount: payments.RefundAmount{Refund: 1, Total: 1}})
	var unknown *wechatpay.OutcomeUnknownError
	if !errors.As(err, &unknown) || unknown.RequestID == "" || !strings.Contains(err.Error(), "out_refund_no") {
		t.Fatalf("Refund with a tampered answer = %v; want *OutcomeUnknownError with a Request-ID", err)
	}
	if wechatpay.Retryable(err) {
		t.Error("Retryable(outcome unknown) = true")
	}
	srv.SetFault(wechatpaytest.FaultNone)
	r, err := c.Refund(context.Background(), payments.RefundRequest{OutTradeNo: "T1", OutRefundNo: "R1", Amount: payments.RefundAmount{Refund: 1, Total: 1}})
	if err != nil || r.Status != "PROCESSING" || r.CreateTime.IsZero() || !r.SuccessTime.IsZero() {
		t.Errorf("Refund = %+v, %v; want PROCESSING with a create_time and no success_time", r, err)
	}
}

// The Client holds the merchant's private key; no way of printing it
// shows the key.
func TestClientDoesNotPrintItsKey(t *testing.T) {
	_, c := sandboxClient(t)
	k := c.Key.(*rsa.PrivateKey)
	secrets := []string{k.D.String(), k.Primes[0].String(), k.Primes[1].String()}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("client", "c", c, "v", *c)
	for _, out := range []string{fmt.Sprint(c), fmt.Sprintf("%v", *c), fmt.Sprintf("%+v", *c), fmt.Sprintf("%#v", *c), fmt.Sprintf("%#v", c), logged.String()} {
		for _, s := range secrets {
			if strings.Contains(out, s[:20]) {
				t.Fatalf("key material printed: %.200s", out)
			}
		}
		if !strings.Contains(out, c.MerchantID) {
			t.Errorf("output %q does not describe the client", out)
		}
	}
}
