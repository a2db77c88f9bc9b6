package wechatpaytest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// merchantSide is a merchant's backend: a client through wechatpay.Transport
// and a callback server running middleware.Notifications.
type merchantSide struct {
	client  *http.Client
	base    string
	store   *wechatpay.Store
	notify  *httptest.Server
	got     chan *middleware.Notification
	serials chan string // Wechatpay-Serial of each callback the middleware accepted
}

func newMerchantSide(t *testing.T, srv *wechatpaytest.Server) *merchantSide {
	return newMerchantSideWith(t, srv, srv.Config())
}

// newMerchantSideWith is newMerchantSide with the merchant's configuration
// cfg, for example with a public key.
func newMerchantSideWith(t *testing.T, srv *wechatpaytest.Server, cfg wechatpay.Config) *merchantSide {
	t.Helper()
	m := srv.Merchant()
	store, err := wechatpay.NewStore(wechatpay.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg.Store = store
	tr, err := wechatpay.NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ms := &merchantSide{client: &http.Client{Transport: tr}, base: srv.URL, store: store,
		got: make(chan *middleware.Notification, 16), serials: make(chan string, 64)}
	h := middleware.Notifications(middleware.Config{Keys: store, MerchantID: m.ID, APIv3Key: m.APIv3Key})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := middleware.NotificationFrom(r.Context())
			select {
			case ms.serials <- r.Header.Get("Wechatpay-Serial"):
			default: // a test that does not read them
			}
			ms.got <- n
		}))
	ms.notify = httptest.NewServer(h)
	t.Cleanup(ms.notify.Close)
	return ms
}

// call makes a signed call and returns the status, the body and the
// *wechatpay.APIError of a non-2xx answer.
func (ms *merchantSide) call(t *testing.T, method, path string, body any) (int, map[string]any, *wechatpay.APIError) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, ms.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := ms.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if !wechatpay.IsVerified(resp) {
		t.Fatalf("%s %s: answer not verified", method, path)
	}
	if err := wechatpay.CheckResponse(resp); err != nil {
		var apiErr *wechatpay.APIError
		if !errors.As(err, &apiErr) {
			t.Fatal(err)
		}
		return resp.StatusCode, nil, apiErr
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
	return resp.StatusCode, out, nil
}

// wantAPIError fails unless e is WeChat Pay's error code with status.
func wantAPIError(t *testing.T, what string, e *wechatpay.APIError, status int, code string) {
	t.Helper()
	if e == nil || e.StatusCode != status || e.Code != code {
		t.Fatalf("%s: got %v; want %d %s", what, e, status, code)
	}
}

// next waits for the next notification the merchant accepted: an event,
// however long a busy machine takes (go test's -timeout ends a hang).
func (ms *merchantSide) next(t *testing.T) *middleware.Notification {
	t.Helper()
	return <-ms.got
}

func nativeOrder(m wechatpaytest.Merchant, no, notifyURL string, total int64) map[string]any {
	return map[string]any{
		"appid": "wxd678efh567hg6787", "mchid": m.ID, "description": "Sandbox <b>tea</b> & cake",
		"out_trade_no": no, "notify_url": notifyURL,
		"amount": map[string]any{"total": total, "currency": "CNY"},
	}
}

