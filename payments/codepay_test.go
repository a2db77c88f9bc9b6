package payments_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/payments"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

const authCode = "134567890123456789"

func codeOrder(no string, fen int64) payments.CodePayRequest {
	return payments.CodePayRequest{
		Description: "Image形象店-深圳腾大-QQ公仔",
		OutTradeNo:  no,
		Payer:       payments.PaymentCode{AuthCode: authCode},
		Amount:      payments.OrderAmount{Total: fen},
		SceneInfo:   payments.CodePaySceneInfo{DeviceID: "POS1:1", StoreInfo: &payments.StoreInfo{OutID: "SZ-01"}},
	}
}

// fakeClock is CodeWait's clock: Sleep moves it forward at once and
// records the pause; onSleep, if set, runs after the n-th pause (from 1).
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	sleeps  []time.Duration
	onSleep func(n int)
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.sleeps = append(c.sleeps, d)
	n, f := len(c.sleeps), c.onSleep
	c.mu.Unlock()
	if f != nil {
		f(n)
	}
	return nil
}

func (c *fakeClock) wait() payments.CodeWait { return payments.CodeWait{Now: c.Now, Sleep: c.Sleep} }

func (c *fakeClock) elapsed(t0 time.Time) time.Duration { return c.Now().Sub(t0) }

const chargePath = "/v3/pay/transactions/codepay"

// TestCodePayCalls: each call against the simulator. A small charge is
// paid at once (200, MICROPAY); over 1,000 CNY it stays USERPAYING (a
// verified 202) until the payer's password (Server.Pay); Reverse
// refunds or closes, both REVOKED, and is harmless to repeat; a code in
// the wrong form is refused with nothing charged.
func TestCodePayCalls(t *testing.T) {
	srv, c := simClient(t)
	ctx := context.Background()
	tx, err := c.CodePay(ctx, codeOrder("P20261202001", 100))
	if err != nil || tx.TradeState != "SUCCESS" || tx.TradeType != "MICROPAY" || tx.TransactionID == "" || tx.Amount.Total != 100 {
		t.Fatalf("CodePay(1 CNY) = %+v, %v; want SUCCESS at once", tx, err)
	}
	q, err := c.QueryByOutTradeNo(ctx, "P20261202001")
	if err != nil || q.TradeState != "SUCCESS" || q.TransactionID != tx.TransactionID {
		t.Fatalf("QueryByOutTradeNo = %+v, %v", q, err)
	}
	again, err := c.CodePay(ctx, codeOrder("P20261202001", 100))
	if err != nil || again.TransactionID != tx.TransactionID {
		t.Errorf("the same charge again = %+v, %v; want the same paid order, not a second charge", again, err)
	}
	if err := c.Reverse(ctx, "P20261202001"); err != nil {
		t.Fatalf("Reverse of a paid order = %v", err)
	}
	if err := c.Reverse(ctx, "P20261202001"); err != nil {
		t.Errorf("Reverse again = %v; want harmless", err)
	}
	if q, err := c.QueryByOutTradeNo(ctx, "P20261202001"); err != nil || q.TradeState != "REVOKED" {
		t.Errorf("after Reverse: %+v, %v; want REVOKED", q, err)
	}

	big, err := c.CodePay(ctx, codeOrder("P20261202002", 100001))
	if err != nil || big.TradeState != "USERPAYING" {
		t.Fatalf("CodePay(1,000.01 CNY) = %+v, %v; want USERPAYING", big, err)
	}
	exactly, err := c.CodePay(ctx, codeOrder("P20261202003", 100000))
	if err != nil || exactly.TradeState != "SUCCESS" {
		t.Errorf("CodePay(1,000.00 CNY) = %+v, %v; want SUCCESS without a password", exactly, err)
	}
	if err := srv.Pay(c.MerchantID, "P20261202002", wechatpaytest.PaySuccess); err != nil {
		t.Fatal(err)
	}
	if q, err := c.QueryByOutTradeNo(ctx, "P20261202002"); err != nil || q.TradeState != "SUCCESS" {
		t.Errorf("after the password: %+v, %v; want SUCCESS", q, err)
	}
	for _, d := range srv.Deliveries() {
		if strings.HasPrefix(d.OutTradeNo, "P2026120200") {
			t.Errorf("a payment code order was notified: %v", d)
		}
	}

	bad := codeOrder("P20261202004", 100)
	bad.Payer.AuthCode = "999999999999999999"
	_, err = c.CodePay(ctx, bad)
	wantAPIError(t, "CodePay with a malformed code", err, http.StatusBadRequest, "PARAM_ERROR")
	if strings.Contains(err.Error(), bad.Payer.AuthCode) {
		t.Errorf("the error quotes the payment code: %v", err)
	}
	err = c.Reverse(ctx, "P20269999999")
	wantAPIError(t, "Reverse of an unknown order", err, http.StatusNotFound, "ORDER_NOT_EXIST")
	if _, err := c.PrepayNative(ctx, order("T20261202005", 100)); err != nil {
		t.Fatal(err)
	}
	err = c.Reverse(ctx, "T20261202005")
	wantAPIError(t, "Reverse of a Native order", err, http.StatusBadRequest, "INVALID_REQUEST")
}

