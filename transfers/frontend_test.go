package transfers_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/transfers"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

func jsonKeys(t *testing.T, v any) []string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// The parameters carry exactly the names wx.requestMerchantTransfer
// documents (mchId, appId, package, openId; subMchId and subAppId for a
// service provider): developers.weixin.qq.com/miniprogram/dev/api/payment/wx.requestMerchantTransfer.md.
func TestConfirmParamsFieldNames(t *testing.T) {
	documented := map[string]bool{"mchId": true, "subMchId": true, "appId": true, "subAppId": true, "package": true, "openId": true}
	bill := &transfers.Bill{OutBillNo: "F1", State: transfers.StateWaitUserConfirm, PackageInfo: "ABBQO+oYAAABAAAAAAC/dH==", OpenID: openID}

	c := &transfers.Client{MerchantID: "1230000109", AppID: appID}
	p, err := c.ConfirmParams(bill)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := jsonKeys(t, p), []string{"appId", "mchId", "openId", "package"}; !reflect.DeepEqual(got, want) {
		t.Errorf("direct merchant's keys %v; want %v", got, want)
	}
	if p.Package != bill.PackageInfo || p.MchID != "1230000109" || p.AppID != appID || p.OpenID != openID {
		t.Errorf("ConfirmParams = %+v", p)
	}
	c.SubMerchantID = "1900001109"
	p, err = c.ConfirmParams(bill)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range jsonKeys(t, p) {
		if !documented[k] {
			t.Errorf("key %q is not one wx.requestMerchantTransfer documents", k)
		}
	}
	if p.SubMchID != "1900001109" {
		t.Errorf("partner params %+v; want subMchId", p)
	}

	if _, err := c.ConfirmParams(&transfers.Bill{OutBillNo: "F2", State: transfers.StateSuccess}); err == nil ||
		!strings.Contains(err.Error(), "WAIT_USER_CONFIRM") {
		t.Errorf("params of a bill without package_info: %v; want an error naming WAIT_USER_CONFIRM", err)
	}
}

// The App's query string is mchId, appId, package in the documented
// order, each value URL-encoded, as in WeChat's example
// "mchId=1230000000&appId=wx8888888888888888&package=affffddafdfafddffda%3D%3D"
// (developers.weixin.qq.com/miniprogram/dev/platform-capabilities/miniapp/api/miniapp/openBusinessView.html).
func TestAppQuery(t *testing.T) {
	q, err := transfers.AppQuery("1230000000", "wx8888888888888888", &transfers.Bill{PackageInfo: "affffddafdfafddffda=="})
	if err != nil {
		t.Fatal(err)
	}
	if want := "mchId=1230000000&appId=wx8888888888888888&package=affffddafdfafddffda%3D%3D"; q != want {
		t.Errorf("AppQuery = %q; want WeChat's example %q", q, want)
	}
	if transfers.AppBusinessType != "requestMerchantTransfer" {
		t.Errorf("AppBusinessType = %q", transfers.AppBusinessType)
	}
	// A package with every Base64 character survives the round trip.
	pkg := "AB+/cd=="
	q, _ = transfers.AppQuery("1", "wx1", &transfers.Bill{PackageInfo: pkg})
	v, err := url.ParseQuery(q)
	if err != nil || v.Get("package") != pkg {
		t.Errorf("AppQuery(%q) = %q, which decodes to %q", pkg, q, v.Get("package"))
	}
}

