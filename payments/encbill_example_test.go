package payments_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/payments"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// ExampleEncryptedBillDownload downloads a sub-merchant's encrypted,
// gzipped fund-flow bill from the simulator into a file.
func ExampleEncryptedBillDownload() {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	srv.SetEncryptedBills(wechatpaytest.EncryptedBills{PartSize: 400}) // WeChat Pay splits large bills; so does the simulator, here small ones
	t, err := wechatpay.NewTransport(srv.Config())
	if err != nil {
		panic(err)
	}
	c := &payments.Client{HTTP: &http.Client{Transport: t}, BaseURL: srv.URL, MerchantID: srv.Merchant().ID}

	bill, err := c.SubMerchantFundFlowBill(context.Background(), payments.SubMerchantFundFlowBillRequest{
		SubMchID: "1900000109", BillDate: "2026-12-01", AccountType: "BASIC", Gzip: true,
	})
	if err != nil {
		panic(err)
	}
	f, err := os.CreateTemp("", "fundflow-*.csv")
	if err != nil {
		panic(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	// The merchant key comes from the Transport; nothing reaches f unless
	// every part passes its hash and its GCM tag.
	d := &payments.EncryptedBillDownload{HTTP: c.HTTP}
	if err := d.Run(context.Background(), bill, f); err != nil {
		panic(err)
	}
	b, _ := os.ReadFile(f.Name())
	fmt.Println(len(bill.DownloadBillList) > 1, strings.HasPrefix(string(b), "记账时间,"))
	// Output: true true
}
