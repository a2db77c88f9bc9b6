package profitsharing_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/payments"
	"github.com/wxpaykit/wechatpay/profitsharing"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// A merchant adds a store as a receiver, then shares 2.00 CNY of a paid
// 10.00 CNY order with it. The store's name is encrypted by the
// Transport; nothing here handles keys or serials.
func Example() {
	srv := wechatpaytest.NewServer() // WeChat Pay, simulated
	defer srv.Close()
	t, err := wechatpay.NewTransport(srv.Config())
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Transport: t}
	ctx := context.Background()
	mchid := srv.Merchant().ID

	// An order placed for profit sharing, then paid.
	pay := &payments.Client{HTTP: client, MerchantID: mchid, AppID: "wxd678efh567hg6787", BaseURL: srv.URL}
	if _, err := pay.PrepayNative(ctx, payments.PrepayRequest{Description: "Sandbox tea", OutTradeNo: "DEMO20261202001",
		NotifyURL: "https://merchant.example/notify", Amount: payments.OrderAmount{Total: 1000},
		SettleInfo: &payments.SettleInfo{ProfitSharing: true}}); err != nil {
		log.Fatal(err)
	}
	if err := srv.Pay(mchid, "DEMO20261202001", wechatpaytest.PaySuccess); err != nil {
		log.Fatal(err)
	}
	tx, err := pay.QueryByOutTradeNo(ctx, "DEMO20261202001")
	if err != nil {
		log.Fatal(err)
	}

	ps := &profitsharing.Client{HTTP: client, MerchantID: mchid, AppID: "wxd678efh567hg6787", BaseURL: srv.URL}
	store := srv.AddMerchant().ID
	if _, err := ps.AddReceiver(ctx, profitsharing.Receiver{Type: profitsharing.MerchantID, Account: store,
		Name: "深圳示例门店有限公司", RelationType: "STORE"}); err != nil {
		log.Fatal(err)
	}
	order, err := ps.CreateOrder(ctx, profitsharing.OrderRequest{TransactionID: tx.TransactionID, OutOrderNo: "P20261202001",
		Receivers:       []profitsharing.OrderReceiver{{Type: profitsharing.MerchantID, Account: store, Amount: 200, Description: "分给门店"}},
		UnfreezeUnsplit: true})
	if err != nil {
		log.Fatal(err) // an *wechatpay.OutcomeUnknownError says: query P20261202001, never share under a new number
	}
	fmt.Println("shared:", order.State)
	order, err = ps.QueryOrder(ctx, tx.TransactionID, "P20261202001")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("queried:", order.State, order.Receivers[0].Result, payments.FormatAmount(order.Receivers[0].Amount, "CNY"))
	// Output:
	// shared: PROCESSING
	// queried: FINISHED SUCCESS 2.00 CNY
}