// TestCodePayPartner: a service provider's charge and reverse go to the
// /partner/ routes with sp_ and sub_ fields.
func TestCodePayPartner(t *testing.T) {
	srv, c := simClient(t)
	c.SubMerchantID = "1900000109"
	ctx := context.Background()
	tx, err := c.CodePay(ctx, codeOrder("P20261202101", 200))
	if err != nil || tx.TradeState != "SUCCESS" || tx.SubMchID != "1900000109" || tx.SpMchID != srv.Merchant().ID {
		t.Fatalf("partner CodePay = %+v, %v", tx, err)
	}
	if err := c.Reverse(ctx, "P20261202101"); err != nil {
		t.Fatal(err)
	}
	if q, err := c.QueryByOutTradeNo(ctx, "P20261202101"); err != nil || q.TradeState != "REVOKED" {
		t.Errorf("partner query after Reverse = %+v, %v", q, err)
	}
}

// TestCodePayAndWaitUserPayingThenSuccess: the charge answers USERPAYING;
// the first query, 5 s later, still USERPAYING; the payer then enters the
// password; the next query sees SUCCESS. Nothing is reversed, one charge.
func TestCodePayAndWaitUserPayingThenSuccess(t *testing.T) {
	srv, c := simClient(t)
	clk := newFakeClock()
	t0 := clk.Now()
	clk.onSleep = func(n int) {
		if n == 2 {
			if err := srv.Pay(c.MerchantID, "P20261202201", wechatpaytest.PaySuccess); err != nil {
				t.Error(err)
			}
		}
	}
	res, err := c.CodePayAndWait(context.Background(), codeOrder("P20261202201", 150000), clk.wait())
	if err != nil {
		t.Fatal(err)
	}
	if res.State != "SUCCESS" || res.Reversed || res.Queries != 2 || res.Transaction == nil || res.Transaction.TransactionID == "" {
		t.Fatalf("CodePayAndWait = %+v; want SUCCESS after 2 queries, not reversed", res)
	}
	if got := clk.sleeps; len(got) != 2 || got[0] != 5*time.Second || got[1] != 5*time.Second {
		t.Errorf("pauses = %v; want 5s before each query", got)
	}
	if e := clk.elapsed(t0); e != 10*time.Second {
		t.Errorf("took %v of the fake clock; want 10s", e)
	}
	if n := srv.PathRequests(chargePath); n != 1 {
		t.Errorf("%d charges sent; want 1", n)
	}
}

