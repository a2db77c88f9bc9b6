package openssl_test

import (
	"crypto/rsa"
	"fmt"
	"io"
	"net/http"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/openssl"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// Example signs with the merchant key through libcrypto and verifies
// WeChat Pay's answers (here the sandbox's) through it too.
func Example() {
	srv := wechatpaytest.NewServer() // stands in for WeChat Pay
	defer srv.Close()
	srv.Handle("GET /v3/pay/transactions/id/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"transaction_id":%q,"trade_state":"SUCCESS"}`, r.PathValue("id"))
	}))
	cfg := srv.Config()
	privateKey := cfg.PrivateKey.(*rsa.PrivateKey) // as wechatpay.LoadPrivateKeyFile returns it

	key, err := openssl.NewSigner(privateKey) // loads libcrypto.so.3 on first use
	if err != nil {
		panic(err) // names the library and the package that provides it
	}
	store, err := wechatpay.NewStore(wechatpay.StoreOptions{VerifyPKCS1v15: openssl.VerifyPKCS1v15})
	if err != nil {
		panic(err)
	}
	defer store.Close()
	cfg.PrivateKey, cfg.Store = key, store
	t, err := wechatpay.NewTransport(cfg)
	if err != nil {
		panic(err)
	}

	client := &http.Client{Transport: t}
	resp, err := client.Get(cfg.BaseURL + "/v3/pay/transactions/id/4200000001?mchid=" + cfg.MerchantID)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, wechatpay.IsVerified(resp), string(body))
	fmt.Println(key) // never the key itself
	// Output:
	// 200 true {"transaction_id":"4200000001","trade_state":"SUCCESS"}
	// openssl.Signer{RSA-2048, key: [redacted]}
}
