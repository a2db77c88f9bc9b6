package upload_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/upload"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// ExampleNewRequest uploads a fapiao file, whose meta carries the file's
// SM3 digest, to the simulator.
func ExampleNewRequest() {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	t, err := wechatpay.NewTransport(srv.Config())
	if err != nil {
		panic(err)
	}
	client := &http.Client{Transport: t}

	pdf := []byte("%PDF-1.7 ...")
	meta, _ := json.Marshal(map[string]string{
		"file_type":        "PDF",
		"digest_alogrithm": "SM3", // (sic), as WeChat Pay spells it
		"digest":           upload.SM3(pdf),
	})
	req, err := upload.NewRequest(context.Background(),
		srv.URL+"/v3/new-tax-control-fapiao/fapiao-applications/upload-fapiao-file", meta, "fapiao.pdf", pdf)
	if err != nil {
		panic(err)
	}
	resp, err := client.Do(req) // signed over exactly meta
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	if err := wechatpay.CheckResponse(resp); err != nil {
		panic(err)
	}
	var out struct {
		ID string `json:"fapiao_media_id"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	fmt.Println(resp.StatusCode, out.ID != "")
	// Output: 200 true
}
