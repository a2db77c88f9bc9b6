package payments_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/payments"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// A combine order of two sub-orders: the front-end parameters for the
// combine appid, and the one TRANSACTION.SUCCESS for the whole order,
// routed to a CombineTransaction handler on the combine notify_url. The
// sandbox stands in for WeChat Pay and for the payer.
func ExampleClient_CombineJSAPI() {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	cfg := srv.Config()
	store, err := wechatpay.NewStore(wechatpay.StoreOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	cfg.Store = store
	t, err := wechatpay.NewTransport(cfg)
	if err != nil {
		log.Fatal(err)
	}
	pay := &payments.Client{HTTP: &http.Client{Transport: t}, BaseURL: cfg.BaseURL,
		MerchantID: cfg.MerchantID, AppID: "wxd678efh567hg6787", Key: cfg.PrivateKey}

	// The combine notify_url: its own Router, its own payload type.
	paid := make(chan *payments.CombineTransaction, 1)
	var rt middleware.Router
	middleware.On(&rt, payments.EventCombineTransactionSuccess, func(ctx context.Context, n *middleware.Notification, c *payments.CombineTransaction) error {
		paid <- c // mark every sub-order paid, idempotently
		return nil
	})
	notify := httptest.NewServer(middleware.Notifications(middleware.Config{Keys: store, MerchantID: cfg.MerchantID, APIv3Key: cfg.APIv3Key})(&rt))
	defer notify.Close()

	params, err := pay.CombineJSAPI(context.Background(), payments.CombinePrepayRequest{
		CombineOutTradeNo: "C1217752501201407033",
		NotifyURL:         notify.URL + "/wechatpay/combine",
		CombinePayerInfo:  &payments.CombinePayer{OpenID: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
		SubOrders: []payments.CombineSubOrder{
			{MchID: cfg.MerchantID, OutTradeNo: "C1217752501201407033A", Description: "QQ公仔", Attach: "深圳分店", Amount: payments.CombineAmount{TotalAmount: 100}},
			{MchID: cfg.MerchantID, OutTradeNo: "C1217752501201407033B", Description: "QQ公仔帽", Attach: "深圳分店", Amount: payments.CombineAmount{TotalAmount: 250}},
		},
	})
	if err != nil {
		log.Fatal(err) // an *wechatpay.OutcomeUnknownError names combine_out_trade_no: QueryCombine it
	}
	fmt.Println(params.AppID, params.SignType)

	srv.PayCombine(cfg.MerchantID, "C1217752501201407033", wechatpaytest.PaySuccess) // the payer pays
	c := <-paid
	fmt.Println(c.CombineOutTradeNo, len(c.SubOrders), c.Paid())
	// Output:
	// wxd678efh567hg6787 RSA
	// C1217752501201407033 2 true
}

// A payment code at the till: one call that charges, waits for the
// payer's password at WeChat Pay's pace, and reverses an order that does
// not end in time. Here the payer enters the password during the first
// pause; the example's Sleep stands in for that pause instead of waiting.
func ExampleClient_CodePayAndWait() {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	cfg := srv.Config()
	t, err := wechatpay.NewTransport(cfg)
	if err != nil {
		log.Fatal(err)
	}
	pay := &payments.Client{HTTP: &http.Client{Transport: t}, BaseURL: cfg.BaseURL, MerchantID: cfg.MerchantID, AppID: "wxd678efh567hg6787"}

	wait := payments.CodeWait{ // the zero value is WeChat Pay's advice: 5 s, 30 s
		Interval: 1, // a nanosecond, for the example
		Sleep: func(ctx context.Context, d time.Duration) error {
			return srv.Pay(cfg.MerchantID, "P1217752501201407033", wechatpaytest.PaySuccess) // the payer enters the password
		},
	}
	res, err := pay.CodePayAndWait(context.Background(), payments.CodePayRequest{
		Description: "QQ公仔",
		OutTradeNo:  "P1217752501201407033",
		Payer:       payments.PaymentCode{AuthCode: "134567890123456789"}, // scanned
		Amount:      payments.OrderAmount{Total: 150000},                  // over 1,000 CNY: a password
		SceneInfo:   payments.CodePaySceneInfo{StoreInfo: &payments.StoreInfo{OutID: "SZ-01"}},
	}, wait)
	var unsettled *payments.CodePayError
	switch {
	case err == nil && res.State == "SUCCESS":
		fmt.Println("paid", payments.FormatAmount(res.Transaction.Amount.Total, "CNY"), "after", res.Queries, "query")
	case err == nil:
		fmt.Println("not paid:", res.State) // REVOKED: nothing kept from the payer
	case errors.As(err, &unsettled):
		fmt.Println("query and reverse", unsettled.OutTradeNo) // never charge again before that
	default:
		fmt.Println("refused:", err) // an *wechatpay.APIError: nothing charged; ask for another code
	}
	// Output:
	// paid 1500.00 CNY after 1 query
}
