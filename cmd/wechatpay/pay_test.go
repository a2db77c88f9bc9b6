package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestSandboxPayAndState runs the sandbox command with a state file and a
// compressed retry schedule: an order is placed and paid with "wechatpay
// pay", the callback fails once and is retried (both attempts printed),
// and after a restart on the same state file the merchant and the paid
// order are still there.
func TestSandboxPayAndState(t *testing.T) {
	var calls atomic.Int32
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer merchant.Close()
	state := filepath.Join(t.TempDir(), "state.json")
	out := &watchBuffer{}
	_, dir, stop := startSandboxCmdTo(t, out, "-state", state, "-retry-scale", "1000")
	mj := readMerchantJSON(t, dir)
	order := `{"appid":"wx1","mchid":"` + mj["mchid"] + `","description":"tea","out_trade_no":"STATE0001","notify_url":"` + merchant.URL + `/notify","amount":{"total":250}}`
	wantCode(t, runApp(t, nil, "", "post", "-sandbox-dir", dir, "/v3/pay/transactions/native", "-d", order), exitOK, `"code_url":"`)
	wantCode(t, runApp(t, nil, "", "pay", "-sandbox-dir", dir, "-fail", "STATE0001"), exitOK, `"trade_state":"PAYERROR"`)
	wantCode(t, runApp(t, nil, "", "pay", "-sandbox-dir", dir, "STATE0001"), exitOK, `"trade_state":"SUCCESS"`, `"payer_total":250`)
	wantCode(t, runApp(t, nil, "", "pay", "-sandbox-dir", dir, "STATE0001"), exitAPIError, "ORDERPAID")
	wantCode(t, runApp(t, nil, "", "pay", "-sandbox-dir", dir, "-fail", "-userpaying", "STATE0001"), exitUsage, "exclude")
	wantCode(t, runApp(t, nil, "", "pay", "-sandbox-dir", dir), exitUsage, "OUT_TRADE_NO")
	// The retry comes on the (compressed) schedule; the sandbox prints
	// each attempt once it has read the answer.
	out.waitFor("attempt 2: answered 204")
	res := stop()
	wantCode(t, res, exitOK, "state kept in "+state,
		"TRANSACTION.SUCCESS for STATE0001 → "+merchant.URL+"/notify attempt 1: answered 500",
		"failed, will retry on schedule",
		"attempt 2: answered 204", "delivered")
	if n := strings.Count(res.stdout, "callback: "); n != 2 || calls.Load() != 2 {
		t.Errorf("%d callback lines, %d deliveries; want 2 and 2:\n%s", n, calls.Load(), res.stdout)
	}

	_, dir2, stop2 := startSandboxCmd(t, "-state", state)
	defer stop2()
	if again := readMerchantJSON(t, dir2); again["mchid"] != mj["mchid"] || again["apiv3_key"] != mj["apiv3_key"] {
		t.Errorf("merchant after restart: %s, want %s", again["mchid"], mj["mchid"])
	}
	r := runApp(t, nil, "", "get", "-sandbox-dir", dir2, "/v3/pay/transactions/out-trade-no/STATE0001?mchid="+mj["mchid"])
	wantCode(t, r, exitOK, `"trade_state":"SUCCESS"`, `"total":250`)
}