// The Router hands each transfer event its typed payload, decoded from
// what the simulator encrypted, and passes an event type it has no
// handler for on raw.
func TestRouterEvents(t *testing.T) {
	e := newEnv(t, nil)
	srv := e.srv

	var mu sync.Mutex
	got := map[string]any{}
	var raw []byte
	var rt middleware.Router
	middleware.On(&rt, transfers.EventBillFinished, func(ctx context.Context, n *middleware.Notification, b *transfers.Bill) error {
		mu.Lock()
		got[n.EventType] = b
		mu.Unlock()
		return nil
	})
	for _, ev := range []string{transfers.EventAuthorizationConfirmed, transfers.EventAuthorizationClosed} {
		middleware.On(&rt, ev, func(ctx context.Context, n *middleware.Notification, a *transfers.Authorization) error {
			mu.Lock()
			got[n.EventType] = a
			mu.Unlock()
			return nil
		})
	}
	rt.Unhandled = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := middleware.NotificationFrom(r.Context())
		mu.Lock()
		raw = n.Plaintext
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	m := srv.Merchant()
	hook := httptest.NewServer(middleware.Notifications(middleware.Config{Keys: e.tr.Verifier.Keys, MerchantID: m.ID, APIv3Key: m.APIv3Key})(&rt))
	defer hook.Close()

	send := func(eventType string, resource any) {
		t.Helper()
		resp, err := srv.Notify(context.Background(), hook.URL, eventType, resource)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("%s answered %d %s; want 204", eventType, resp.StatusCode, body)
		}
	}
	send(transfers.EventBillFinished, map[string]any{"mch_id": m.ID, "out_bill_no": "EV01", "transfer_bill_no": "1330000071100999991182020050700019480001",
		"state": "SUCCESS", "transfer_amount": 100, "openid": openID, "create_time": "2025-01-15T15:04:03+08:00"})
	send(transfers.EventAuthorizationConfirmed, map[string]any{"out_authorization_no": "AUTH01", "state": "AUTHORIZED", "openid": openID})
	send(transfers.EventAuthorizationClosed, map[string]any{"out_authorization_no": "AUTH01", "state": "CLOSED", "close_reason": "USER_CLOSE"})
	send("MCHTRANSFER.SOMETHING.NEW", map[string]any{"out_bill_no": "EV02", "novel": true})

	mu.Lock()
	defer mu.Unlock()
	if b, ok := got[transfers.EventBillFinished].(*transfers.Bill); !ok || b.OutBillNo != "EV01" || b.State != "SUCCESS" || b.TransferAmount != 100 {
		t.Errorf("%s decoded to %#v", transfers.EventBillFinished, got[transfers.EventBillFinished])
	}
	if a, ok := got[transfers.EventAuthorizationConfirmed].(*transfers.Authorization); !ok || a.OutAuthorizationNo != "AUTH01" || a.State != "AUTHORIZED" {
		t.Errorf("%s decoded to %#v", transfers.EventAuthorizationConfirmed, got[transfers.EventAuthorizationConfirmed])
	}
	if a, ok := got[transfers.EventAuthorizationClosed].(*transfers.Authorization); !ok || a.CloseReason != "USER_CLOSE" {
		t.Errorf("%s decoded to %#v", transfers.EventAuthorizationClosed, got[transfers.EventAuthorizationClosed])
	}
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil || v["out_bill_no"] != "EV02" || v["novel"] != true {
		t.Errorf("the unknown event reached Unhandled as %s; want its plaintext", raw)
	}
}

// The simulator's MCHTRANSFER.BILL.FINISHED follows the retry schedule:
// a merchant that fails the first delivery gets it again.
func TestCallbackRetried(t *testing.T) {
	delivered := make(chan wechatpaytest.Delivery, 8)
	e := newEnv(t, nil, wechatpaytest.OnDelivery(func(d wechatpaytest.Delivery) { delivered <- d }))
	var mu sync.Mutex
	calls := 0
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		if first {
			middleware.Fail(w, http.StatusInternalServerError, "busy")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer flaky.Close()
	req := e.bill("RETRY01", 100, "")
	req.NotifyURL = flaky.URL
	ctx := context.Background()
	if _, err := e.c.Create(ctx, req); err != nil {
		t.Fatal(err)
	}
	if err := confirm(t, e, "RETRY01", "SUCCESS"); err != nil {
		t.Fatal(err)
	}
	first, second := <-delivered, <-delivered
	if first.OK || first.Status != 500 || first.Attempt != 1 || first.OutTradeNo != "RETRY01" {
		t.Errorf("first delivery %v; want attempt 1 answered 500", first)
	}
	if !second.OK || second.Attempt != 2 || second.EventType != transfers.EventBillFinished || second.ID != first.ID {
		t.Errorf("second delivery %v; want attempt 2 of the same notification, delivered", second)
	}
}
