package payments_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"strings"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/payments"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// A JSAPI order placed with the front-end parameters in return: what a
// merchant's backend hands to WeixinJSBridge or wx.requestPayment. The
// sandbox stands in for WeChat Pay; cfg is the merchant's wechatpay.Config.
func Example() {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	cfg := srv.Config() // MerchantID, CertificateSerial, PrivateKey, APIv3Key, BaseURL

	t, err := wechatpay.NewTransport(cfg)
	if err != nil {
		log.Fatal(err)
	}
	// The host comes from the Transport (cfg.BaseURL): configured once.
	pay := &payments.Client{HTTP: &http.Client{Transport: t},
		MerchantID: cfg.MerchantID, AppID: "wxd678efh567hg6787", Key: cfg.PrivateKey}
	params, err := pay.JSAPI(context.Background(), payments.PrepayRequest{
		Description: "QQ公仔",
		OutTradeNo:  "1217752501201407033233368018",
		NotifyURL:   "https://merchant.example/wechatpay/notify",
		Amount:      payments.OrderAmount{Total: 100}, // fen
		Payer:       &payments.Payer{OpenID: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
	})
	if err != nil {
		log.Fatal(err)
	}
	// json.NewEncoder(w).Encode(params) sends them to the page.
	fmt.Println(params.AppID, strings.HasPrefix(params.Package, "prepay_id="), params.SignType, params.PaySign != "")
	fmt.Println(payments.FormatAmount(100, "CNY"))
	// Output:
	// wxd678efh567hg6787 true RSA true
	// 1.00 CNY
}

// When a state-changing call's answer is lost, the error says so: query by
// your own number before deciding to try again.
func ExampleClient_Refund() {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	cfg := srv.Config()
	t, err := wechatpay.NewTransport(cfg)
	if err != nil {
		log.Fatal(err)
	}
	pay := &payments.Client{HTTP: &http.Client{Transport: t}, BaseURL: cfg.BaseURL, MerchantID: cfg.MerchantID, AppID: "wxd678efh567hg6787"}
	ctx := context.Background()
	order := payments.PrepayRequest{Description: "QQ公仔", OutTradeNo: "T1217752501", NotifyURL: "https://merchant.example/n", Amount: payments.OrderAmount{Total: 100}}
	if _, err := pay.PrepayNative(ctx, order); err != nil {
		log.Fatal(err)
	}
	if err := srv.Pay(cfg.MerchantID, "T1217752501", wechatpaytest.PaySuccess); err != nil {
		log.Fatal(err)
	}

	srv.SetFault(wechatpaytest.FaultTamperBody) // the answer will not verify
	_, err = pay.Refund(ctx, payments.RefundRequest{OutTradeNo: "T1217752501", OutRefundNo: "R1217752501", Amount: payments.RefundAmount{Refund: 100, Total: 100}})
	srv.SetFault(wechatpaytest.FaultNone)

	var unknown *wechatpay.OutcomeUnknownError
	if errors.As(err, &unknown) {
		r, err := pay.QueryRefund(ctx, "R1217752501")
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("refund", r.OutRefundNo, "exists:", r.Amount.Refund, "fen")
	}
	// Output:
	// refund R1217752501 exists: 100 fen
}
