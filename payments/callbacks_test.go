//lint:file-ignore SA1019 compares the new types with middleware's deprecated copies on purpose

package payments_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/payments"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// Payment and refund notifications received with middleware.On and the
// types of package payments, as the README shows. The sandbox stands in
// for WeChat Pay and posts the notifications.
func Example_callbacks() {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	cfg := srv.Config()
	t, err := wechatpay.NewTransport(cfg)
	if err != nil {
		log.Fatal(err)
	}

	var rt middleware.Router
	middleware.On(&rt, middleware.EventTransactionSuccess, func(ctx context.Context, n *middleware.Notification, tx *payments.Transaction) error {
		fmt.Println("paid:", tx.TradeState, payments.FormatAmount(tx.Amount.Total, tx.Amount.Currency), tx.Payer.OpenID)
		return nil
	})
	middleware.On(&rt, middleware.EventRefundSuccess, func(ctx context.Context, n *middleware.Notification, rf *payments.RefundNotification) error {
		fmt.Println("refunded:", rf.RefundStatus, payments.FormatAmount(rf.Amount.Refund, "CNY"))
		return nil
	})
	mux := http.NewServeMux()
	mux.Handle("POST /wechatpay/notify", middleware.Notifications(middleware.Config{
		Keys: t.Verifier.Keys, MerchantID: cfg.MerchantID, APIv3Key: cfg.APIv3Key,
	})(&rt))
	ts := httptest.NewServer(mux)
	defer ts.Close()

	m := srv.Merchant()
	for _, n := range []struct {
		event    string
		resource map[string]any
	}{
		{middleware.EventTransactionSuccess, wechatpaytest.PaymentResource(m)},
		{middleware.EventRefundSuccess, wechatpaytest.RefundResource(m)},
	} {
		resp, err := srv.Notify(context.Background(), ts.URL+"/wechatpay/notify", n.event, n.resource)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	// Output:
	// paid: SUCCESS 1.00 CNY oUpF8uMuAJO_M2pxb1Q9zNjWeS6o
	// 204
	// refunded: SUCCESS 1.00 CNY
	// 204
}

// TestPaymentsDoesNotImportMiddleware: payments owns its resource types;
// the callback side reaches them through middleware.On, never the other
// way round.
func TestPaymentsDoesNotImportMiddleware(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "github.com/wxpaykit/wechatpay/middleware" {
			t.Fatalf("payments depends on %s:\n%s", p, out)
		}
	}
	if !strings.Contains(string(out), "github.com/wxpaykit/wechatpay/payments") {
		t.Fatalf("go list -deps did not list payments itself:\n%s", out)
	}
}

// TestNotificationTypesMatchMiddlewareCopies: payments.Transaction and
// payments.RefundNotification decode a notification's resource to the
// same values as middleware's deprecated copies, so moving is a rename.
func TestNotificationTypesMatchMiddlewareCopies(t *testing.T) {
	srv := wechatpaytest.NewServer()
	t.Cleanup(srv.Close)
	m := srv.Merchant()
	pay := wechatpaytest.PaymentResource(m)
	pay["scene_info"] = map[string]any{"device_id": "013467007045764"}
	pay["promotion_detail"] = []any{map[string]any{"coupon_id": "109519", "amount": 5, "goods_detail": []any{map[string]any{"goods_id": "M1006", "quantity": 1}}}}
	for _, tc := range []struct {
		resource  map[string]any
		new, old  any
		wantField string
	}{
		{pay, new(payments.Transaction), new(middleware.Transaction), "SceneInfo"},
		{wechatpaytest.RefundResource(m), new(payments.RefundNotification), new(middleware.Refund), "RefundStatus"},
	} {
		b, err := json.Marshal(tc.resource)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, tc.new); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, tc.old); err != nil {
			t.Fatal(err)
		}
		// Same JSON out means the same fields in.
		nj, _ := json.Marshal(tc.new)
		oj, _ := json.Marshal(tc.old)
		if string(nj) != string(oj) {
			t.Errorf("%T decodes to %s; %T to %s; want the same", tc.new, nj, tc.old, oj)
		}
		if reflect.ValueOf(tc.new).Elem().FieldByName(tc.wantField).IsZero() {
			t.Errorf("%T.%s is zero after decoding %s", tc.new, tc.wantField, b)
		}
	}
}
