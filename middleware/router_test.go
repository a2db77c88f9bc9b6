package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/payments"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// routerFixture runs rt behind Notifications for a sandbox merchant.
type routerFixture struct {
	srv *wechatpaytest.Server
	m   wechatpaytest.Merchant
	ts  *httptest.Server

	mu   sync.Mutex
	errs []error
}

func newRouterFixture(t *testing.T, rt *middleware.Router) *routerFixture {
	t.Helper()
	f := &routerFixture{srv: wechatpaytest.NewServer()}
	t.Cleanup(f.srv.Close)
	f.m = f.srv.Merchant()
	store, err := wechatpay.NewStore(wechatpay.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Register(f.srv.Config()); err != nil {
		t.Fatal(err)
	}
	rt.ErrorHandler = func(_ *http.Request, err error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.errs = append(f.errs, err)
	}
	f.ts = httptest.NewServer(middleware.Notifications(middleware.Config{Keys: store, MerchantID: f.m.ID, APIv3Key: f.m.APIv3Key})(rt))
	t.Cleanup(f.ts.Close)
	return f
}

func (f *routerFixture) lastError() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.errs) == 0 {
		return nil
	}
	return f.errs[len(f.errs)-1]
}

func (f *routerFixture) notify(t *testing.T, event string, resource any, opts ...wechatpaytest.NotifyOption) (int, string) {
	t.Helper()
	resp, err := f.srv.Notify(context.Background(), f.ts.URL, event, resource, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRouterDispatchesByEventType(t *testing.T) {
	var rt middleware.Router
	var mu sync.Mutex
	got := map[string]string{} // event type -> out_trade_no or refund status seen
	rt.OnTransaction(middleware.EventTransactionSuccess, func(ctx context.Context, n *middleware.Notification, tx *middleware.Transaction) error {
		mu.Lock()
		defer mu.Unlock()
		got[n.EventType] = tx.OutTradeNo + "/" + tx.TradeState
		return nil
	})
	for _, ev := range []string{middleware.EventRefundSuccess, middleware.EventRefundAbnormal, middleware.EventRefundClosed} {
		rt.OnRefund(ev, func(ctx context.Context, n *middleware.Notification, rf *middleware.Refund) error {
			mu.Lock()
			defer mu.Unlock()
			got[n.EventType] = rf.OutRefundNo + "/" + rf.RefundStatus
			return nil
		})
	}
	rt.Handle("PROFITSHARING.SUCCESS", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, ok := middleware.NotificationFrom(r.Context())
		if !ok {
			middleware.Fail(w, http.StatusInternalServerError, "none")
			return
		}
		mu.Lock()
		got[n.EventType] = string(n.Plaintext)
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	f := newRouterFixture(t, &rt)

	pay := wechatpaytest.PaymentResource(f.m)
	if status, body := f.notify(t, "TRANSACTION.SUCCESS", pay); status != http.StatusNoContent {
		t.Fatalf("TRANSACTION.SUCCESS answered %d %s; want 204", status, body)
	}
	for _, st := range []string{"SUCCESS", "ABNORMAL", "CLOSED"} {
		res := wechatpaytest.RefundResource(f.m)
		res["refund_status"] = st
		res["out_refund_no"] = "R-" + st
		if st != "SUCCESS" {
			delete(res, "success_time")
		}
		if status, body := f.notify(t, "REFUND."+st, res); status != http.StatusNoContent {
			t.Fatalf("REFUND.%s answered %d %s; want 204", st, status, body)
		}
	}
	if status, body := f.notify(t, "PROFITSHARING.SUCCESS", map[string]any{"sub_mchid": "1900000109"}); status != http.StatusOK {
		t.Fatalf("PROFITSHARING.SUCCESS answered %d %s; want the handler's 200", status, body)
	}

	want := map[string]string{
		"TRANSACTION.SUCCESS":   pay["out_trade_no"].(string) + "/SUCCESS",
		"REFUND.SUCCESS":        "R-SUCCESS/SUCCESS",
		"REFUND.ABNORMAL":       "R-ABNORMAL/ABNORMAL",
		"REFUND.CLOSED":         "R-CLOSED/CLOSED",
		"PROFITSHARING.SUCCESS": `{"sub_mchid":"1900000109"}`,
	}
	mu.Lock()
	defer mu.Unlock()
	for ev, w := range want {
		if got[ev] != w {
			t.Errorf("handler for %s saw %q; want %q", ev, got[ev], w)
		}
	}
	if err := f.lastError(); err != nil {
		t.Errorf("ErrorHandler got %v; want nothing", err)
	}
}

func TestRouterUnhandledEvent(t *testing.T) {
	var rt middleware.Router
	rt.OnTransaction(middleware.EventTransactionSuccess, func(context.Context, *middleware.Notification, *middleware.Transaction) error {
		t.Error("the transaction handler ran for another event type")
		return nil
	})
	f := newRouterFixture(t, &rt)
	status, body := f.notify(t, "MARKETING.FAVOR.USED", map[string]any{"stock_id": "1"})
	if status != http.StatusNotImplemented || !strings.Contains(body, `"code":"FAIL"`) || !strings.Contains(body, "no handler for event type") {
		t.Errorf("unknown event answered %d %s; want 501 with the failure JSON", status, body)
	}
	if err := f.lastError(); !errors.Is(err, middleware.ErrUnhandledEvent) || !strings.Contains(err.Error(), "MARKETING.FAVOR.USED") {
		t.Errorf("ErrorHandler got %v; want ErrUnhandledEvent naming the event type", err)
	}

	// Configurable: acknowledge and drop.
	rt.Unhandled = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	if status, body := f.notify(t, "MARKETING.FAVOR.USED", map[string]any{"stock_id": "1"}); status != http.StatusNoContent {
		t.Errorf("with Unhandled set, answered %d %s; want its 204", status, body)
	}
}

func TestRouterHandlerErrorAsksForRedelivery(t *testing.T) {
	var rt middleware.Router
	dbDown := errors.New("database is down")
	rt.OnTransaction(middleware.EventTransactionSuccess, func(context.Context, *middleware.Notification, *middleware.Transaction) error {
		return dbDown
	})
	rt.OnRefund(middleware.EventRefundSuccess, func(context.Context, *middleware.Notification, *middleware.Refund) error {
		t.Error("refund handler ran for a resource that does not decode")
		return nil
	})
	f := newRouterFixture(t, &rt)
	status, body := f.notify(t, "TRANSACTION.SUCCESS", wechatpaytest.PaymentResource(f.m))
	if status != http.StatusInternalServerError || strings.Contains(body, "database") {
		t.Errorf("failing handler answered %d %s; want 500 without the internal error", status, body)
	}
	if err := f.lastError(); !errors.Is(err, dbDown) {
		t.Errorf("ErrorHandler got %v; want the handler's error", err)
	}

	// A verified REFUND.SUCCESS whose resource is not a refund.
	status, body = f.notify(t, "REFUND.SUCCESS", map[string]any{"amount": "a string, not an object"})
	if status != http.StatusBadRequest {
		t.Errorf("undecodable resource answered %d %s; want 400", status, body)
	}
}

// An attacker posting a forged notification never reaches a handler: the
// Router sits behind the verification, and alone it refuses everything.
func TestRouterNeverRunsUnverified(t *testing.T) {
	var rt middleware.Router
	rt.OnTransaction(middleware.EventTransactionSuccess, func(context.Context, *middleware.Notification, *middleware.Transaction) error {
		t.Error("a handler ran for an unverified notification")
		return nil
	})
	f := newRouterFixture(t, &rt)
	if status, _ := f.notify(t, "TRANSACTION.SUCCESS", wechatpaytest.PaymentResource(f.m), wechatpaytest.NotifyTamperBody()); status != http.StatusUnauthorized {
		t.Errorf("tampered notification answered %d; want 401", status)
	}

	// Mounted without Notifications (a wiring mistake), the Router
	// refuses a perfectly shaped but unsigned request.
	bare := httptest.NewServer(&rt)
	defer bare.Close()
	resp, err := http.Post(bare.URL, "application/json", strings.NewReader(`{"id":"EV-1","event_type":"TRANSACTION.SUCCESS","resource":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("bare Router answered %d; want 500", resp.StatusCode)
	}
}

func TestRouterRegistrationPanics(t *testing.T) {
	ok := func(context.Context, *middleware.Notification, *middleware.Transaction) error { return nil }
	tests := []struct {
		name string
		f    func(rt *middleware.Router)
	}{
		{"empty event type", func(rt *middleware.Router) { rt.OnTransaction("", ok) }},
		{"nil func", func(rt *middleware.Router) { rt.OnTransaction("X", nil) }},
		{"nil handler", func(rt *middleware.Router) { rt.Handle("X", nil) }},
		{"duplicate", func(rt *middleware.Router) {
			rt.OnTransaction("TRANSACTION.SUCCESS", ok)
			rt.Handle("TRANSACTION.SUCCESS", http.NotFoundHandler())
		}},
	}
	for _, tc := range tests {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", tc.name)
				}
			}()
			var rt middleware.Router
			tc.f(&rt)
		}()
	}
}

// A Router behind Notifications: each verified notification goes to the
// handler of its event type, with its resource decoded.
func ExampleRouter() {
	srv := wechatpaytest.NewServer() // stands in for WeChat Pay
	defer srv.Close()
	m := srv.Merchant()
	store, _ := wechatpay.NewStore(wechatpay.StoreOptions{})
	defer store.Close()
	_ = store.Register(srv.Config())

	var rt middleware.Router
	rt.OnTransaction(middleware.EventTransactionSuccess, func(ctx context.Context, n *middleware.Notification, tx *middleware.Transaction) error {
		// Record tx.OutTradeNo as paid, idempotently.
		fmt.Println("paid:", payments.FormatAmount(tx.Amount.Total, tx.Amount.Currency), tx.TradeState)
		return nil
	})
	rt.OnRefund(middleware.EventRefundSuccess, func(ctx context.Context, n *middleware.Notification, rf *middleware.Refund) error {
		fmt.Println("refunded:", payments.FormatAmount(rf.Amount.Refund, "CNY"))
		return nil
	})
	notify := httptest.NewServer(middleware.Notifications(middleware.Config{Keys: store, MerchantID: m.ID, APIv3Key: m.APIv3Key})(&rt))
	defer notify.Close()

	for _, ev := range []struct {
		typ string
		res map[string]any
	}{
		{"TRANSACTION.SUCCESS", wechatpaytest.PaymentResource(m)},
		{"REFUND.SUCCESS", wechatpaytest.RefundResource(m)},
		{"MARKETING.FAVOR.USED", map[string]any{}},
	} {
		resp, err := srv.Notify(context.Background(), notify.URL, ev.typ, ev.res)
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		fmt.Println(ev.typ, "answered", resp.StatusCode)
	}
	// Output:
	// paid: 1.00 CNY SUCCESS
	// TRANSACTION.SUCCESS answered 204
	// refunded: 1.00 CNY
	// REFUND.SUCCESS answered 204
	// MARKETING.FAVOR.USED answered 501
}
