package apiv2_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/apiv2"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// An APIv2 call: the Transport signs the XML body and checks the sign of the
// answer; Post returns its fields. The sandbox stands in for WeChat Pay.
func Example() {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	srv.HandleV2("/pay/orderquery", func(merchantID string, fields map[string]string) map[string]string {
		return map[string]string{"result_code": "SUCCESS", "out_trade_no": fields["out_trade_no"], "trade_state": "SUCCESS"}
	})
	m := srv.Merchant()

	client := &http.Client{Transport: &apiv2.Transport{
		MerchantID: m.ID,
		Key:        m.APIv2Key,        // the APIv2 key
		Base:       srv.Config().Base, // omit for http.DefaultTransport
		BaseURL:    srv.URL,           // omit for WeChat Pay's own hosts
	}}
	answer, err := apiv2.Post(context.Background(), client, srv.URL+"/pay/orderquery", map[string]string{
		"appid":        "wxd678efh567hg6787",
		"out_trade_no": "1217752501201407033233368018",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(answer["return_code"], answer["out_trade_no"], answer["trade_state"])
	// Output:
	// SUCCESS 1217752501201407033233368018 SUCCESS
}

// A merchant wired for APIv2 fetches its platform certificates over APIv2
// and hands them to the Store that verifies its APIv3 responses and
// callbacks.
func ExampleFetchCertificates() {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	m := srv.Merchant()

	certs, err := apiv2.FetchCertificates(context.Background(), apiv2.Config{
		MerchantID: m.ID,
		APIv2Key:   m.APIv2Key,        // signs the request and checks the answer
		APIv3Key:   m.APIv3Key,        // decrypts the certificates
		BaseURL:    srv.URL,           // omit for https://api.mch.weixin.qq.com
		Base:       srv.Config().Base, // omit for http.DefaultTransport
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	store, err := wechatpay.NewStore(wechatpay.StoreOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	if err := store.AddCertificates(m.ID, certs); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(certs), len(store.Certificates(m.ID)))
	// Output:
	// 1 1
}
