package complaints_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/complaints"
	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/payments"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// Example handles a complaint from notification to completion, against
// the simulator standing in for WeChat Pay.
func Example() {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	ctx := context.Background()

	// The merchant's side: one Store, one Transport, one client.
	store, _ := wechatpay.NewStore(wechatpay.StoreOptions{})
	defer store.Close()
	cfg := srv.Config()
	cfg.Store = store
	t, err := wechatpay.NewTransport(cfg)
	if err != nil {
		panic(err)
	}
	hc := &http.Client{Transport: t}
	c := &complaints.Client{HTTP: hc, BaseURL: cfg.BaseURL}

	// Complaint notifications: verified, decrypted, typed.
	notices := make(chan complaints.Notice, 4)
	var rt middleware.Router
	middleware.On(&rt, complaints.EventCreate, func(ctx context.Context, n *middleware.Notification, p *complaints.Notice) error {
		notices <- *p
		return nil
	})
	mux := http.NewServeMux()
	mux.Handle("POST /wechatpay/complaints", middleware.Notifications(middleware.Config{
		Keys: store, MerchantID: cfg.MerchantID, APIv3Key: cfg.APIv3Key,
	})(&rt))
	merchant := httptest.NewServer(mux)
	defer merchant.Close()
	if _, err := c.CreateNotificationURL(ctx, merchant.URL+"/wechatpay/complaints"); err != nil {
		panic(err)
	}

	// A paid order, and a payer who complains about it.
	pay := &payments.Client{HTTP: hc, BaseURL: cfg.BaseURL, MerchantID: cfg.MerchantID, AppID: "wxd678efh567hg6787"}
	if _, err := pay.PrepayNative(ctx, payments.PrepayRequest{Description: "tea", OutTradeNo: "EXC0000001",
		NotifyURL: "https://merchant.example/notify", Amount: payments.OrderAmount{Total: 800}}); err != nil {
		panic(err)
	}
	srv.Pay(cfg.MerchantID, "EXC0000001", wechatpaytest.PaySuccess)
	srv.FileComplaint("EXC0000001", wechatpaytest.ComplaintPhone("13800001111"))

	n := <-notices
	fmt.Println(n.ActionType)
	x, err := c.GetWithPhone(ctx, n.ComplaintID) // the phone, decrypted on request
	if err != nil {
		panic(err)
	}
	fmt.Println(x.ComplaintState, x.ComplaintOrderInfo[0].OutTradeNo, x.PayerPhone)

	if err := c.Respond(ctx, x.ComplaintID, complaints.Response{ComplaintedMchID: x.ComplaintedMchID, ResponseContent: "已退款，请查收"}); err != nil {
		panic(err)
	}
	if err := c.Complete(ctx, x.ComplaintID, x.ComplaintedMchID); err != nil {
		panic(err)
	}
	x, _ = c.Get(ctx, x.ComplaintID)
	fmt.Println(x.ComplaintState)
	// Output:
	// CREATE_COMPLAINT
	// PENDING EXC0000001 13800001111
	// PROCESSED
}
