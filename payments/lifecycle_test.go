package payments_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/payments"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// simClient returns the simulator and a direct merchant's Client.
func simClient(t *testing.T, opts ...wechatpaytest.Option) (*wechatpaytest.Server, *payments.Client) {
	t.Helper()
	srv := wechatpaytest.NewServer(append([]wechatpaytest.Option{wechatpaytest.WithRefundDelay(20 * time.Millisecond)}, opts...)...)
	t.Cleanup(srv.Close)
	tr, err := wechatpay.NewTransport(srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	m := srv.Merchant()
	return srv, &payments.Client{HTTP: &http.Client{Transport: tr}, BaseURL: srv.URL, MerchantID: m.ID, AppID: "wxd678efh567hg6787", Key: m.PrivateKey}
}

func order(no string, fen int64) payments.PrepayRequest {
	return payments.PrepayRequest{
		Description: "Image形象店-深圳腾大-QQ公仔",
		OutTradeNo:  no,
		NotifyURL:   "https://merchant.example/wechatpay/notify",
		Amount:      payments.OrderAmount{Total: fen},
		Payer:       &payments.Payer{OpenID: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
	}
}

func wantAPIError(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	var apiErr *wechatpay.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != status || apiErr.Code != code || !apiErr.Verified {
		t.Fatalf("%s: %v; want a verified *APIError %d %s", what, err, status, code)
	}
	if wechatpay.Retryable(err) {
		t.Errorf("%s: Retryable = true for a business error", what)
	}
}

// waitRefund queries the refund until its status leaves PROCESSING.
func waitRefund(t *testing.T, c *payments.Client, no string) *payments.Refund {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		r, err := c.QueryRefund(context.Background(), no)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != "PROCESSING" || time.Now().After(deadline) {
			return r
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLifecycleDirect walks one order of a direct merchant through the
// simulator: prepay, query, pay, query by both numbers, close refused,
// refund, refund query, over-refund refused, the day's bill.
func TestLifecycleDirect(t *testing.T) {
	srv, c := simClient(t)
	ctx := context.Background()
	m := srv.Merchant()

	prepayID, err := c.PrepayJSAPI(ctx, order("T20261123001", 100))
	if err != nil || !strings.HasPrefix(prepayID, "wx") {
		t.Fatalf("PrepayJSAPI = %q, %v", prepayID, err)
	}
	tx, err := c.QueryByOutTradeNo(ctx, "T20261123001")
	if err != nil {
		t.Fatal(err)
	}
	if tx.TradeState != "NOTPAY" || tx.OutTradeNo != "T20261123001" || tx.MchID != m.ID || tx.AppID != c.AppID || tx.Amount.Total != 100 || tx.TradeType != "JSAPI" {
		t.Errorf("unpaid order = %+v", tx)
	}

	if err := srv.Pay(m.ID, "T20261123001", wechatpaytest.PaySuccess); err != nil {
		t.Fatal(err)
	}
	tx, err = c.QueryByOutTradeNo(ctx, "T20261123001")
	if err != nil {
		t.Fatal(err)
	}
	if tx.TradeState != "SUCCESS" || tx.TransactionID == "" || tx.SuccessTime.IsZero() || tx.Amount.PayerTotal != 100 || tx.Payer.OpenID != "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" {
		t.Errorf("paid order = %+v", tx)
	}
	byID, err := c.QueryByTransactionID(ctx, tx.TransactionID)
	if err != nil || byID.OutTradeNo != "T20261123001" || byID.TradeState != "SUCCESS" {
		t.Errorf("QueryByTransactionID = %+v, %v", byID, err)
	}

	// Error cases the simulator reproduces.
	wantAPIError(t, "Close of a paid order", c.Close(ctx, "T20261123001"), 403, "ORDERPAID")
	_, err = c.PrepayJSAPI(ctx, order("T20261123001", 100))
	wantAPIError(t, "prepay of a paid order", err, 403, "ORDERPAID")
	_, err = c.QueryByOutTradeNo(ctx, "T20261123999")
	wantAPIError(t, "query of an unknown order", err, 404, "ORDER_NOT_EXIST")
	_, err = c.QueryByTransactionID(ctx, "4200000000000000000000000000")
	wantAPIError(t, "query of an unknown transaction_id", err, 404, "ORDER_NOT_EXIST")

	// Refund 30 of 100, then try to refund 80 more.
	r, err := c.Refund(ctx, payments.RefundRequest{OutTradeNo: "T20261123001", OutRefundNo: "R20261123001", Reason: "退货",
		Amount: payments.RefundAmount{Refund: 30, Total: 100}})
	if err != nil {
		t.Fatal(err)
	}
	if r.OutRefundNo != "R20261123001" || r.RefundID == "" || r.TransactionID != tx.TransactionID || r.Amount.Refund != 30 || r.Amount.Total != 100 || r.CreateTime.IsZero() {
		t.Errorf("Refund = %+v", r)
	}
	if r := waitRefund(t, c, "R20261123001"); r.Status != "SUCCESS" || r.SuccessTime.IsZero() || r.Amount.Refund != 30 {
		t.Errorf("refund after processing = %+v; want SUCCESS with a success_time", r)
	}
	_, err = c.Refund(ctx, payments.RefundRequest{TransactionID: tx.TransactionID, OutRefundNo: "R20261123002", Amount: payments.RefundAmount{Refund: 80, Total: 100}})
	wantAPIError(t, "over-refund", err, 400, "INVALID_REQUEST")
	_, err = c.QueryRefund(ctx, "R20261123999")
	wantAPIError(t, "query of an unknown refund", err, 404, "RESOURCE_NOT_EXISTS")

	// The day's trade bill lists the order and downloads with its hash.
	bill, err := c.TradeBill(ctx, payments.TradeBillRequest{BillDate: tx.SuccessTime.In(time.FixedZone("CST", 8*3600)).Format(time.DateOnly)})
	if err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	if err := bill.Download(ctx, c.HTTP, &file); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(file.String(), "T20261123001") {
		t.Errorf("trade bill does not list the order:\n%s", file.String())
	}
	if _, err := c.TradeBill(ctx, payments.TradeBillRequest{BillDate: "2026/11/23"}); err == nil || !strings.Contains(err.Error(), "bill_date") {
		t.Errorf("TradeBill with a bad date = %v; want an error naming bill_date", err)
	}
}

func TestPrepayKindsAndClose(t *testing.T) {
	srv, c := simClient(t)
	ctx := context.Background()
	m := srv.Merchant()

	native := order("N20261123001", 1)
	native.Payer = nil
	code, err := c.PrepayNative(ctx, native)
	if err != nil || code == "" { // the simulator's code_url opens its cashier page
		t.Errorf("PrepayNative = %q, %v", code, err)
	}
	app := order("A20261123001", 1)
	app.Payer = nil
	if id, err := c.PrepayApp(ctx, app); err != nil || id == "" {
		t.Errorf("PrepayApp = %q, %v", id, err)
	}
	h5 := order("H20261123001", 1)
	h5.Payer = nil
	h5.SceneInfo = &payments.SceneInfo{PayerClientIP: "14.23.150.211", H5Info: &payments.H5Info{Type: "Wap"}}
	if u, err := c.PrepayH5(ctx, h5); err != nil || !strings.HasPrefix(u, "http") {
		t.Errorf("PrepayH5 = %q, %v", u, err)
	}

	// Close an unpaid order: it cannot be paid any more.
	if err := c.Close(ctx, "N20261123001"); err != nil {
		t.Fatal(err)
	}
	tx, err := c.QueryByOutTradeNo(ctx, "N20261123001")
	if err != nil || tx.TradeState != "CLOSED" || tx.TradeType != "NATIVE" {
		t.Errorf("closed order = %+v, %v", tx, err)
	}
	if err := srv.Pay(m.ID, "N20261123001", wechatpaytest.PaySuccess); err == nil {
		t.Error("the simulator took payment for a closed order")
	}
	_, err = c.QueryByOutTradeNo(ctx, "H20261123001")
	if err != nil {
		t.Errorf("query of the H5 order: %v", err)
	}

	// Mistakes caught before anything is sent.
	before := srv.Requests()
	bad := order("X20261123001", 0)
	if _, err := c.PrepayJSAPI(ctx, bad); err == nil || !strings.Contains(err.Error(), "amount.total") {
		t.Errorf("zero amount: %v", err)
	}
	bad = order("", 1)
	if _, err := c.PrepayJSAPI(ctx, bad); err == nil || !strings.Contains(err.Error(), "out_trade_no") {
		t.Errorf("empty out_trade_no: %v", err)
	}
	bad = order("X20261123001", 1)
	bad.SubMchID = "1900000109"
	if _, err := c.PrepayJSAPI(ctx, bad); err == nil || !strings.Contains(err.Error(), "SubMerchantID") {
		t.Errorf("sub_mchid on a direct merchant's order: %v", err)
	}
	if _, err := c.Refund(ctx, payments.RefundRequest{OutRefundNo: "R1", Amount: payments.RefundAmount{Refund: 1, Total: 1}}); err == nil || !strings.Contains(err.Error(), "transaction_id and out_trade_no") {
		t.Errorf("refund naming no order: %v", err)
	}
	if n := srv.Requests() - before; n != 0 {
		t.Errorf("%d requests sent for refused input", n)
	}
}

// TestFrontEndParamsFromSimulator: the combined calls place the order and
// return parameters that verify with the merchant's public key.
func TestFrontEndParamsFromSimulator(t *testing.T) {
	srv, c := simClient(t)
	ctx := context.Background()
	m := srv.Merchant()

	j, err := c.JSAPI(ctx, order("J20261123001", 88))
	if err != nil {
		t.Fatal(err)
	}
	if j.AppID != c.AppID || !strings.HasPrefix(j.Package, "prepay_id=wx") || j.SignType != "RSA" {
		t.Errorf("JSAPI params = %+v", j)
	}
	if err := j.Verify(&m.PrivateKey.PublicKey); err != nil {
		t.Errorf("JSAPI paySign does not verify: %v", err)
	}
	again, err := c.PrepayJSAPI(ctx, order("J20261123001", 88))
	if err != nil || "prepay_id="+again != j.Package {
		t.Errorf("placing the same order again = %q, %v; want the same prepay_id (%s)", again, err, j.Package)
	}

	app := order("J20261123002", 88)
	app.Payer = nil
	a, err := c.App(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	if a.PartnerID != m.ID || a.AppID != c.AppID || a.Package != "Sign=WXPay" || a.PrepayID == "" {
		t.Errorf("App params = %+v", a)
	}
	if err := a.Verify(&m.PrivateKey.PublicKey); err != nil {
		t.Errorf("App sign does not verify: %v", err)
	}

	noKey := *c
	noKey.Key = nil
	if _, err := noKey.JSAPI(ctx, order("J20261123003", 1)); err == nil || !strings.Contains(err.Error(), "Key") {
		t.Errorf("JSAPI without a key = %v", err)
	}
}

// TestLifecyclePartner: a service provider acting for a sub-merchant uses
// the partner paths and sp_/sub_ fields.
func TestLifecyclePartner(t *testing.T) {
	srv, c := simClient(t)
	ctx := context.Background()
	c.SubMerchantID = "1900000109"
	c.SubAppID = "wx8888888888888888"

	req := order("P20261123001", 500)
	req.Payer = &payments.Payer{SubOpenID: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}
	j, err := c.JSAPI(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if j.AppID != "wx8888888888888888" {
		t.Errorf("appId = %q; want the sub_appid the order was placed with", j.AppID)
	}
	if n := srv.PathRequests("/v3/pay/partner/transactions/jsapi"); n != 1 {
		t.Errorf("partner jsapi path served %d requests; want 1", n)
	}
	if err := srv.Pay(c.SubMerchantID, "P20261123001", wechatpaytest.PaySuccess); err != nil {
		t.Fatal(err)
	}
	tx, err := c.QueryByOutTradeNo(ctx, "P20261123001")
	if err != nil {
		t.Fatal(err)
	}
	if tx.TradeState != "SUCCESS" || tx.SpMchID != c.MerchantID || tx.SubMchID != c.SubMerchantID || tx.Payer.SubOpenID == "" {
		t.Errorf("partner order = %+v", tx)
	}
	if _, err := c.QueryByTransactionID(ctx, tx.TransactionID); err != nil {
		t.Errorf("partner QueryByTransactionID: %v", err)
	}
	wantAPIError(t, "partner Close of a paid order", c.Close(ctx, "P20261123001"), 403, "ORDERPAID")

	r, err := c.Refund(ctx, payments.RefundRequest{OutTradeNo: "P20261123001", OutRefundNo: "PR20261123001", Amount: payments.RefundAmount{Refund: 500, Total: 500}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Amount.Refund != 500 {
		t.Errorf("partner refund = %+v", r)
	}
	if r := waitRefund(t, c, "PR20261123001"); r.Status != "SUCCESS" {
		t.Errorf("partner refund = %+v; want SUCCESS", r)
	}

	// Closing an unpaid partner order.
	req = order("P20261123002", 1)
	req.Payer = nil
	if _, err := c.PrepayNative(ctx, req); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx, "P20261123002"); err != nil {
		t.Errorf("partner Close: %v", err)
	}
}

// TestRetryableFromSimulatorFaults: the simulator's SYSTEM_ERROR and
// FREQUENCY_LIMITED are retryable, and the retry succeeds; a timeout after
// the simulator placed the order is an outcome unknown, resolved by a query.
func TestRetryableFromSimulatorFaults(t *testing.T) {
	srv, c := simClient(t)
	ctx := context.Background()
	srv.FailRoute("POST /v3/pay/transactions/{kind}", wechatpaytest.RouteSystemError, 1)
	_, err := c.PrepayNative(ctx, payments.PrepayRequest{Description: "d", OutTradeNo: "F20261123001", NotifyURL: "https://m.example/n", Amount: payments.OrderAmount{Total: 1}})
	if !wechatpay.Retryable(err) {
		t.Fatalf("SYSTEM_ERROR: Retryable(%v) = false", err)
	}
	srv.FailRoute("POST /v3/pay/transactions/{kind}", wechatpaytest.RouteFrequencyLimited, 1)
	_, err = c.PrepayNative(ctx, payments.PrepayRequest{Description: "d", OutTradeNo: "F20261123001", NotifyURL: "https://m.example/n", Amount: payments.OrderAmount{Total: 1}})
	if !wechatpay.Retryable(err) {
		t.Fatalf("FREQUENCY_LIMITED: Retryable(%v) = false", err)
	}
	if _, err := c.PrepayNative(ctx, payments.PrepayRequest{Description: "d", OutTradeNo: "F20261123001", NotifyURL: "https://m.example/n", Amount: payments.OrderAmount{Total: 1}}); err != nil {
		t.Fatalf("retry: %v", err)
	}

	srv.FailRoute("POST /v3/pay/transactions/out-trade-no/{no}/close", wechatpaytest.RouteTimeout, 1)
	short := *c
	hc := *c.HTTP
	hc.Timeout = 300 * time.Millisecond
	short.HTTP = &hc
	err = short.Close(ctx, "F20261123001")
	var unknown *wechatpay.OutcomeUnknownError
	if !errors.As(err, &unknown) || wechatpay.Retryable(err) {
		t.Fatalf("Close timing out = %v; want an *OutcomeUnknownError, not retryable", err)
	}
	if unknown.NumberName != "out_trade_no" || unknown.Number != "F20261123001" || !strings.Contains(err.Error(), `query by out_trade_no "F20261123001"`) {
		t.Errorf("the unknown outcome names %s %q (%v); want out_trade_no F20261123001", unknown.NumberName, unknown.Number, err)
	}
	// The query the error asks for: the close did happen.
	tx, err := c.QueryByOutTradeNo(ctx, "F20261123001")
	if err != nil || tx.TradeState != "CLOSED" {
		t.Errorf("after the unknown close: %+v, %v; want CLOSED", tx, err)
	}
}

// TestPrepayWireBody: the exact JSON a prepay sends, field names and
// formats as WeChat Pay documents them.
func TestPrepayWireBody(t *testing.T) {
	srv, c := simClient(t)
	var got []byte
	srv.Handle("POST /v3/pay/transactions/native", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		w.Write([]byte(`{"code_url":"weixin://wxpay/bizpayurl?pr=p4lpSuKzz"}`))
	}))
	req := payments.PrepayRequest{
		Description: "Image形象店-深圳腾大-QQ公仔",
		OutTradeNo:  "1217752501201407033233368018",
		TimeExpire:  time.Date(2018, 6, 8, 2, 34, 56, 789, time.UTC),
		Attach:      "自定义数据",
		NotifyURL:   "https://www.weixin.qq.com/wxpay/pay.php",
		Amount:      payments.OrderAmount{Total: 100},
		SceneInfo:   &payments.SceneInfo{PayerClientIP: "14.23.150.211"},
	}
	orig := req
	if _, err := c.PrepayNative(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	want := `{"appid":"wxd678efh567hg6787","mchid":"` + c.MerchantID + `","description":"Image形象店-深圳腾大-QQ公仔","out_trade_no":"1217752501201407033233368018","time_expire":"2018-06-08T10:34:56+08:00","attach":"自定义数据","notify_url":"https://www.weixin.qq.com/wxpay/pay.php","amount":{"total":100,"currency":"CNY"},"scene_info":{"payer_client_ip":"14.23.150.211"}}`
	if string(got) != want {
		t.Errorf("sent %s\nwant %s", got, want)
	}
	if req.MchID != "" || req.Amount.Currency != "" || req.TimeExpire != orig.TimeExpire {
		t.Errorf("the caller's request was modified: %+v", req)
	}
	var check map[string]any
	if err := json.Unmarshal(got, &check); err != nil {
		t.Fatal(err)
	}
}

// TestFundFlowBill: the request WeChat Pay documents, its answer feeding
// DownloadBill (the simulator has no fund-flow bill; a route stands in).
func TestFundFlowBill(t *testing.T) {
	srv, c := simClient(t)
	var query string
	srv.Handle("GET /v3/bill/fundflowbill", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query = r.URL.RawQuery
		w.Write([]byte(`{"hash_type":"SHA1","hash_value":"79bb0f45fc4c42234a918000b2668d689e2bde04","download_url":"https://api.mch.weixin.qq.com/v3/billdownload/file?token=xx"}`))
	}))
	b, err := c.FundFlowBill(context.Background(), payments.FundFlowBillRequest{BillDate: "2026-11-22", AccountType: "OPERATION"})
	if err != nil {
		t.Fatal(err)
	}
	if query != "account_type=OPERATION&bill_date=2026-11-22" || b.HashType != "SHA1" || b.HashValue != "79bb0f45fc4c42234a918000b2668d689e2bde04" || !strings.Contains(b.DownloadURL, "token=xx") {
		t.Errorf("FundFlowBill: query %q, answer %+v", query, b)
	}
}

// TestCloseWhileUserPaying: WeChat Pay answers a close 202 USERPAYING
// while the payer enters a password; nothing was closed, and Close says
// so instead of returning nil.
func TestCloseWhileUserPaying(t *testing.T) {
	srv, c := simClient(t)
	ctx := context.Background()
	if _, err := c.PrepayNative(ctx, order("UP20261202001", 100)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Pay(c.MerchantID, "UP20261202001", wechatpaytest.PayUserPaying); err != nil {
		t.Fatal(err)
	}
	err := c.Close(ctx, "UP20261202001")
	wantAPIError(t, "close while the payer is paying", err, http.StatusAccepted, "USERPAYING")
	tx, err := c.QueryByOutTradeNo(ctx, "UP20261202001")
	if err != nil || tx.TradeState != "USERPAYING" {
		t.Errorf("after the refused close: %+v, %v; want USERPAYING", tx, err)
	}
}
