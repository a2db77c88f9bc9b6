package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSandboxComplaint runs the help's example: an order placed, paid,
// a complaint notification URL set, and a complaint filed with "wechatpay
// complaint"; the sandbox posts COMPLAINT.CREATE to the URL.
func TestSandboxComplaint(t *testing.T) {
	got := make(chan struct{})
	var once sync.Once
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), `"event_type":"COMPLAINT.CREATE"`) && r.Header.Get("Wechatpay-Signature") != "" {
			once.Do(func() { close(got) })
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer merchant.Close()
	_, dir, stop := startSandboxCmd(t)
	defer stop()
	mj := readMerchantJSON(t, dir)
	order := `{"appid":"wxd678efh567hg6787","mchid":"` + mj["mchid"] + `","description":"tea","out_trade_no":"T100001","notify_url":"http://127.0.0.1:9/notify","amount":{"total":100}}`
	wantCode(t, runApp(t, nil, "", "post", "-sandbox-dir", dir, "/v3/pay/transactions/native", "-d", order), exitOK, `"code_url":"`)
	wantCode(t, runApp(t, nil, "", "complaint", "-sandbox-dir", dir, "T100001"), exitAPIError, "INVALID_REQUEST")
	wantCode(t, runApp(t, nil, "", "pay", "-sandbox-dir", dir, "T100001"), exitOK, `"trade_state":"SUCCESS"`)
	wantCode(t, runApp(t, nil, "", "post", "-sandbox-dir", dir, "/v3/merchant-service/complaint-notifications", "-d", `{"url":"`+merchant.URL+`/complaints"}`), exitOK, `"url":"`+merchant.URL)
	r := runApp(t, nil, "", "complaint", "-sandbox-dir", dir, "-refund", "100", "-phone", "13912345678", "T100001")
	wantCode(t, r, exitOK, `"complaint_state":"PENDING"`, `"out_trade_no":"T100001"`, `"apply_refund_amount":100`)
	if strings.Contains(r.stdout, "13912345678") {
		t.Errorf("the phone number is printed in clear:\n%s", r.stdout)
	}
	wantCode(t, runApp(t, nil, "", "complaint", "-sandbox-dir", dir, "NOSUCH01"), exitAPIError, "ORDER_NOT_EXIST")
	wantCode(t, runApp(t, nil, "", "complaint", "-sandbox-dir", dir), exitUsage, "OUT_TRADE_NO")
	select {
	case <-got:
	case <-time.After(time.Minute): // only a lost notification waits this long
		t.Fatal("no signed COMPLAINT.CREATE reached the merchant")
	}
}
