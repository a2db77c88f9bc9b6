package transfers_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"strings"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/transfers"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// A merchant pays a user 2,500.00 CNY. The user's name, required from
// 2,000 yuan, is encrypted by the Transport with the key it names in
// Wechatpay-Serial; nothing here handles keys or serials. The front end
// gets the parameters for wx.requestMerchantTransfer; the user confirms
// (here in the simulator); the query says SUCCESS.
func Example() {
	srv := wechatpaytest.NewServer() // WeChat Pay, simulated
	defer srv.Close()
	t, err := wechatpay.NewTransport(srv.Config())
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	tr := &transfers.Client{HTTP: &http.Client{Transport: t}, BaseURL: srv.URL,
		MerchantID: srv.Merchant().ID, AppID: "wxd678efh567hg6787"}

	req := transfers.BillRequest{
		OutBillNo:       "plfk2020042013",
		TransferSceneID: "1000",
		OpenID:          "o-MYE42l80oelYMDE34nYD456Xoy",
		UserName:        "示例用户",
		TransferAmount:  2500_00, // fen
		TransferRemark:  "新会员开通有礼",
		TransferSceneReportInfos: []transfers.SceneReportInfo{
			{InfoType: "活动名称", InfoContent: "新会员有礼"},
			{InfoType: "奖励说明", InfoContent: "注册会员抽奖一等奖"},
		},
	}
	bill, err := tr.Create(ctx, req)
	var unknown *wechatpay.OutcomeUnknownError
	if errors.As(err, &unknown) {
		// The answer was lost: ask WeChat Pay, never send a new number.
		bill, err = tr.QueryByOutBillNo(ctx, req.OutBillNo)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created:", bill.State)

	params, err := tr.ConfirmParams(bill) // JSON for wx.requestMerchantTransfer
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("front end gets package_info:", params.Package == bill.PackageInfo)

	// The user confirms in WeChat: here on the sandbox's page, which
	// wx.requestMerchantTransfer would open.
	page, err := http.PostForm(srv.URL+wechatpaytest.TransferConfirmPath, url.Values{"package": {params.Package}})
	if err != nil {
		log.Fatal(err)
	}
	page.Body.Close()
	bill, err = tr.QueryByOutBillNo(ctx, req.OutBillNo)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("queried:", bill.State, bill.TransferAmount, "fen")
	fmt.Println("name decrypted for the merchant:", bill.UserName == req.UserName)
	fmt.Println("name in the bill's String:", strings.Contains(bill.String(), req.UserName))

	// Output:
	// created: WAIT_USER_CONFIRM
	// front end gets package_info: true
	// queried: SUCCESS 250000 fen
	// name decrypted for the merchant: true
	// name in the bill's String: false
}
