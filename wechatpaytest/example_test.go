package wechatpaytest_test

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// Example starts a sandbox, registers a business route and gets the
// configuration a client needs to call it.
func Example() {
	srv := wechatpaytest.NewServer()
	defer srv.Close()

	// The sandbox authenticates the request before the handler runs, and
	// signs whatever the handler writes.
	srv.Handle("GET /v3/pay/transactions/id/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"transaction_id":%q,"mchid":%q,"trade_state":"SUCCESS"}`,
			r.PathValue("id"), wechatpaytest.MerchantIDFrom(r.Context()))
	}))

	// cfg holds the merchant's credentials, BaseURL and a Base transport
	// connected to the sandbox.
	cfg := srv.Config()
	fmt.Println(len(cfg.MerchantID), len(cfg.CertificateSerial), len(cfg.APIv3Key))
	fmt.Println(strings.HasPrefix(cfg.BaseURL, "http://127.0.0.1:"))
	fmt.Println(len(srv.Certificates(cfg.MerchantID)))
	// Output:
	// 10 40 32
	// true
	// 1
}

// ExampleServer_AddCertificate rotates the platform certificate the way
// WeChat Pay does: listed first, used later.
func ExampleServer_AddCertificate() {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	id := srv.Merchant().ID

	old := srv.SigningSerial(id)
	fresh := srv.AddCertificate(id)
	fmt.Println(len(srv.Certificates(id)), srv.SigningSerial(id) == old)
	srv.UseCertificate(id, fresh)
	fmt.Println(srv.SigningSerial(id) == fresh)
	// Output:
	// 2 true
	// true
}
