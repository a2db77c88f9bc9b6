package wechatpay_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// Wiring a client for one merchant. The sandbox stands in for WeChat Pay;
// with real credentials, leave BaseURL and Base unset.
func Example() {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	srv.Handle("GET /v3/pay/transactions/out-trade-no/{no}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"out_trade_no":%q,"trade_state":"SUCCESS"}`, r.PathValue("no"))
	}))
	m := srv.Merchant()

	t, err := wechatpay.NewTransport(wechatpay.Config{
		MerchantID:        m.ID,
		CertificateSerial: m.CertificateSerial,
		PrivateKey:        m.PrivateKey,
		APIv3Key:          m.APIv3Key,
		BaseURL:           srv.URL,           // omit for https://api.mch.weixin.qq.com
		Base:              srv.Config().Base, // omit for http.DefaultTransport
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	client := &http.Client{Transport: t}

	resp, err := client.Get(srv.URL + "/v3/pay/transactions/out-trade-no/T1001?mchid=" + m.ID)
	if err != nil {
		fmt.Println(err) // a *wechatpay.VerifyError if the response was not authentic
		return
	}
	defer resp.Body.Close()
	if err := wechatpay.CheckResponse(resp); err != nil {
		fmt.Println(err) // a *wechatpay.APIError
		return
	}
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, wechatpay.IsVerified(resp))
	fmt.Println(string(body))
	// Output:
	// 200 true
	// {"out_trade_no":"T1001","trade_state":"SUCCESS"}
}

// A POST: the Transport signs the exact bytes sent. With a body and no
// Content-Type of the caller's, it sends Content-Type: application/json.
func Example_post() {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	srv.Handle("POST /v3/pay/transactions/native", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("WeChat Pay got Content-Type:", r.Header.Get("Content-Type"))
		fmt.Fprint(w, `{"code_url":"weixin://wxpay/bizpayurl?pr=abc"}`)
	}))
	t, err := wechatpay.NewTransport(srv.Config()) // the sandbox merchant, BaseURL and Base
	if err != nil {
		fmt.Println(err)
		return
	}
	client := &http.Client{Transport: t}

	order := []byte(`{"appid":"wxd678efh567hg6787","mchid":"` + srv.Merchant().ID + `",` +
		`"description":"Image形象店-深圳腾大-QQ公仔","out_trade_no":"1217752501201407033233368018",` +
		`"notify_url":"https://example.com/wechatpay/notify","amount":{"total":100,"currency":"CNY"}}`)
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/v3/pay/transactions/native", bytes.NewReader(order))
	if err != nil {
		fmt.Println(err)
		return
	}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	if err := wechatpay.CheckResponse(resp); err != nil {
		fmt.Println(err)
		return
	}
	var prepay struct {
		CodeURL string `json:"code_url"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&prepay); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(prepay.CodeURL, wechatpay.IsVerified(resp))
	// Output:
	// WeChat Pay got Content-Type: application/json
	// weixin://wxpay/bizpayurl?pr=abc true
}

// One Store serves many merchants: each Transport registers its merchant,
// and certificates are downloaded per merchant when first needed.
func ExampleStore() {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	srv.Handle("GET /v3/ping", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"pong":true}`)
	}))

	store, err := wechatpay.NewStore(wechatpay.StoreOptions{Size: 4096})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	for _, m := range []wechatpaytest.Merchant{srv.Merchant(), srv.AddMerchant()} {
		cfg := srv.MerchantConfig(m.ID)
		cfg.Store = store
		t, err := wechatpay.NewTransport(cfg)
		if err != nil {
			fmt.Println(err)
			return
		}
		resp, err := (&http.Client{Transport: t}).Get(srv.URL + "/v3/ping")
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode, len(store.Certificates(m.ID)))
	}
	fmt.Println("downloads:", srv.CertificateDownloads(), "cached:", store.Len())
	// Output:
	// 200 1
	// 200 1
	// downloads: 2 cached: 2
}