// TestLifecycle runs a merchant's whole flow through wechatpay.Transport:
// order, query NOTPAY, pay, callback through the middleware, query
// SUCCESS, refund, REFUND.SUCCESS, over-refund refused, close refused.
func TestLifecycle(t *testing.T) {
	srv := wechatpaytest.NewServer(wechatpaytest.WithRefundDelay(300 * time.Millisecond))
	defer srv.Close()
	m := srv.Merchant()
	ms := newMerchantSide(t, srv)
	const no = "T20240101000001"
	order := nativeOrder(m, no, ms.notify.URL+"/notify", 100)

	status, out, apiErr := ms.call(t, "POST", "/v3/pay/transactions/native", order)
	if apiErr != nil || status != 200 {
		t.Fatalf("order: %d %v", status, apiErr)
	}
	codeURL, _ := out["code_url"].(string)
	if !strings.HasPrefix(codeURL, srv.URL+wechatpaytest.CashierPath+"?prepay_id=wx") {
		t.Fatalf("code_url = %q", codeURL)
	}
	if _, again, _ := ms.call(t, "POST", "/v3/pay/transactions/native", order); again["code_url"] != codeURL {
		t.Errorf("same order again: %v; want the same code_url %s", again, codeURL)
	}
	changed := nativeOrder(m, no, ms.notify.URL+"/notify", 200)
	_, _, apiErr = ms.call(t, "POST", "/v3/pay/transactions/native", changed)
	wantAPIError(t, "same out_trade_no, other amount", apiErr, 403, "OUT_TRADE_NO_USED")

	queryPath := "/v3/pay/transactions/out-trade-no/" + no + "?mchid=" + m.ID
	if _, q, _ := ms.call(t, "GET", queryPath, nil); q["trade_state"] != "NOTPAY" || q["transaction_id"] != nil {
		t.Fatalf("query before paying: %v", q)
	}
	_, _, apiErr = ms.call(t, "GET", "/v3/pay/transactions/out-trade-no/NOSUCHORDER?mchid="+m.ID, nil)
	wantAPIError(t, "query of an unknown order", apiErr, 404, "ORDER_NOT_EXIST")

	if err := srv.Pay(m.ID, no, wechatpaytest.PaySuccess); err != nil {
		t.Fatal(err)
	}
	n := ms.next(t)
	if n.EventType != "TRANSACTION.SUCCESS" {
		t.Fatalf("event %s", n.EventType)
	}
	tx, err := n.Transaction()
	if err != nil {
		t.Fatal(err)
	}
	if tx.OutTradeNo != no || tx.TradeState != "SUCCESS" || tx.Amount.Total != 100 || tx.Amount.PayerTotal != 100 ||
		tx.TransactionID == "" || tx.SuccessTime.IsZero() || tx.Payer.OpenID == "" || tx.MchID != m.ID {
		t.Fatalf("notified transaction %+v", tx)
	}

	_, q, _ := ms.call(t, "GET", queryPath, nil)
	if q["trade_state"] != "SUCCESS" || q["transaction_id"] != tx.TransactionID || q["success_time"] == nil {
		t.Fatalf("query after paying: %v", q)
	}
	if _, q, _ := ms.call(t, "GET", "/v3/pay/transactions/id/"+tx.TransactionID+"?mchid="+m.ID, nil); q["out_trade_no"] != no {
		t.Fatalf("query by transaction_id: %v", q)
	}
	_, _, apiErr = ms.call(t, "POST", "/v3/pay/transactions/out-trade-no/"+no+"/close", map[string]any{"mchid": m.ID})
	wantAPIError(t, "close of a paid order", apiErr, 403, "ORDERPAID")
	_, _, apiErr = ms.call(t, "POST", "/v3/pay/transactions/native", order)
	wantAPIError(t, "placing a paid order again", apiErr, 403, "ORDERPAID")
	if err := srv.Pay(m.ID, no, wechatpaytest.PaySuccess); err == nil || !strings.Contains(err.Error(), "ORDERPAID") {
		t.Errorf("paying twice: %v; want ORDERPAID", err)
	}

	refundBody := func(outRefundNo string, amount int64) map[string]any {
		return map[string]any{"out_trade_no": no, "out_refund_no": outRefundNo, "reason": "test",
			"amount": map[string]any{"refund": amount, "total": 100, "currency": "CNY"}}
	}
	_, rf, apiErr := ms.call(t, "POST", "/v3/refund/domestic/refunds", refundBody("R1", 30))
	if apiErr != nil || rf["status"] != "PROCESSING" || rf["refund_id"] == "" {
		t.Fatalf("refund: %v %v", rf, apiErr)
	}
	if _, q, _ := ms.call(t, "GET", queryPath, nil); q["trade_state"] != "REFUND" {
		t.Errorf("order state after a refund: %v", q["trade_state"])
	}
	n = ms.next(t)
	r, err := n.Refund()
	if err != nil {
		t.Fatal(err)
	}
	if n.EventType != "REFUND.SUCCESS" || r.OutRefundNo != "R1" || r.RefundStatus != "SUCCESS" || r.Amount.Refund != 30 ||
		r.Amount.Total != 100 || r.TransactionID != tx.TransactionID || r.SuccessTime.IsZero() {
		t.Fatalf("refund notification %s %+v", n.EventType, r)
	}
	if _, q, _ := ms.call(t, "GET", "/v3/refund/domestic/refunds/R1", nil); q["status"] != "SUCCESS" || q["refund_id"] != rf["refund_id"] {
		t.Errorf("refund query: %v", q)
	}
	_, _, apiErr = ms.call(t, "GET", "/v3/refund/domestic/refunds/R9", nil)
	wantAPIError(t, "query of an unknown refund", apiErr, 404, "RESOURCE_NOT_EXISTS")
	_, _, apiErr = ms.call(t, "POST", "/v3/refund/domestic/refunds", refundBody("R2", 71))
	wantAPIError(t, "over-refund", apiErr, 400, "INVALID_REQUEST")
	if !strings.Contains(apiErr.Message, "超过") {
		t.Errorf("over-refund message %q", apiErr.Message)
	}
	if _, rf2, apiErr := ms.call(t, "POST", "/v3/refund/domestic/refunds", refundBody("R2", 70)); apiErr != nil || rf2["status"] != "PROCESSING" {
		t.Fatalf("refund of the rest: %v %v", rf2, apiErr)
	}
	_, _, apiErr = ms.call(t, "POST", "/v3/refund/domestic/refunds", refundBody("R3", 1))
	wantAPIError(t, "refund of a fully refunded order", apiErr, 400, "INVALID_REQUEST")
	if n := ms.next(t); n.EventType != "REFUND.SUCCESS" {
		t.Errorf("second refund event %s", n.EventType)
	}

	var delivered []string
	for _, d := range waitDeliveries(t, srv, 3) {
		if d.OK && d.Status == http.StatusNoContent && d.Attempt == 1 {
			delivered = append(delivered, d.EventType+" "+d.OutRefundNo)
		}
	}
	if got := strings.Join(delivered, ","); got != "TRANSACTION.SUCCESS ,REFUND.SUCCESS R1,REFUND.SUCCESS R2" {
		t.Errorf("delivery log: %s", got)
	}

	// The day's trade bill lists the payment and both refunds.
	today := time.Now().In(time.FixedZone("CST", 8*3600)).Format(time.DateOnly)
	_, bill, _ := ms.call(t, "GET", "/v3/bill/tradebill?bill_date="+today+"&bill_type=ALL", nil)
	var file wechatpay.BillFile
	raw, _ := json.Marshal(bill)
	json.Unmarshal(raw, &file)
	var buf bytes.Buffer
	if err := file.Download(context.Background(), ms.client, &buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\r\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "交易时间,公众账号ID,商户号") ||
		!strings.Contains(lines[1], "`"+tx.TransactionID+",`"+no+",") || !strings.Contains(lines[1], ",`SUCCESS,") ||
		!strings.Contains(lines[2], ",`R1,`0.30,") || !strings.Contains(lines[3], ",`R2,`0.70,") ||
		!strings.HasPrefix(lines[4], "总交易单数") || !strings.HasPrefix(lines[5], "`3,`1.00,`1.00,") {
		t.Errorf("trade bill:\n%s", buf.String())
	}
}

// waitDeliveries waits until srv has recorded at least n delivery
// attempts (the merchant's handler runs before the sandbox reads its
// answer) and returns them. It polls the log, with no deadline of its
// own: go test's -timeout ends a hang.
func waitDeliveries(t *testing.T, srv *wechatpaytest.Server, n int) []wechatpaytest.Delivery {
	t.Helper()
	for {
		if ds := srv.Deliveries(); len(ds) >= n {
			return ds
		}
		time.Sleep(5 * time.Millisecond)
	}
}
