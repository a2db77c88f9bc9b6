package profitsharing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/payments"
	"github.com/wxpaykit/wechatpay/profitsharing"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

const appID = "wxd678efh567hg6787"

type env struct {
	srv *wechatpaytest.Server
	pay *payments.Client
	ps  *profitsharing.Client
}

// newEnv starts the simulator and returns clients of its merchant; cfg,
// if set, adjusts the merchant's configuration (to play a migration).
func newEnv(t *testing.T, cfg func(*wechatpay.Config, wechatpaytest.Merchant), opts ...wechatpaytest.Option) *env {
	t.Helper()
	srv := wechatpaytest.NewServer(opts...)
	t.Cleanup(srv.Close)
	c := srv.Config()
	if cfg != nil {
		cfg(&c, srv.Merchant())
	}
	tr, err := wechatpay.NewTransport(c)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: tr}
	m := srv.Merchant()
	return &env{srv,
		&payments.Client{HTTP: hc, BaseURL: srv.URL, MerchantID: m.ID, AppID: appID},
		&profitsharing.Client{HTTP: hc, BaseURL: srv.URL, MerchantID: m.ID, AppID: appID}}
}

// paid places and pays an order of total fen, marked for profit sharing
// when sharing is set, and returns its transaction_id.
func (e *env) paid(t *testing.T, no string, total int64, sharing bool) string {
	t.Helper()
	ctx := context.Background()
	req := payments.PrepayRequest{Description: "分账测试", OutTradeNo: no, NotifyURL: "https://merchant.example/notify",
		Amount: payments.OrderAmount{Total: total}}
	if sharing {
		req.SettleInfo = &payments.SettleInfo{ProfitSharing: true}
	}
	if _, err := e.pay.PrepayNative(ctx, req); err != nil {
		t.Fatal(err)
	}
	owner := e.pay.MerchantID
	if e.pay.SubMerchantID != "" {
		owner = e.pay.SubMerchantID
	}
	if err := e.srv.Pay(owner, no, wechatpaytest.PaySuccess); err != nil {
		t.Fatal(err)
	}
	tx, err := e.pay.QueryByOutTradeNo(ctx, no)
	if err != nil {
		t.Fatal(err)
	}
	return tx.TransactionID
}

func wantAPIError(t *testing.T, what string, err error, code, msg string) {
	t.Helper()
	var ae *wechatpay.APIError
	if !errors.As(err, &ae) || ae.Code != code || !strings.Contains(ae.Message, msg) || !ae.Verified {
		t.Fatalf("%s: %v; want a verified %s (%s)", what, err, code, msg)
	}
}

