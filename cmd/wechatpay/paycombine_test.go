package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestPayCombineOrder: "wechatpay pay -sandbox-dir DIR COMBINE_OUT_TRADE_NO"
// pays every sub-order of a combine order placed on a running sandbox,
// and the merchant receives one TRANSACTION.SUCCESS for the whole.
func TestPayCombineOrder(t *testing.T) {
	var calls atomic.Int32
	got := make(chan map[string]any, 4)
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n map[string]any
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &n)
		calls.Add(1)
		got <- n
		w.WriteHeader(http.StatusNoContent)
	}))
	defer merchant.Close()
	_, dir, stop := startSandboxCmd(t)
	mj := readMerchantJSON(t, dir)
	sub := func(no string, fen int) string {
		return `{"mchid":"` + mj["mchid"] + `","attach":"a","description":"tea","out_trade_no":"` + no + `","amount":{"total_amount":` + string(rune('0'+fen)) + `,"currency":"CNY"}}`
	}
	order := `{"combine_appid":"wx1","combine_mchid":"` + mj["mchid"] + `","combine_out_trade_no":"COMB0001","notify_url":"` + merchant.URL + `/combine",` +
		`"combine_payer_info":{"openid":"o1"},"sub_orders":[` + sub("COMB0001A", 1) + `,` + sub("COMB0001B", 2) + `]}`
	wantCode(t, runApp(t, nil, "", "post", "-sandbox-dir", dir, "/v3/combine-transactions/jsapi", "-d", order), exitOK, `"prepay_id":"wx`)
	r := runApp(t, nil, "", "pay", "-sandbox-dir", dir, "COMB0001")
	wantCode(t, r, exitOK, `"combine_out_trade_no":"COMB0001"`, `"out_trade_no":"COMB0001A"`, `"out_trade_no":"COMB0001B"`)
	if n := strings.Count(r.stdout, `"trade_state":"SUCCESS"`); n != 2 {
		t.Errorf("%d sub-orders SUCCESS; want 2:\n%s", n, r.stdout)
	}
	n := <-got // a hang is go test -timeout's to report
	if res, _ := n["resource"].(map[string]any); n["event_type"] != "TRANSACTION.SUCCESS" || res["original_type"] != "transaction" {
		t.Errorf("notification = %v", n)
	}
	wantCode(t, runApp(t, nil, "", "pay", "-sandbox-dir", dir, "COMB0001"), exitAPIError, "ORDERPAID")
	wantCode(t, runApp(t, nil, "", "get", "-sandbox-dir", dir, "/v3/combine-transactions/out-trade-no/COMB0001"), exitOK, `"transaction_id":"4200`)
	stop() // waits for the sandbox's deliveries
	if n := calls.Load(); n != 1 {
		t.Errorf("%d notifications; want one for the whole combine order", n)
	}
}