// TestCodePayAndWaitDeadlineThenReverse: the payer never enters the
// password. Queries every 5 s for 30 s, then one reverse: REVOKED. The
// charge was sent once.
func TestCodePayAndWaitDeadlineThenReverse(t *testing.T) {
	srv, c := simClient(t)
	clk := newFakeClock()
	t0 := clk.Now()
	res, err := c.CodePayAndWait(context.Background(), codeOrder("P20261202301", 150000), clk.wait())
	if err != nil {
		t.Fatal(err)
	}
	if res.State != "REVOKED" || !res.Reversed || res.Queries != 6 {
		t.Fatalf("CodePayAndWait = %+v; want REVOKED after 6 queries", res)
	}
	if e := clk.elapsed(t0); e != 30*time.Second {
		t.Errorf("reversed after %v of the fake clock; want 30s", e)
	}
	q, err := c.QueryByOutTradeNo(context.Background(), "P20261202301")
	if err != nil || q.TradeState != "REVOKED" {
		t.Errorf("query after the reverse = %+v, %v", q, err)
	}
	if n := srv.PathRequests(chargePath); n != 1 {
		t.Errorf("%d charges sent; want 1", n)
	}
	// The payer enters the password too late: the order cannot be paid.
	if err := srv.Pay(c.MerchantID, "P20261202301", wechatpaytest.PaySuccess); err == nil {
		t.Error("a reversed order could still be paid")
	}
}

// TestCodePayAndWaitPayError: the payer cancels (PAYERROR): the order is
// reversed at once, but not within 15 s of the charge.
func TestCodePayAndWaitPayError(t *testing.T) {
	srv, c := simClient(t)
	clk := newFakeClock()
	t0 := clk.Now()
	clk.onSleep = func(n int) {
		if n == 1 {
			srv.Pay(c.MerchantID, "P20261202401", wechatpaytest.PayFail)
		}
	}
	res, err := c.CodePayAndWait(context.Background(), codeOrder("P20261202401", 150000), clk.wait())
	if err != nil || res.State != "REVOKED" || res.Queries != 1 {
		t.Fatalf("CodePayAndWait = %+v, %v; want REVOKED after one query", res, err)
	}
	if e := clk.elapsed(t0); e != 15*time.Second {
		t.Errorf("reversed %v after the charge; want 15s, WeChat Pay's minimum", e)
	}
}

