package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// ExampleNotifications mounts the middleware on the standard mux and lets
// the sandbox post a payment notification to it, then a signature probe.
func ExampleNotifications() {
	srv := wechatpaytest.NewServer() // stands in for WeChat Pay
	defer srv.Close()

	// One Store serves the merchant's Transport and its callbacks.
	store, err := wechatpay.NewStore(wechatpay.StoreOptions{})
	if err != nil {
		panic(err)
	}
	defer store.Close()
	cfg := srv.Config()
	cfg.Store = store
	if _, err := wechatpay.NewTransport(cfg); err != nil { // registers the merchant with the store
		panic(err)
	}

	mux := http.NewServeMux()
	mux.Handle("POST /wechatpay/notify", middleware.Notifications(middleware.Config{
		Keys:       store,
		MerchantID: cfg.MerchantID,
		APIv3Key:   cfg.APIv3Key,
	})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := middleware.NotificationFrom(r.Context())
		tx, err := n.Transaction()
		if err != nil {
			middleware.Fail(w, http.StatusBadRequest, "unexpected notification")
			return
		}
		fmt.Println(n.EventType, tx.TradeState, tx.Amount.Total, tx.Amount.Currency)
		// Writing nothing answers 204.
	})))
	merchant := httptest.NewServer(mux)
	defer merchant.Close()

	resp, err := srv.Notify(context.Background(), merchant.URL+"/wechatpay/notify", "TRANSACTION.SUCCESS", nil)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)

	// A probe never reaches the handler.
	resp, err = srv.Notify(context.Background(), merchant.URL+"/wechatpay/notify", "TRANSACTION.SUCCESS", nil, wechatpaytest.NotifyProbe())
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output:
	// TRANSACTION.SUCCESS SUCCESS 100 CNY
	// 204
	// 401
}

// ExampleNotifications_multipleMerchants serves every merchant of a
// platform from one route, choosing the merchant by a path segment.
func ExampleNotifications_multipleMerchants() {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	store, err := wechatpay.NewStore(wechatpay.StoreOptions{})
	if err != nil {
		panic(err)
	}
	defer store.Close()
	apiv3Keys := map[string]string{}
	for _, m := range []wechatpaytest.Merchant{srv.Merchant(), srv.AddMerchant()} {
		if err := store.Register(srv.MerchantConfig(m.ID)); err != nil {
			panic(err)
		}
		apiv3Keys[m.ID] = m.APIv3Key
	}

	mux := http.NewServeMux()
	mux.Handle("POST /notify/{mchid}", middleware.Notifications(middleware.Config{
		Keys: store,
		MerchantIDFunc: func(r *http.Request) (string, bool) {
			id := r.PathValue("mchid")
			return id, id != ""
		},
		APIv3Keys: func(id string) (string, bool) {
			k, ok := apiv3Keys[id]
			return k, ok
		},
	})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := middleware.NotificationFrom(r.Context())
		_, known := apiv3Keys[n.MerchantID]
		fmt.Println("notification for a known merchant:", known)
	})))
	platform := httptest.NewServer(mux)
	defer platform.Close()

	second := srv.AddMerchant() // not registered: the middleware answers 404
	for _, id := range []string{srv.Merchant().ID, second.ID} {
		resp, err := srv.Notify(context.Background(), platform.URL+"/notify/"+id, "", nil, wechatpaytest.NotifyMerchant(id))
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	// Output:
	// notification for a known merchant: true
	// 204
	// 404
}
