package payments_test

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/payments"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

const combineAppID = "wxd678efh567hg6787"

// combineSide is a combine merchant against the simulator: a Client, and
// its notify_url behind Notifications and a Router with the combined
// handler registered by middleware.On.
type combineSide struct {
	srv    *wechatpaytest.Server
	c      *payments.Client
	notify *httptest.Server
	got    chan *payments.CombineTransaction
	errs   chan error
}

func newCombineSide(t *testing.T) *combineSide {
	t.Helper()
	srv := wechatpaytest.NewServer()
	t.Cleanup(srv.Close)
	store, err := wechatpay.NewStore(wechatpay.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg := srv.Config()
	cfg.Store = store
	tr, err := wechatpay.NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := srv.Merchant()
	cs := &combineSide{srv: srv, got: make(chan *payments.CombineTransaction, 4), errs: make(chan error, 4),
		c: &payments.Client{HTTP: &http.Client{Transport: tr}, BaseURL: srv.URL, MerchantID: m.ID, AppID: combineAppID, Key: m.PrivateKey}}
	rt := &middleware.Router{ErrorHandler: func(r *http.Request, err error) { cs.errs <- err }}
	middleware.On(rt, payments.EventCombineTransactionSuccess, func(ctx context.Context, n *middleware.Notification, c *payments.CombineTransaction) error {
		cs.got <- c
		return nil
	})
	cs.notify = httptest.NewServer(middleware.Notifications(middleware.Config{Keys: store, MerchantID: m.ID, APIv3Key: m.APIv3Key})(rt))
	t.Cleanup(cs.notify.Close)
	return cs
}

func (cs *combineSide) order(no string, fen ...int64) payments.CombinePrepayRequest {
	req := payments.CombinePrepayRequest{
		CombineOutTradeNo: no,
		NotifyURL:         cs.notify.URL + "/combine/notify",
		CombinePayerInfo:  &payments.CombinePayer{OpenID: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
	}
	for i, f := range fen {
		req.SubOrders = append(req.SubOrders, payments.CombineSubOrder{
			MchID: cs.c.MerchantID, Attach: "深圳分店", Description: "Image形象店-深圳腾大-QQ公仔",
			OutTradeNo: no + "S" + string(rune('1'+i)), Amount: payments.CombineAmount{TotalAmount: f},
		})
	}
	return req
}

// TestCombineLifecycle: a JSAPI combine order of two sub-orders is
// placed, queried (each sub-order NOTPAY), paid through the simulator's
// control endpoint as "wechatpay pay" does, and announced by exactly one
// combined TRANSACTION.SUCCESS, decoded through Notifications and a
// Router into a CombineTransaction; the query then shows both sub-orders
// paid, and closing a paid order is refused.
func TestCombineLifecycle(t *testing.T) {
	cs := newCombineSide(t)
	ctx := context.Background()
	req := cs.order("C20261202001", 100, 250)
	prepayID, err := cs.c.CombinePrepayJSAPI(ctx, req)
	if err != nil || !strings.HasPrefix(prepayID, "wx") {
		t.Fatalf("CombinePrepayJSAPI = %q, %v", prepayID, err)
	}
	if req.SubOrders[0].Amount.Currency != "" {
		t.Error("CombinePrepayJSAPI modified the caller's sub_orders")
	}
	again, err := cs.c.CombinePrepayJSAPI(ctx, req)
	if err != nil || again != prepayID {
		t.Errorf("placing the same combine order again = %q, %v; want the same prepay_id %q", again, err, prepayID)
	}
	q, err := cs.c.QueryCombine(ctx, req.CombineOutTradeNo)
	if err != nil {
		t.Fatal(err)
	}
	if q.CombineAppID != combineAppID || q.CombineMchID != cs.c.MerchantID || len(q.SubOrders) != 2 || q.Paid() {
		t.Fatalf("QueryCombine before paying = %+v", q)
	}
	for _, s := range q.SubOrders {
		if s.TradeState != "NOTPAY" || s.TransactionID != "" || !s.SuccessTime.IsZero() || s.Amount.Currency != "CNY" {
			t.Errorf("sub-order before paying = %+v; want NOTPAY, no transaction", s)
		}
	}

	// What "wechatpay pay -sandbox-dir DIR C20261202001" sends.
	status, body := controlPay(t, cs, req.CombineOutTradeNo)
	if status != http.StatusOK || !strings.Contains(body, `"combine_out_trade_no":"C20261202001"`) {
		t.Fatalf("POST %s = %d %s", wechatpaytest.PayPath, status, body)
	}
	var got *payments.CombineTransaction
	select {
	case got = <-cs.got:
	case err := <-cs.errs:
		t.Fatalf("the combined notification failed: %v", err)
	}
	if got.CombineOutTradeNo != req.CombineOutTradeNo || !got.Paid() || len(got.SubOrders) != 2 || got.CombinePayerInfo == nil {
		t.Fatalf("combined notification = %+v; want both sub-orders SUCCESS", got)
	}
	for i, s := range got.SubOrders {
		if s.OutTradeNo != req.SubOrders[i].OutTradeNo || s.TransactionID == "" || s.SuccessTime.IsZero() || s.Amount.PayerAmount != req.SubOrders[i].Amount.TotalAmount {
			t.Errorf("notified sub-order %d = %+v", i, s)
		}
	}
	if got.SubOrders[0].TransactionID == got.SubOrders[1].TransactionID {
		t.Error("both sub-orders have the same transaction_id")
	}
	q, err = cs.c.QueryCombine(ctx, req.CombineOutTradeNo)
	if err != nil || !q.Paid() || q.SubOrders[1].TransactionID != got.SubOrders[1].TransactionID {
		t.Fatalf("QueryCombine after paying = %+v, %v", q, err)
	}
	n := 0
	for _, d := range cs.srv.Deliveries() {
		if d.OutTradeNo == req.CombineOutTradeNo {
			n++
			if d.EventType != "TRANSACTION.SUCCESS" || !d.OK {
				t.Errorf("delivery %v", d)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d deliveries for the combine order; want exactly one combined notification", n)
	}
	err = cs.c.CloseCombine(ctx, req.CombineOutTradeNo, closeList(req))
	wantAPIError(t, "CloseCombine of a paid order", err, http.StatusForbidden, "ORDERPAID")
	if err := cs.srv.PayCombine(cs.c.MerchantID, req.CombineOutTradeNo, wechatpaytest.PaySuccess); err == nil {
		t.Error("PayCombine of a paid order succeeded")
	}
}

func controlPay(t *testing.T, cs *combineSide, no string) (int, string) {
	t.Helper()
	var out map[string]any
	err := payments.Do(context.Background(), cs.c.HTTP, http.MethodPost, cs.srv.URL+wechatpaytest.PayPath, map[string]string{"out_trade_no": no}, &out)
	if err != nil {
		return 0, err.Error()
	}
	b, _ := json.Marshal(out)
	return http.StatusOK, string(b)
}

func closeList(req payments.CombinePrepayRequest) []payments.CombineCloseSubOrder {
	var l []payments.CombineCloseSubOrder
	for _, s := range req.SubOrders {
		l = append(l, payments.CombineCloseSubOrder{MchID: s.MchID, OutTradeNo: s.OutTradeNo})
	}
	return l
}

// TestCombineKindsAndClose places App, H5 and Native combine orders, and
// closes one: a partial list is refused, the full one closes every
// sub-order, and the closed number cannot be placed again.
func TestCombineKindsAndClose(t *testing.T) {
	cs := newCombineSide(t)
	ctx := context.Background()
	app := cs.order("C20261202101", 100, 200)
	app.CombinePayerInfo = nil
	if id, err := cs.c.CombinePrepayApp(ctx, app); err != nil || !strings.HasPrefix(id, "wx") {
		t.Errorf("CombinePrepayApp = %q, %v", id, err)
	}
	h5 := cs.order("C20261202102", 100, 200)
	h5.SceneInfo = &payments.CombineSceneInfo{PayerClientIP: "14.17.22.32", H5Info: &payments.H5Info{Type: "Wap"}}
	if u, err := cs.c.CombinePrepayH5(ctx, h5); err != nil || !strings.HasPrefix(u, "https://") {
		t.Errorf("CombinePrepayH5 = %q, %v", u, err)
	}
	h5.CombineOutTradeNo, h5.SceneInfo = "C20261202103", nil
	_, err := cs.c.CombinePrepayH5(ctx, h5)
	wantAPIError(t, "CombinePrepayH5 without scene_info", err, http.StatusBadRequest, "PARAM_ERROR")
	native := cs.order("C20261202104", 100, 200)
	code, err := cs.c.CombinePrepayNative(ctx, native)
	if err != nil || !strings.HasPrefix(code, "weixin://wxpay/bizpayurl?pr=") {
		t.Fatalf("CombinePrepayNative = %q, %v", code, err)
	}
	one := cs.order("C20261202105", 100)
	_, err = cs.c.CombinePrepayNative(ctx, one)
	wantAPIError(t, "a direct merchant's combine order of one sub-order", err, http.StatusBadRequest, "PARAM_ERROR")

	// While the payer enters a password, close answers 202 USERPAYING
	// and closes nothing: an error, not success.
	paying := cs.order("C20261202106", 100, 200)
	if _, err := cs.c.CombinePrepayNative(ctx, paying); err != nil {
		t.Fatal(err)
	}
	if err := cs.srv.PayCombine(cs.c.MerchantID, paying.CombineOutTradeNo, wechatpaytest.PayUserPaying); err != nil {
		t.Fatal(err)
	}
	err = cs.c.CloseCombine(ctx, paying.CombineOutTradeNo, closeList(paying))
	wantAPIError(t, "CloseCombine while the payer is paying", err, http.StatusAccepted, "USERPAYING")
	if q, _ := cs.c.QueryCombine(ctx, paying.CombineOutTradeNo); q == nil || q.SubOrders[0].TradeState != "USERPAYING" {
		t.Errorf("after the refused close: %+v; want still USERPAYING", q)
	}

	list := closeList(native)
	err = cs.c.CloseCombine(ctx, native.CombineOutTradeNo, list[:1])
	wantAPIError(t, "CloseCombine with part of the sub-orders", err, http.StatusBadRequest, "INVALID_REQUEST")
	if err := cs.c.CloseCombine(ctx, native.CombineOutTradeNo, list); err != nil {
		t.Fatalf("CloseCombine = %v", err)
	}
	q, err := cs.c.QueryCombine(ctx, native.CombineOutTradeNo)
	if err != nil || q.SubOrders[0].TradeState != "CLOSED" || q.SubOrders[1].TradeState != "CLOSED" {
		t.Fatalf("QueryCombine after close = %+v, %v", q, err)
	}
	_, err = cs.c.CombinePrepayNative(ctx, native)
	wantAPIError(t, "placing a closed combine order again", err, http.StatusBadRequest, "ORDER_CLOSED")
	_, err = cs.c.QueryCombine(ctx, "C20269999999")
	wantAPIError(t, "QueryCombine of an unknown number", err, http.StatusNotFound, "ORDER_NOT_EXIST")
}

// TestCombineFrontEndParams: the parameters of a combine order are for
// its combine_appid, and verify with the merchant's public key.
func TestCombineFrontEndParams(t *testing.T) {
	cs := newCombineSide(t)
	ctx := context.Background()
	pub := cs.c.Key.Public().(*rsa.PublicKey)
	js, err := cs.c.CombineJSAPI(ctx, cs.order("C20261202201", 100, 200))
	if err != nil {
		t.Fatal(err)
	}
	if js.AppID != combineAppID || !strings.HasPrefix(js.Package, "prepay_id=wx") || js.SignType != "RSA" {
		t.Errorf("CombineJSAPI = %+v", js)
	}
	if err := js.Verify(pub); err != nil {
		t.Errorf("JSAPI paySign does not verify with the merchant's public key: %v", err)
	}
	js.AppID = "wx0000000000000000" // signed for another app: refused
	if err := js.Verify(pub); err == nil {
		t.Error("JSAPI paySign verifies for another appId")
	}
	app := cs.order("C20261202202", 100, 200)
	app.CombinePayerInfo = nil
	ap, err := cs.c.CombineApp(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	if ap.AppID != combineAppID || ap.PartnerID != cs.c.MerchantID || ap.Package != "Sign=WXPay" {
		t.Errorf("CombineApp = %+v", ap)
	}
	if err := ap.Verify(pub); err != nil {
		t.Errorf("App sign does not verify: %v", err)
	}
}

// TestCombineOutcomeUnknown: a combine prepay or close whose answer does
// not verify, or never comes, is an *OutcomeUnknownError naming the
// combine_out_trade_no; the query then tells what happened.
func TestCombineOutcomeUnknown(t *testing.T) {
	cs := newCombineSide(t)
	ctx := context.Background()
	req := cs.order("C20261202301", 100, 200)
	cs.srv.SetFault(wechatpaytest.FaultTamperBody)
	_, err := cs.c.CombinePrepayJSAPI(ctx, req)
	cs.srv.SetFault(wechatpaytest.FaultNone)
	wantUnknown(t, "CombinePrepayJSAPI with a tampered answer", err, "combine_out_trade_no", req.CombineOutTradeNo)
	if q, err := cs.c.QueryCombine(ctx, req.CombineOutTradeNo); err != nil || len(q.SubOrders) != 2 {
		t.Errorf("QueryCombine after the unknown outcome = %+v, %v; want the order WeChat Pay placed", q, err)
	}

	// A hung answer: the order is placed, the answer never comes.
	hung := cs.order("C20261202302", 100, 200)
	cs.srv.FailRoute("POST /v3/combine-transactions/{kind}", wechatpaytest.RouteTimeout, 1)
	short, cancel := context.WithCancel(ctx)
	cancel2 := watchPlaced(t, cs, hung.CombineOutTradeNo, cancel)
	defer cancel2()
	_, err = cs.c.CombinePrepayNative(short, hung)
	wantUnknown(t, "CombinePrepayNative without an answer", err, "combine_out_trade_no", hung.CombineOutTradeNo)

	cs.srv.SetFault(wechatpaytest.FaultTamperTimestamp) // a 204 has no body to tamper with
	err = cs.c.CloseCombine(ctx, req.CombineOutTradeNo, closeList(req))
	cs.srv.SetFault(wechatpaytest.FaultNone)
	wantUnknown(t, "CloseCombine with a tampered answer", err, "combine_out_trade_no", req.CombineOutTradeNo)
}

// watchPlaced cancels once the combine order no exists in the simulator
// (queried by a second client of the same merchant), so that the hung
// request is abandoned only after WeChat Pay did the work.
func watchPlaced(t *testing.T, cs *combineSide, no string, cancel context.CancelFunc) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := cs.c.QueryCombine(context.Background(), no); err == nil {
				cancel()
				return
			}
			time.Sleep(5 * time.Millisecond) // a poll, not a deadline
		}
	}()
	return func() { close(done); <-stopped; cancel() }
}

func wantUnknown(t *testing.T, what string, err error, field, number string) {
	t.Helper()
	var unknown *wechatpay.OutcomeUnknownError
	if !errors.As(err, &unknown) || unknown.NumberName != field || unknown.Number != number || !strings.Contains(err.Error(), number) {
		t.Fatalf("%s = %v; want an *OutcomeUnknownError naming %s %s", what, err, field, number)
	}
	if wechatpay.Retryable(err) {
		t.Errorf("%s: Retryable = true for an unknown outcome", what)
	}
}

// TestCombineRefusedBeforeSending: requests WeChat Pay would refuse are
// refused before anything is sent; a plain order's notification does not
// decode as a combine order.
func TestCombineRefusedBeforeSending(t *testing.T) {
	cs := newCombineSide(t)
	ctx := context.Background()
	before := cs.srv.Requests()
	for name, req := range map[string]payments.CombinePrepayRequest{
		"no number":     {SubOrders: cs.order("x", 1, 1).SubOrders},
		"no sub-orders": cs.order("C20261202401"),
		"zero amount":   cs.order("C20261202402", 100, 0),
		"no sub mchid": func() payments.CombinePrepayRequest {
			r := cs.order("C20261202403", 1, 1)
			r.SubOrders[1].MchID = ""
			return r
		}(),
		"no sub number": func() payments.CombinePrepayRequest {
			r := cs.order("C20261202404", 1, 1)
			r.SubOrders[0].OutTradeNo = ""
			return r
		}(),
	} {
		if _, err := cs.c.CombinePrepayNative(ctx, req); err == nil || !strings.HasPrefix(err.Error(), "wechatpay/payments: ") {
			t.Errorf("%s: err = %v; want a wechatpay/payments error", name, err)
		}
	}
	if err := cs.c.CloseCombine(ctx, "C20261202405", nil); err == nil {
		t.Error("CloseCombine without sub-orders: no error")
	}
	if n := cs.srv.Requests(); n != before {
		t.Errorf("%d requests reached the simulator; want none", n-before)
	}
	// A plain order's notification posted to the combine notify_url: 400
	// and the Router's ErrorHandler, so that WeChat Pay delivers it again
	// and the mix-up shows.
	resp, err := cs.srv.Notify(ctx, cs.notify.URL, "TRANSACTION.SUCCESS", wechatpaytest.PaymentResource(cs.srv.Merchant()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a plain order's notification at the combine URL answered %d; want 400", resp.StatusCode)
	}
	select {
	case err := <-cs.errs:
		if !strings.Contains(err.Error(), "TRANSACTION.SUCCESS") {
			t.Errorf("ErrorHandler got %v", err)
		}
	default:
		t.Error("the ErrorHandler was not told")
	}
	select {
	case c := <-cs.got:
		t.Errorf("the combine handler got a plain order: %+v", c)
	default:
	}
	var c payments.CombineTransaction
	if err := json.Unmarshal([]byte(`{"out_trade_no":"T1","trade_state":"SUCCESS","amount":{"total":1}}`), &c); err == nil {
		t.Error("a plain transaction decodes as a CombineTransaction")
	}
}