// TestCodePayAndWaitReverseFails: the order stays USERPAYING and every
// reverse fails with SYSTEM_ERROR: a *CodePayError naming the number and
// saying to query and reverse again, after exactly ReverseAttempts
// reverses. Following that advice settles the order.
func TestCodePayAndWaitReverseFails(t *testing.T) {
	srv, c := simClient(t)
	clk := newFakeClock()
	srv.FailRoute("POST /v3/pay/transactions/out-trade-no/{no}/reverse", wechatpaytest.RouteSystemError, 3)
	res, err := c.CodePayAndWait(context.Background(), codeOrder("P20261202501", 150000), clk.wait())
	var cpe *payments.CodePayError
	if !errors.As(err, &cpe) || res != nil {
		t.Fatalf("CodePayAndWait = %+v, %v; want a *CodePayError", res, err)
	}
	if cpe.OutTradeNo != "P20261202501" || cpe.State != "USERPAYING" {
		t.Errorf("CodePayError = %+v", cpe)
	}
	msg := err.Error()
	for _, want := range []string{"P20261202501", "query", "reverse it again", "never charge again", "SYSTEM_ERROR", "3 times"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	var apiErr *wechatpay.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != "SYSTEM_ERROR" {
		t.Errorf("the last reverse failure is not reachable with errors.As: %v", err)
	}
	// 30 s of queries, then 3 reverses 5 s apart.
	if n := len(clk.sleeps); n != 8 {
		t.Errorf("%d pauses (%v); want 6 before queries and 2 between reverses", n, clk.sleeps)
	}
	if err := c.Reverse(context.Background(), cpe.OutTradeNo); err != nil {
		t.Fatalf("reversing again as told = %v", err)
	}
	if q, _ := c.QueryByOutTradeNo(context.Background(), cpe.OutTradeNo); q == nil || q.TradeState != "REVOKED" {
		t.Errorf("query after reversing again = %+v", q)
	}
}

// TestCodePayAndWaitChargeUnanswered: the charge is done but its answer
// is lost on the way back (an unknown outcome); CodePayAndWait queries
// instead of charging again and finds it paid.
func TestCodePayAndWaitChargeUnanswered(t *testing.T) {
	srv, _ := simClient(t)
	c := networkClient(t, srv, func(r *http.Request, resp *http.Response) (*http.Response, error) {
		if r.URL.Path != chargePath {
			return resp, nil
		}
		resp.Body.Close()
		return nil, io.ErrUnexpectedEOF // the connection broke after WeChat Pay charged
	})
	clk := newFakeClock()
	res, err := c.CodePayAndWait(context.Background(), codeOrder("P20261202601", 100), clk.wait())
	if err != nil || res.State != "SUCCESS" || res.Queries != 1 || res.Transaction == nil || res.Transaction.TransactionID == "" {
		t.Fatalf("CodePayAndWait = %+v, %v; want SUCCESS found by the first query", res, err)
	}
	if n := srv.PathRequests(chargePath); n != 1 {
		t.Errorf("%d charges sent; want 1, never a second one after an unknown outcome", n)
	}
}

// TestCodePayAndWaitRefusedAndNeverPlaced: a refusal WeChat Pay signed
// comes back as it is, with no query and no reverse; a charge that never
// reached WeChat Pay (every answer lost, the order unknown) ends with the
// verified ORDER_NOT_EXIST of the reverse: nothing charged.
func TestCodePayAndWaitRefusedAndNeverPlaced(t *testing.T) {
	srv, c := simClient(t)
	clk := newFakeClock()
	bad := codeOrder("P20261202701", 100)
	bad.Payer.AuthCode = "12345"
	res, err := c.CodePayAndWait(context.Background(), bad, clk.wait())
	wantAPIError(t, "CodePayAndWait with a malformed code", err, http.StatusBadRequest, "PARAM_ERROR")
	if res != nil || len(clk.sleeps) != 0 {
		t.Errorf("refusal: result %+v after %d pauses; want none", res, len(clk.sleeps))
	}

	srv.FailRoute("POST /v3/pay/transactions/codepay", wechatpaytest.RouteSystemError, 1)
	clk = newFakeClock()
	res, err = c.CodePayAndWait(context.Background(), codeOrder("P20261202702", 100), clk.wait())
	wantAPIError(t, "CodePayAndWait of a charge WeChat Pay never took", err, http.StatusNotFound, "ORDER_NOT_EXIST")
	if res != nil || len(clk.sleeps) != 6 {
		t.Errorf("never placed: result %+v after %d pauses; want 6 queries' worth", res, len(clk.sleeps))
	}
	if n := srv.PathRequests(chargePath); n != 2 {
		t.Errorf("%d charges sent in the two calls; want one each", n)
	}
}

// TestCodePayAndWaitCancelled: the caller gives up while the order is
// USERPAYING: a *CodePayError saying to query and reverse, not silence.
func TestCodePayAndWaitCancelled(t *testing.T) {
	_, c := simClient(t)
	clk := newFakeClock()
	ctx, cancel := context.WithCancel(context.Background())
	clk.onSleep = func(n int) {
		if n == 2 {
			cancel()
		}
	}
	_, err := c.CodePayAndWait(ctx, codeOrder("P20261202801", 150000), clk.wait())
	var cpe *payments.CodePayError
	if !errors.As(err, &cpe) || cpe.OutTradeNo != "P20261202801" || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled CodePayAndWait = %v; want a *CodePayError wrapping context.Canceled", err)
	}
}

// The payment code is a credential: no way of printing a request shows
// it.
func TestPaymentCodeNotPrinted(t *testing.T) {
	req := codeOrder("P20261202901", 100)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("charge", "req", req, "payer", req.Payer)
	for _, s := range []string{fmt.Sprint(req), fmt.Sprintf("%+v", req), fmt.Sprintf("%#v", req), fmt.Sprintf("%v", &req), fmt.Sprint(req.Payer), logged.String()} {
		if strings.Contains(s, authCode) {
			t.Errorf("printed the payment code: %s", s)
		}
		if !strings.Contains(s, "redacted") {
			t.Errorf("%s: does not say the code was left out", s)
		}
	}
}