// TestLifecycle: receivers added with encrypted names, in certificate
// mode, public-key mode and a migration (certificates listed, public key
// configured); a share, its query, what is left, a return and an
// unfreeze, each checked against the simulator's rules.
func TestLifecycle(t *testing.T) {
	modes := []struct {
		name string
		cfg  func(*wechatpay.Config, wechatpaytest.Merchant)
		opts []wechatpaytest.Option
	}{
		{"certificate", nil, nil},
		{"public key", nil, []wechatpaytest.Option{wechatpaytest.PublicKeyOnly()}},
		{"migration", func(c *wechatpay.Config, m wechatpaytest.Merchant) {
			c.PublicKeyID, c.PublicKey = m.PublicKeyID, m.PublicKey
		}, []wechatpaytest.Option{wechatpaytest.WithPublicKey()}},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			e := newEnv(t, mode.cfg, mode.opts...)
			ctx := context.Background()
			store := e.srv.AddMerchant()
			tx := e.paid(t, "PS20261202001", 1000, true)

			added, err := e.ps.AddReceiver(ctx, profitsharing.Receiver{Type: profitsharing.MerchantID, Account: store.ID,
				Name: "深圳示例门店有限公司", RelationType: "STORE"})
			if err != nil {
				t.Fatal(err)
			}
			// The simulator decrypted the name with the key the request
			// named, and sent it back encrypted for the merchant.
			if added.Name != "深圳示例门店有限公司" || added.Account != store.ID {
				t.Fatalf("added receiver = %v, name %q; want the name decrypted back", added, added.Name)
			}
			if _, err := e.ps.AddReceiver(ctx, profitsharing.Receiver{Type: profitsharing.PersonalOpenID, Account: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
				Name: "张三", RelationType: "STAFF"}); err != nil {
				t.Fatal(err)
			}

			o, err := e.ps.CreateOrder(ctx, profitsharing.OrderRequest{TransactionID: tx, OutOrderNo: "P20261202001",
				Receivers: []profitsharing.OrderReceiver{
					{Type: profitsharing.MerchantID, Account: store.ID, Amount: 200, Description: "分给门店"},
					{Type: profitsharing.PersonalOpenID, Account: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", Name: "张三", Amount: 50, Description: "分给店员"},
				}})
			if err != nil {
				t.Fatal(err)
			}
			if o.State != profitsharing.StateProcessing || len(o.Receivers) != 2 || o.Receivers[0].Result != profitsharing.ResultPending {
				t.Errorf("create answer = %+v; want PROCESSING with PENDING receivers", o)
			}
			q, err := e.ps.QueryOrder(ctx, tx, "P20261202001")
			if err != nil {
				t.Fatal(err)
			}
			if q.State != profitsharing.StateFinished || q.OrderID != o.OrderID || q.Receivers[1].Result != profitsharing.ResultSuccess || q.Receivers[1].Amount != 50 {
				t.Errorf("query = %+v; want FINISHED, both receivers SUCCESS", q)
			}
			if left, err := e.ps.UnsplitAmount(ctx, tx); err != nil || left != 750 {
				t.Errorf("UnsplitAmount = %d, %v; want 750 fen", left, err)
			}
			// The same out_order_no again is the same request.
			if again, err := e.ps.CreateOrder(ctx, profitsharing.OrderRequest{TransactionID: tx, OutOrderNo: "P20261202001",
				Receivers: []profitsharing.OrderReceiver{
					{Type: profitsharing.MerchantID, Account: store.ID, Amount: 200, Description: "分给门店"},
					{Type: profitsharing.PersonalOpenID, Account: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", Name: "张三", Amount: 50, Description: "分给店员"},
				}}); err != nil || again.OrderID != o.OrderID {
				t.Errorf("repeated share = %+v, %v; want the same order %s", again, err, o.OrderID)
			}
			if left, _ := e.ps.UnsplitAmount(ctx, tx); left != 750 {
				t.Errorf("after the repeated share, %d fen left; want still 750", left)
			}

			ret, err := e.ps.Return(ctx, profitsharing.ReturnRequest{OutOrderNo: "P20261202001", OutReturnNo: "R20261202001",
				ReturnMchID: store.ID, Amount: 120, Description: "用户退款"})
			if err != nil {
				t.Fatal(err)
			}
			if ret.Result != profitsharing.ReturnSuccess || ret.Amount != 120 || ret.OrderID != o.OrderID {
				t.Errorf("return = %+v; want SUCCESS of 120", ret)
			}
			if qr, err := e.ps.QueryReturn(ctx, "R20261202001", "P20261202001"); err != nil || qr.ReturnID != ret.ReturnID || qr.Result != profitsharing.ReturnSuccess {
				t.Errorf("QueryReturn = %+v, %v", qr, err)
			}
			_, err = e.ps.Return(ctx, profitsharing.ReturnRequest{OutOrderNo: "P20261202001", OutReturnNo: "R20261202002",
				ReturnMchID: store.ID, Amount: 81, Description: "用户退款"})
			wantAPIError(t, "returning more than was shared", err, "INVALID_REQUEST", "回退金额")

			u, err := e.ps.Unfreeze(ctx, profitsharing.UnfreezeRequest{TransactionID: tx, OutOrderNo: "U20261202001", Description: "解冻全部剩余资金"})
			if err != nil || u.Receivers[0].Amount != 750 {
				t.Fatalf("Unfreeze = %+v, %v; want 750 fen back to the merchant", u, err)
			}
			if left, _ := e.ps.UnsplitAmount(ctx, tx); left != 0 {
				t.Errorf("after Unfreeze, %d fen left; want 0", left)
			}
			_, err = e.ps.CreateOrder(ctx, profitsharing.OrderRequest{TransactionID: tx, OutOrderNo: "P20261202002",
				Receivers: []profitsharing.OrderReceiver{{Type: profitsharing.MerchantID, Account: store.ID, Amount: 1, Description: "再分"}}})
			wantAPIError(t, "sharing an unfrozen order", err, "NOT_ENOUGH", "分账金额不足")

			if err := e.ps.DeleteReceiver(ctx, profitsharing.PersonalOpenID, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"); err != nil {
				t.Fatal(err)
			}
			tx2 := e.paid(t, "PS20261202002", 1000, true)
			_, err = e.ps.CreateOrder(ctx, profitsharing.OrderRequest{TransactionID: tx2, OutOrderNo: "P20261202003",
				Receivers: []profitsharing.OrderReceiver{{Type: profitsharing.PersonalOpenID, Account: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", Amount: 1, Description: "分给店员"}}})
			wantAPIError(t, "sharing to a deleted receiver", err, "INVALID_REQUEST", "分账接收方关系不存在")
		})
	}
}

// TestRefusals: WeChat Pay's documented refusals, and the checks made
// before anything is sent.
func TestRefusals(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	store := e.srv.AddMerchant()
	if _, err := e.ps.AddReceiver(ctx, profitsharing.Receiver{Type: profitsharing.MerchantID, Account: store.ID, Name: "门店", RelationType: "STORE"}); err != nil {
		t.Fatal(err)
	}
	share := func(tx, no string, fen int64) error {
		_, err := e.ps.CreateOrder(ctx, profitsharing.OrderRequest{TransactionID: tx, OutOrderNo: no,
			Receivers: []profitsharing.OrderReceiver{{Type: profitsharing.MerchantID, Account: store.ID, Amount: fen, Description: "分给门店"}}})
		return err
	}
	plain := e.paid(t, "PS20261202101", 1000, false)
	wantAPIError(t, "an order whose prepay did not ask for sharing", share(plain, "P101", 10), "INVALID_REQUEST", "非分账订单")
	marked := e.paid(t, "PS20261202102", 1000, true)
	wantAPIError(t, "more than 30% of the order", share(marked, "P102", 301), "INVALID_REQUEST", "最大分账比例")
	if err := share(marked, "P103", 300); err != nil {
		t.Fatalf("exactly 30%%: %v", err)
	}
	wantAPIError(t, "the same out_order_no with other parameters", share(marked, "P103", 299), "INVALID_REQUEST", "不一致")

	// Refused before anything is sent: no request reaches the simulator.
	before := e.srv.Requests()
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"no receivers", func() error {
			_, err := e.ps.CreateOrder(ctx, profitsharing.OrderRequest{TransactionID: marked, OutOrderNo: "P104"})
			return err
		}(), "1 to 50"},
		{"zero amount", share(marked, "P105", 0), "receivers[0].amount"},
		{"merchant without name", func() error {
			_, err := e.ps.AddReceiver(ctx, profitsharing.Receiver{Type: profitsharing.MerchantID, Account: "1900000001", RelationType: "STORE"})
			return err
		}(), "full name"},
		{"return without order", func() error {
			_, err := e.ps.Return(ctx, profitsharing.ReturnRequest{OutReturnNo: "R1", ReturnMchID: store.ID, Amount: 1, Description: "d"})
			return err
		}(), "exactly one of order_id and out_order_no"},
		{"dot segment", func() error { _, err := e.ps.QueryOrder(ctx, marked, ".."); return err }(), "out_order_no"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: %v; want an error about %q", tc.name, tc.err, tc.want)
		}
	}
	if n := e.srv.Requests() - before; n != 0 {
		t.Errorf("%d requests reached the simulator; want none", n)
	}
}

// TestNameInClearRefused: a receiver name sent without encryption (here
// through payments.Do, which knows nothing of the field) is refused by
// the simulator as WeChat Pay refuses it.
func TestNameInClearRefused(t *testing.T) {
	e := newEnv(t, nil)
	in := map[string]string{"appid": appID, "type": "MERCHANT_ID", "account": e.srv.AddMerchant().ID, "name": "门店", "relation_type": "STORE"}
	err := payments.Do(context.Background(), e.ps.HTTP, http.MethodPost, e.srv.URL+"/v3/profitsharing/receivers/add", in, nil)
	wantAPIError(t, "a name in clear", err, "PARAM_ERROR", "Wechatpay-Serial")
}

// TestPartner: a service provider shares a sub-merchant's order; the
// sub_mchid travels with every call.
func TestPartner(t *testing.T) {
	e := newEnv(t, nil)
	e.pay.SubMerchantID = "1900000109"
	e.ps.SubMerchantID = "1900000109"
	ctx := context.Background()
	store := e.srv.AddMerchant()
	tx := e.paid(t, "PS20261202201", 500, true)
	if _, err := e.ps.AddReceiver(ctx, profitsharing.Receiver{Type: profitsharing.MerchantID, Account: store.ID, Name: "门店", RelationType: "SERVICE_PROVIDER"}); err != nil {
		t.Fatal(err)
	}
	o, err := e.ps.CreateOrder(ctx, profitsharing.OrderRequest{TransactionID: tx, OutOrderNo: "P201", UnfreezeUnsplit: true,
		Receivers: []profitsharing.OrderReceiver{{Type: profitsharing.MerchantID, Account: store.ID, Amount: 100, Description: "服务费"}}})
	if err != nil {
		t.Fatal(err)
	}
	if o.SubMchID != "1900000109" {
		t.Errorf("answer sub_mchid = %q", o.SubMchID)
	}
	if q, err := e.ps.QueryOrder(ctx, tx, "P201"); err != nil || q.State != profitsharing.StateFinished {
		t.Errorf("partner query = %+v, %v", q, err)
	}
	if left, err := e.ps.UnsplitAmount(ctx, tx); err != nil || left != 0 {
		t.Errorf("UnsplitAmount after sharing 100 with unfreeze_unsplit = %d, %v; want 0", left, err)
	}
}

// TestOutcomeUnknown: a share whose answer never comes is an
// *wechatpay.OutcomeUnknownError naming out_order_no, not retried; the
// query it asks for shows the share happened, and asking again with the
// same number shares nothing twice.
func TestOutcomeUnknown(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	store := e.srv.AddMerchant()
	tx := e.paid(t, "PS20261202301", 1000, true)
	if _, err := e.ps.AddReceiver(ctx, profitsharing.Receiver{Type: profitsharing.MerchantID, Account: store.ID, Name: "门店", RelationType: "STORE"}); err != nil {
		t.Fatal(err)
	}
	req := profitsharing.OrderRequest{TransactionID: tx, OutOrderNo: "P301",
		Receivers: []profitsharing.OrderReceiver{{Type: profitsharing.MerchantID, Account: store.ID, Amount: 100, Description: "分给门店"}}}
	e.srv.FailRoute("POST /v3/profitsharing/orders", wechatpaytest.RouteTimeout, 1)
	short := *e.ps
	hc := *e.ps.HTTP
	hc.Timeout = 300 * time.Millisecond
	short.HTTP = &hc
	before := e.srv.PathRequests("/v3/profitsharing/orders")
	_, err := short.CreateOrder(ctx, req)
	var unknown *wechatpay.OutcomeUnknownError
	if !errors.As(err, &unknown) || unknown.NumberName != "out_order_no" || unknown.Number != "P301" || wechatpay.Retryable(err) {
		t.Fatalf("CreateOrder timing out = %v; want a non-retryable OutcomeUnknownError naming out_order_no P301", err)
	}
	if n := e.srv.PathRequests("/v3/profitsharing/orders") - before; n != 1 {
		t.Errorf("%d requests sent; want 1 (never retried)", n)
	}
	q, err := e.ps.QueryOrder(ctx, tx, "P301")
	if err != nil || q.State != profitsharing.StateFinished {
		t.Fatalf("the query the error asks for: %+v, %v; want the share done", q, err)
	}
	if _, err := e.ps.CreateOrder(ctx, req); err != nil {
		t.Fatal(err)
	}
	if left, _ := e.ps.UnsplitAmount(ctx, tx); left != 900 {
		t.Errorf("after the unknown share and a repeat with the same number, %d fen left; want 900 (shared once)", left)
	}
}

// TestReceiverNotifications: the merchant shared to gets
// PROFITSHARING.SUCCESS and PROFITSHARING.RETURN, verified and decrypted
// by the middleware and typed by the Router.
func TestReceiverNotifications(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	store := e.srv.AddMerchant()
	scfg := e.srv.MerchantConfig(store.ID)
	sstore, err := wechatpay.NewStore(wechatpay.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scfg.Store = sstore
	if _, err := wechatpay.NewTransport(scfg); err != nil { // registers the receiver merchant
		t.Fatal(err)
	}
	got := make(chan string, 4)
	var rt middleware.Router
	for _, ev := range []string{profitsharing.EventSuccess, profitsharing.EventReturn} {
		middleware.On(&rt, ev, func(ctx context.Context, n *middleware.Notification, p *profitsharing.Notification) error {
			got <- fmt.Sprintf("%s %s %s %d", n.EventType, p.OutOrderNo, p.Receiver.Account, p.Receiver.Amount)
			return nil
		})
	}
	recv := httptest.NewServer(middleware.Notifications(middleware.Config{Keys: sstore, MerchantID: store.ID, APIv3Key: store.APIv3Key})(&rt))
	defer recv.Close()
	e.srv.SetProfitSharingNotifyURL(store.ID, recv.URL)

	tx := e.paid(t, "PS20261202401", 1000, true)
	if _, err := e.ps.AddReceiver(ctx, profitsharing.Receiver{Type: profitsharing.MerchantID, Account: store.ID, Name: "门店", RelationType: "STORE"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ps.CreateOrder(ctx, profitsharing.OrderRequest{TransactionID: tx, OutOrderNo: "P401",
		Receivers: []profitsharing.OrderReceiver{{Type: profitsharing.MerchantID, Account: store.ID, Amount: 250, Description: "分给门店"}}}); err != nil {
		t.Fatal(err)
	}
	want := "PROFITSHARING.SUCCESS P401 " + store.ID + " 250"
	if g := <-got; g != want {
		t.Errorf("notification = %q; want %q", g, want)
	}
	if _, err := e.ps.Return(ctx, profitsharing.ReturnRequest{OutOrderNo: "P401", OutReturnNo: "R401", ReturnMchID: store.ID, Amount: 50, Description: "退款"}); err != nil {
		t.Fatal(err)
	}
	want = "PROFITSHARING.RETURN P401 " + store.ID + " 50"
	if g := <-got; g != want {
		t.Errorf("notification = %q; want %q", g, want)
	}
}

// TestSecretsNotPrinted: names never appear in fmt output of the request
// types.
func TestSecretsNotPrinted(t *testing.T) {
	for _, v := range []any{
		profitsharing.Receiver{Type: "MERCHANT_ID", Account: "1", Name: "秘密公司"},
		profitsharing.OrderReceiver{Type: "PERSONAL_OPENID", Account: "o", Name: "秘密"},
		profitsharing.AddedReceiver{Name: "秘密"},
	} {
		var b bytes.Buffer
		fmt.Fprintf(&b, "%v %+v %#v %s", v, v, v, v)
		if strings.Contains(b.String(), "秘密") {
			t.Errorf("%T printed its name: %s", v, b.String())
		}
	}
	// The wire form still carries the (to-be-encrypted) name.
	b, _ := json.Marshal(profitsharing.Receiver{Name: "秘密"})
	if !strings.Contains(string(b), "秘密") {
		t.Error("json lost the name")
	}
}