// roundTripFunc is an http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// networkClient returns a Client whose network passes each request to the
// simulator and hands its answer to edit: the network between merchant
// and WeChat Pay, as an attacker or a broken link would make it.
func networkClient(t *testing.T, srv *wechatpaytest.Server, edit func(*http.Request, *http.Response) (*http.Response, error)) *payments.Client {
	t.Helper()
	cfg := srv.Config()
	inner := cfg.Base
	if inner == nil {
		inner = http.DefaultTransport
	}
	cfg.Base = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := inner.RoundTrip(r)
		if err != nil {
			return resp, err
		}
		return edit(r, resp)
	})
	tr, err := wechatpay.NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := srv.Merchant()
	return &payments.Client{HTTP: &http.Client{Transport: tr}, BaseURL: srv.URL, MerchantID: m.ID, AppID: "wxd678efh567hg6787", Key: m.PrivateKey}
}

// forgingClient returns a Client whose network replaces the answer to
// every request for path with an unsigned 400, after WeChat Pay (the
// simulator) did the work: an attacker on the path forging a refusal.
func forgingClient(t *testing.T, srv *wechatpaytest.Server, path string) *payments.Client {
	return networkClient(t, srv, func(r *http.Request, resp *http.Response) (*http.Response, error) {
		if r.URL.Path != path {
			return resp, nil
		}
		resp.Body.Close()
		body := `{"code":"PARAM_ERROR","message":"付款码无效"}`
		return &http.Response{StatusCode: http.StatusBadRequest, Status: "400 Bad Request", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)), Request: r}, nil
	})
}

// TestForgedRefusalIsNotTrusted plays the attack: the charge succeeds at
// WeChat Pay, and the network swaps the answer for an unsigned "400
// PARAM_ERROR". Believed, the cashier would ask for another code and
// charge the payer twice. CodePay reports an unknown outcome naming the
// number; CodePayAndWait queries and finds the order paid.
func TestForgedRefusalIsNotTrusted(t *testing.T) {
	srv, _ := simClient(t)
	c := forgingClient(t, srv, chargePath)
	_, err := c.CodePay(context.Background(), codeOrder("P20261202A01", 100))
	wantUnknown(t, "CodePay with a forged refusal", err, "out_trade_no", "P20261202A01")

	clk := newFakeClock()
	res, err := c.CodePayAndWait(context.Background(), codeOrder("P20261202A02", 100), clk.wait())
	if err != nil || res.State != "SUCCESS" || res.Queries != 1 {
		t.Fatalf("CodePayAndWait with a forged refusal = %+v, %v; want SUCCESS found by query", res, err)
	}
	if n := srv.PathRequests(chargePath); n != 2 {
		t.Errorf("%d charges for two calls; want one each", n)
	}
}

// TestForgedCombineRefusal: the same attack on a combine prepay: an
// unknown outcome naming combine_out_trade_no, not a refusal.
func TestForgedCombineRefusal(t *testing.T) {
	srv, _ := simClient(t)
	c := forgingClient(t, srv, "/v3/combine-transactions/native")
	req := payments.CombinePrepayRequest{CombineOutTradeNo: "C20261202A01", NotifyURL: "https://merchant.example/combine", SubOrders: []payments.CombineSubOrder{
		{MchID: c.MerchantID, OutTradeNo: "C20261202A01A", Attach: "a", Description: "tea", Amount: payments.CombineAmount{TotalAmount: 1}},
		{MchID: c.MerchantID, OutTradeNo: "C20261202A01B", Attach: "a", Description: "tea", Amount: payments.CombineAmount{TotalAmount: 2}},
	}}
	_, err := c.CombinePrepayNative(context.Background(), req)
	wantUnknown(t, "CombinePrepayNative with a forged refusal", err, "combine_out_trade_no", "C20261202A01")
	if q, err := c.QueryCombine(context.Background(), "C20261202A01"); err != nil || len(q.SubOrders) != 2 {
		t.Errorf("QueryCombine = %+v, %v; want the order WeChat Pay placed", q, err)
	}
}

// TestCodePayAndWaitRateLimited: a signed 429 is a refusal: nothing
// charged, no waiting; wechatpay.Retryable says to try again later.
func TestCodePayAndWaitRateLimited(t *testing.T) {
	srv, c := simClient(t)
	srv.FailRoute("POST /v3/pay/transactions/codepay", wechatpaytest.RouteFrequencyLimited, 1)
	clk := newFakeClock()
	res, err := c.CodePayAndWait(context.Background(), codeOrder("P20261202B01", 100), clk.wait())
	var apiErr *wechatpay.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTooManyRequests || res != nil || len(clk.sleeps) != 0 || !wechatpay.Retryable(err) {
		t.Fatalf("CodePayAndWait rate-limited = %+v, %v after %d pauses; want the retryable 429 at once", res, err, len(clk.sleeps))
	}
	if _, err := c.QueryByOutTradeNo(context.Background(), "P20261202B01"); err == nil {
		t.Error("a rate-limited charge created an order")
	}
}

// TestCodePayAndWaitChargeHeld plays an attacker who holds the charge
// request: WeChat Pay has not seen it, every query says ORDER_NOT_EXIST
// and so does the reverse. The charge could still be delivered while its
// signature is valid, so this is not "nothing charged" but a
// *CodePayError telling to query again.
func TestCodePayAndWaitChargeHeld(t *testing.T) {
	srv, _ := simClient(t)
	cfg := srv.Config()
	inner := cfg.Base
	if inner == nil {
		inner = http.DefaultTransport
	}
	var held *http.Request
	cfg.Base = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Path == chargePath {
			held = r
			return nil, io.ErrUnexpectedEOF // what the cashier sees: a broken connection
		}
		return inner.RoundTrip(r)
	})
	tr, err := wechatpay.NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &payments.Client{HTTP: &http.Client{Transport: tr}, BaseURL: srv.URL, MerchantID: cfg.MerchantID, AppID: "wxd678efh567hg6787"}
	clk := newFakeClock()
	res, err := c.CodePayAndWait(context.Background(), codeOrder("P20261202C01", 100), clk.wait())
	var cpe *payments.CodePayError
	if !errors.As(err, &cpe) || res != nil || cpe.OutTradeNo != "P20261202C01" || !strings.Contains(err.Error(), "may still arrive") {
		t.Fatalf("CodePayAndWait with a held charge = %+v, %v; want a *CodePayError saying the charge may still arrive", res, err)
	}
	if held == nil || srv.PathRequests(chargePath) != 0 {
		t.Fatalf("the charge was not held (held %v, %d reached WeChat Pay)", held != nil, srv.PathRequests(chargePath))
	}
}

// An error answer that quotes the payment code (a PARAM_ERROR's detail
// holds the value it refused) is redacted before anyone can log it.
func TestCodePayErrorDoesNotQuoteTheCode(t *testing.T) {
	srv, c := simClient(t)
	srv.Handle("POST /v3/pay/transactions/codepay", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"code":"PARAM_ERROR","message":"付款码%s无效","detail":{"field":"/payer/auth_code","value":%q,"issue":"无效","location":"body"}}`, authCode, authCode)
	}))
	_, err := c.CodePay(context.Background(), codeOrder("P20261202D01", 100))
	wantAPIError(t, "CodePay refused", err, http.StatusBadRequest, "PARAM_ERROR")
	if strings.Contains(err.Error(), authCode) || !strings.Contains(err.Error(), "auth_code redacted") {
		t.Errorf("error = %v; want the code redacted", err)
	}
}

// A 202 that says USERPAYING as an error code (the form WeChat Pay's close
// pages show) is read as the USERPAYING state, not an unknown outcome.
func TestCodePayUserPayingAsCode(t *testing.T) {
	srv, c := simClient(t)
	srv.Handle("POST /v3/pay/transactions/codepay", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte(`{"code":"USERPAYING","message":"需要用户输入支付密码"}`))
	}))
	tx, err := c.CodePay(context.Background(), codeOrder("P20261202E01", 150000))
	if err != nil || tx.TradeState != "USERPAYING" || tx.OutTradeNo != "P20261202E01" {
		t.Fatalf("CodePay = %+v, %v; want USERPAYING", tx, err)
	}
}
