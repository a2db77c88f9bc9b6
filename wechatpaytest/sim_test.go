package wechatpaytest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// placeNative places a Native order of total fen for m through the API and
// returns its code_url.
func placeNative(t *testing.T, srv *Server, m Merchant, no, notifyURL string, total int64) string {
	t.Helper()
	body := fmt.Sprintf(`{"appid":"wx1","mchid":%q,"description":"d","out_trade_no":%q,"notify_url":%q,"amount":{"total":%d}}`, m.ID, no, notifyURL, total)
	resp, b := do(t, srv, m, "POST", "/v3/pay/transactions/native", []byte(body))
	if resp.StatusCode != 200 {
		t.Fatalf("order: %d %s", resp.StatusCode, b)
	}
	var out struct {
		CodeURL string `json:"code_url"`
	}
	json.Unmarshal(b, &out)
	return out.CodeURL
}

// attemptsTo returns the delivery attempts to url, in order.
func attemptsTo(srv *Server, url string) []Delivery {
	var out []Delivery
	for _, d := range srv.Deliveries() {
		if d.URL == url {
			out = append(out, d)
		}
	}
	return out
}

// checkSchedule checks that each attempt started exactly its interval
// after the previous one ended, on the fake clock.
func checkSchedule(t *testing.T, ds []Delivery, retries []time.Duration) {
	t.Helper()
	for i, d := range ds {
		if d.Attempt != i+1 {
			t.Errorf("delivery %d has attempt %d", i, d.Attempt)
		}
		if i == 0 {
			continue
		}
		prev := ds[i-1]
		if want := prev.Start.Add(prev.Duration).Add(retries[i-1]); !d.Start.Equal(want) {
			t.Errorf("attempt %d at +%s after attempt %d ended; want %s", d.Attempt, d.Start.Sub(prev.Start.Add(prev.Duration)), prev.Attempt, retries[i-1])
		}
	}
}

// TestRetryFailsTwiceThenSucceeds runs WeChat Pay's real schedule on a
// fake clock: a 500, a 201 (not a success either), then a 204 ends the
// deliveries, 15 s and 15 s apart, under one notification id.
func TestRetryFailsTwiceThenSucceeds(t *testing.T) {
	fc := newFakeClock()
	retries := RetrySchedule()
	srv := NewServer(withClock(fc))
	defer srv.Close()
	var calls atomic.Int32
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(`{"code":"FAIL","message":"失败"}`))
		case 2:
			w.WriteHeader(http.StatusCreated) // not 200 or 204: a failure too
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer merchant.Close()
	m := srv.Merchant()
	placeNative(t, srv, m, "RETRY001", merchant.URL, 1)
	if err := srv.Pay(m.ID, "RETRY001", PaySuccess); err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // after each failure, the retry is set for its interval
		fc.waitTimer(t, retries[i])
		fc.advance(retries[i])
	}
	srv.life.idle() // the delivery ended on its own
	ds := attemptsTo(srv, merchant.URL)
	if len(ds) != 3 || calls.Load() != 3 || fc.pending() != 0 {
		t.Fatalf("%d deliveries, %d requests, %d timers left; want exactly 3 and none: %v", len(ds), calls.Load(), fc.pending(), ds)
	}
	checkSchedule(t, ds, retries)
	if ds[0].Status != 500 || ds[0].OK || !strings.Contains(ds[0].Body, "FAIL") || ds[1].Status != 201 || ds[1].OK || ds[2].Status != 204 || !ds[2].OK {
		t.Errorf("answers: %v", ds)
	}
	if ds[0].ID != ds[1].ID || ds[1].ID != ds[2].ID || ds[0].ID == "" {
		t.Errorf("notification ids differ between attempts: %q %q %q", ds[0].ID, ds[1].ID, ds[2].ID)
	}
}

// TestRetryNeverAnswered runs the whole 24 h 4 m schedule on a fake clock
// against a merchant that never answers: 16 attempts, each given up after
// the answer timeout, each retry exactly on schedule, then no more.
func TestRetryNeverAnswered(t *testing.T) {
	fc := newFakeClock()
	retries := RetrySchedule()
	const timeout = 5 * time.Second
	srv := NewServer(withClock(fc), WithCallbackSchedule(timeout, retries...))
	defer srv.Close()
	arrived := make(chan struct{}, len(retries)+2)
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		io.Copy(io.Discard, r.Body) // so that the server notices the client leave
		<-r.Context().Done()        // never answers
	}))
	defer merchant.Close()
	m := srv.Merchant()
	placeNative(t, srv, m, "SILENT01", merchant.URL, 1)
	if err := srv.Pay(m.ID, "SILENT01", PaySuccess); err != nil {
		t.Fatal(err)
	}
	want := len(retries) + 1
	for i := range want {
		<-arrived // the request reached the merchant: let its answer time run out
		fc.waitTimer(t, timeout)
		fc.advance(timeout)
		if i < len(retries) {
			fc.waitTimer(t, retries[i])
			fc.advance(retries[i])
		}
	}
	srv.life.idle() // the delivery gave up on its own
	ds := attemptsTo(srv, merchant.URL)
	if len(ds) != want || len(arrived) != 0 || fc.pending() != 0 {
		t.Fatalf("%d deliveries, %d requests unaccounted for, %d timers left; want %d, none, none", len(ds), len(arrived), fc.pending(), want)
	}
	checkSchedule(t, ds, retries)
	var total time.Duration
	for _, d := range ds {
		if d.OK || d.Status != 0 || d.Err != "no answer within 5s" || d.Duration != timeout {
			t.Errorf("attempt %d: %+v", d.Attempt, d)
		}
		total += d.Duration
	}
	if span := ds[len(ds)-1].Start.Add(ds[len(ds)-1].Duration).Sub(ds[0].Start) - total; span != 24*time.Hour+4*time.Minute {
		t.Errorf("retries span %s; want WeChat Pay's 24h4m", span)
	}
}

// TestDuplicateDelivery checks WithDuplicateCallbacks: the first delivery
// is sent twice at once, with one notification id.
func TestDuplicateDelivery(t *testing.T) {
	var mu sync.Mutex
	ids := map[string]int{}
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n struct{ ID string }
		json.NewDecoder(r.Body).Decode(&n)
		mu.Lock()
		ids[n.ID]++
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer merchant.Close()
	srv := NewServer(WithDuplicateCallbacks(), withClock(newFakeClock()))
	defer srv.Close()
	m := srv.Merchant()
	placeNative(t, srv, m, "DUPL0001", merchant.URL, 1)
	srv.Pay(m.ID, "DUPL0001", PaySuccess)
	srv.life.idle() // both copies answered; nothing to retry
	ds := attemptsTo(srv, merchant.URL)
	if len(ds) != 2 || ds[0].Attempt != 1 || ds[1].Attempt != 1 || ds[0].Duplicate == ds[1].Duplicate || ds[0].ID != ds[1].ID {
		t.Fatalf("deliveries %v", ds)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ids) != 1 || ids[ds[0].ID] != 2 {
		t.Errorf("merchant saw %v; want one id twice", ids)
	}
}

// TestCloseStopsDeliveries checks that Close returns while a delivery
// waits for its next retry, and that nothing is delivered afterwards.
func TestCloseStopsDeliveries(t *testing.T) {
	var calls atomic.Int32
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer merchant.Close()
	fc := newFakeClock()
	srv := NewServer(withClock(fc)) // the real schedule: the first retry is 15 s away
	m := srv.Merchant()
	placeNative(t, srv, m, "CLOSE001", merchant.URL, 1)
	srv.Pay(m.ID, "CLOSE001", PaySuccess)
	fc.waitTimer(t, 15*time.Second) // the first attempt failed; the retry is set
	srv.Close()                     // returns: the waiting delivery is abandoned
	fc.advance(time.Hour)           // a leaked delivery would now retry
	if n := calls.Load(); n != 1 {
		t.Errorf("%d deliveries; want 1", n)
	}
	if n := len(srv.Deliveries()); n != 1 {
		t.Errorf("%d deliveries recorded; want 1", n)
	}
}

func TestHandleWinsOverBuiltin(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	m := srv.Merchant()
	srv.Handle("GET /v3/pay/transactions/id/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"mine":%q}`, r.PathValue("id"))
	}))
	srv.Handle("POST /v3/merchant/media/upload", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"media_id":"mine"}`)
	}))
	resp, body := do(t, srv, m, "GET", "/v3/pay/transactions/id/42?mchid="+m.ID, nil)
	if resp.StatusCode != 200 || string(body) != `{"mine":"42"}` {
		t.Errorf("simulator route: %d %s; want the test's route", resp.StatusCode, body)
	}
	mustVerify(t, srv, m, resp, body, resp.Header.Get("Wechatpay-Serial"))
	resp, body = do(t, srv, m, "POST", "/v3/merchant/media/upload", []byte(`{}`))
	if resp.StatusCode != 200 || string(body) != `{"media_id":"mine"}` {
		t.Errorf("media route: %d %s; want the test's route", resp.StatusCode, body)
	}
	// Routes the test did not register stay built in.
	resp, body = do(t, srv, m, "GET", "/v3/pay/transactions/out-trade-no/NOPE01?mchid="+m.ID, nil)
	wantError(t, resp, body, 404, "ORDER_NOT_EXIST")
	if srv.Requests() != 2 {
		t.Errorf("Requests() = %d; want 2", srv.Requests())
	}
}

// TestValidation checks each validation error of the order and refund
// routes: WeChat Pay's error JSON, status, code and the field named.
func TestValidation(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	m := srv.Merchant()
	valid := func(edit func(map[string]any)) []byte {
		o := map[string]any{"appid": "wx1", "mchid": m.ID, "description": "d", "out_trade_no": "V0000001",
			"notify_url": "https://example.com/n", "amount": map[string]any{"total": 1, "currency": "CNY"},
			"payer": map[string]any{"openid": "o1"}, "scene_info": map[string]any{"payer_client_ip": "1.2.3.4", "h5_info": map[string]any{"type": "Wap"}}}
		edit(o)
		b, _ := json.Marshal(o)
		return b
	}
	del := func(path ...string) func(map[string]any) {
		return func(o map[string]any) {
			for _, p := range path[:len(path)-1] {
				o = o[p].(map[string]any)
			}
			delete(o, path[len(path)-1])
		}
	}
	set := func(k string, v any) func(map[string]any) { return func(o map[string]any) { o[k] = v } }
	cases := []struct {
		name, uri string
		body      []byte
		status    int
		code      string
		field     string
	}{
		{"not JSON", "jsapi", []byte(`{"appid":`), 400, "PARAM_ERROR", ""},
		{"not an object", "jsapi", []byte(`[1]`), 400, "PARAM_ERROR", ""},
		{"empty", "native", nil, 400, "PARAM_ERROR", ""},
		{"no appid", "jsapi", valid(del("appid")), 400, "PARAM_ERROR", "/appid"},
		{"no mchid", "jsapi", valid(del("mchid")), 400, "PARAM_ERROR", "/mchid"},
		{"other mchid", "jsapi", valid(set("mchid", "1900000001")), 400, "PARAM_ERROR", "/mchid"},
		{"no description", "jsapi", valid(del("description")), 400, "PARAM_ERROR", "/description"},
		{"long description", "jsapi", valid(set("description", strings.Repeat("茶", 128))), 400, "PARAM_ERROR", "/description"},
		{"no out_trade_no", "jsapi", valid(del("out_trade_no")), 400, "PARAM_ERROR", "/out_trade_no"},
		{"short out_trade_no", "jsapi", valid(set("out_trade_no", "T1")), 400, "PARAM_ERROR", "/out_trade_no"},
		{"bad out_trade_no", "jsapi", valid(set("out_trade_no", "T1 2 3 4")), 400, "PARAM_ERROR", "/out_trade_no"},
		{"bad time_expire", "jsapi", valid(set("time_expire", "tomorrow")), 400, "PARAM_ERROR", "/time_expire"},
		{"long attach", "jsapi", valid(set("attach", strings.Repeat("a", 129))), 400, "PARAM_ERROR", "/attach"},
		{"no notify_url", "jsapi", valid(del("notify_url")), 400, "PARAM_ERROR", "/notify_url"},
		{"notify_url with query", "jsapi", valid(set("notify_url", "https://example.com/n?a=1")), 400, "PARAM_ERROR", "/notify_url"},
		{"relative notify_url", "jsapi", valid(set("notify_url", "/n")), 400, "PARAM_ERROR", "/notify_url"},
		{"no amount", "jsapi", valid(del("amount")), 400, "PARAM_ERROR", "/amount/total"},
		{"zero amount", "jsapi", valid(set("amount", map[string]any{"total": 0})), 400, "PARAM_ERROR", "/amount/total"},
		{"negative amount", "jsapi", valid(set("amount", map[string]any{"total": -5})), 400, "PARAM_ERROR", "/amount/total"},
		{"fractional amount", "jsapi", valid(set("amount", map[string]any{"total": 1.5})), 400, "PARAM_ERROR", "/amount/total"},
		{"amount as string", "jsapi", valid(set("amount", map[string]any{"total": "100"})), 400, "PARAM_ERROR", "/amount/total"},
		{"other currency", "jsapi", valid(set("amount", map[string]any{"total": 1, "currency": "USD"})), 400, "PARAM_ERROR", "/amount/currency"},
		{"JSAPI without payer", "jsapi", valid(del("payer")), 400, "PARAM_ERROR", "/payer"},
		{"JSAPI without openid", "jsapi", valid(del("payer", "openid")), 400, "PARAM_ERROR", "/payer/openid"},
		{"H5 without IP", "h5", valid(del("scene_info", "payer_client_ip")), 400, "PARAM_ERROR", "/scene_info/payer_client_ip"},
		{"H5 without type", "h5", valid(del("scene_info", "h5_info")), 400, "PARAM_ERROR", "/scene_info/h5_info/type"},
		{"unknown kind", "micropay", valid(func(map[string]any) {}), 404, "NOT_FOUND", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, srv, m, "POST", "/v3/pay/transactions/"+tc.uri, tc.body)
			mustVerify(t, srv, m, resp, body, resp.Header.Get("Wechatpay-Serial"))
			e := wantError(t, resp, body, tc.status, tc.code)
			if tc.field != "" {
				d, _ := e.Detail.(map[string]any)
				if d["field"] != tc.field || d["location"] != "body" || d["issue"] == "" {
					t.Errorf("detail %v; want field %s", e.Detail, tc.field)
				}
			}
		})
	}

	partner := func(edit func(map[string]any)) []byte {
		o := map[string]any{"sp_appid": "wx1", "sp_mchid": m.ID, "sub_mchid": "1900000109", "description": "d", "out_trade_no": "P0000001",
			"notify_url": "https://example.com/n", "amount": map[string]any{"total": 1}, "payer": map[string]any{"sub_openid": "o1"}, "sub_appid": "wx2"}
		edit(o)
		b, _ := json.Marshal(o)
		return b
	}
	for _, tc := range []struct {
		name  string
		body  []byte
		field string
	}{
		{"no sp_mchid", partner(del("sp_mchid")), "/sp_mchid"},
		{"other sp_mchid", partner(set("sp_mchid", "1900000001")), "/sp_mchid"},
		{"no sub_mchid", partner(del("sub_mchid")), "/sub_mchid"},
		{"sub_openid without sub_appid", partner(del("sub_appid")), "/sub_appid"},
		{"no openid", partner(set("payer", map[string]any{})), "/payer/sp_openid"},
	} {
		t.Run("partner "+tc.name, func(t *testing.T) {
			resp, body := do(t, srv, m, "POST", "/v3/pay/partner/transactions/jsapi", tc.body)
			e := wantError(t, resp, body, 400, "PARAM_ERROR")
			if d, _ := e.Detail.(map[string]any); d["field"] != tc.field {
				t.Errorf("detail %v; want field %s", e.Detail, tc.field)
			}
		})
	}

	// State errors.
	placeNative(t, srv, m, "STATE001", "https://example.com/n", 100)
	resp, body := do(t, srv, m, "POST", "/v3/pay/transactions/out-trade-no/STATE001/close", []byte(`{"mchid":"`+m.ID+`"}`))
	if resp.StatusCode != 204 || len(body) != 0 {
		t.Errorf("close: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, srv, m, "POST", "/v3/pay/transactions/out-trade-no/STATE001/close", []byte(`{"mchid":"`+m.ID+`"}`))
	wantError(t, resp, body, 400, "ORDER_CLOSED")
	if err := srv.Pay(m.ID, "STATE001", PaySuccess); err == nil || !strings.Contains(err.Error(), "ORDER_CLOSED") {
		t.Errorf("paying a closed order: %v", err)
	}
	body = []byte(fmt.Sprintf(`{"appid":"wx1","mchid":%q,"description":"d","out_trade_no":"STATE001","notify_url":"https://example.com/n","amount":{"total":100}}`, m.ID))
	resp, body = do(t, srv, m, "POST", "/v3/pay/transactions/native", body)
	wantError(t, resp, body, 400, "ORDER_CLOSED")
	resp, body = do(t, srv, m, "POST", "/v3/pay/transactions/out-trade-no/NOPE0001/close", []byte(`{"mchid":"`+m.ID+`"}`))
	wantError(t, resp, body, 404, "ORDER_NOT_EXIST")
	resp, body = do(t, srv, m, "POST", "/v3/pay/transactions/out-trade-no/STATE001/close", []byte(`{}`))
	wantError(t, resp, body, 400, "PARAM_ERROR")
	resp, body = do(t, srv, m, "GET", "/v3/pay/transactions/out-trade-no/STATE001", nil)
	wantError(t, resp, body, 400, "PARAM_ERROR")
	resp, body = do(t, srv, m, "GET", "/v3/pay/transactions/out-trade-no/STATE001?mchid=1900000001", nil)
	wantError(t, resp, body, 400, "PARAM_ERROR")
	resp, body = do(t, srv, m, "GET", "/v3/pay/transactions/id/4200000000000000000000000001?mchid="+m.ID, nil)
	wantError(t, resp, body, 404, "ORDER_NOT_EXIST")
	// Another merchant of the same server cannot see the order.
	other := srv.AddMerchant()
	resp, body = do(t, srv, other, "GET", "/v3/pay/transactions/out-trade-no/STATE001?mchid="+other.ID, nil)
	wantError(t, resp, body, 404, "ORDER_NOT_EXIST")

	// Refund errors.
	refund := func(s string) (*http.Response, []byte) {
		return do(t, srv, m, "POST", "/v3/refund/domestic/refunds", []byte(s))
	}
	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"not JSON", `{`, 400, "PARAM_ERROR"},
		{"no out_refund_no", `{"out_trade_no":"STATE001","amount":{"refund":1,"total":100,"currency":"CNY"}}`, 400, "PARAM_ERROR"},
		{"no order number", `{"out_refund_no":"R1","amount":{"refund":1,"total":100,"currency":"CNY"}}`, 400, "PARAM_ERROR"},
		{"no amount", `{"out_trade_no":"STATE001","out_refund_no":"R1"}`, 400, "PARAM_ERROR"},
		{"zero refund", `{"out_trade_no":"STATE001","out_refund_no":"R1","amount":{"refund":0,"total":100,"currency":"CNY"}}`, 400, "PARAM_ERROR"},
		{"no currency", `{"out_trade_no":"STATE001","out_refund_no":"R1","amount":{"refund":1,"total":100}}`, 400, "PARAM_ERROR"},
		{"unknown order", `{"out_trade_no":"NOPE0001","out_refund_no":"R1","amount":{"refund":1,"total":100,"currency":"CNY"}}`, 404, "RESOURCE_NOT_EXISTS"},
		{"unpaid order", `{"out_trade_no":"STATE001","out_refund_no":"R1","amount":{"refund":1,"total":100,"currency":"CNY"}}`, 400, "INVALID_REQUEST"},
	} {
		t.Run("refund "+tc.name, func(t *testing.T) {
			resp, body := refund(tc.body)
			wantError(t, resp, body, tc.status, tc.code)
		})
	}
	placeNative(t, srv, m, "STATE002", "https://example.com/n", 100)
	srv.Pay(m.ID, "STATE002", PaySuccess)
	resp, body = refund(`{"out_trade_no":"STATE002","out_refund_no":"R1","amount":{"refund":1,"total":99,"currency":"CNY"}}`)
	wantError(t, resp, body, 400, "INVALID_REQUEST")
	if resp, body = refund(`{"out_trade_no":"STATE002","out_refund_no":"R1","amount":{"refund":1,"total":100,"currency":"CNY"}}`); resp.StatusCode != 200 {
		t.Fatalf("refund: %d %s", resp.StatusCode, body)
	}
	resp, again := refund(`{"out_trade_no":"STATE002","out_refund_no":"R1","amount":{"total":100,"refund":1,"currency":"CNY"}}`)
	if resp.StatusCode != 200 || !bytes.Contains(again, []byte(`"out_refund_no":"R1"`)) {
		t.Errorf("same refund again: %d %s", resp.StatusCode, again)
	}
	resp, body = refund(`{"out_trade_no":"STATE002","out_refund_no":"R1","amount":{"refund":2,"total":100,"currency":"CNY"}}`)
	wantError(t, resp, body, 400, "INVALID_REQUEST")
}

func TestRouteFaults(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	m := srv.Merchant()
	const route = "POST /v3/pay/transactions/{kind}"
	srv.FailRoute(route, RouteSystemError, 1)
	srv.FailRoute(route, RouteFrequencyLimited, 1)
	order := []byte(fmt.Sprintf(`{"appid":"wx1","mchid":%q,"description":"d","out_trade_no":"FAULT001","notify_url":"https://example.com/n","amount":{"total":1}}`, m.ID))
	resp, body := do(t, srv, m, "POST", "/v3/pay/transactions/native", order)
	mustVerify(t, srv, m, resp, body, resp.Header.Get("Wechatpay-Serial"))
	wantError(t, resp, body, 500, "SYSTEM_ERROR")
	resp, body = do(t, srv, m, "POST", "/v3/pay/transactions/native", order)
	wantError(t, resp, body, 429, "FREQUENCY_LIMITED")
	query := "/v3/pay/transactions/out-trade-no/FAULT001?mchid=" + m.ID
	resp, body = do(t, srv, m, "GET", query, nil)
	wantError(t, resp, body, 404, "ORDER_NOT_EXIST") // neither fault placed it

	// A timeout: the order is placed, the answer never comes.
	srv.FailRoute(route, RouteTimeout, 1)
	req := newRequest(t, srv, m, "POST", "/v3/pay/transactions/native", order)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if resp, err := http.DefaultClient.Do(req.WithContext(ctx)); err == nil {
		resp.Body.Close()
		t.Fatalf("timeout fault answered %d", resp.StatusCode)
	}
	resp, body = do(t, srv, m, "GET", query, nil)
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"trade_state":"NOTPAY"`)) {
		t.Errorf("query after a timed-out order: %d %s", resp.StatusCode, body)
	}

	// A payment that stays USERPAYING.
	if err := srv.Pay(m.ID, "FAULT001", PayUserPaying); err != nil {
		t.Fatal(err)
	}
	resp, body = do(t, srv, m, "GET", query, nil)
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"trade_state":"USERPAYING"`)) {
		t.Errorf("query: %s", body)
	}
	resp, body = do(t, srv, m, "POST", "/v3/pay/transactions/out-trade-no/FAULT001/close", []byte(`{"mchid":"`+m.ID+`"}`))
	wantError(t, resp, body, 202, "USERPAYING")

	// The control endpoint queues faults for clients in any language.
	resp, body = do(t, srv, m, "POST", FaultsPath, []byte(`{"route":"GET /v3/pay/transactions/out-trade-no/{no}","fault":"SYSTEM_ERROR","count":2}`))
	if resp.StatusCode != 204 {
		t.Fatalf("faults: %d %s", resp.StatusCode, body)
	}
	for range 2 {
		resp, body = do(t, srv, m, "GET", query, nil)
		wantError(t, resp, body, 500, "SYSTEM_ERROR")
	}
	if resp, _ = do(t, srv, m, "GET", query, nil); resp.StatusCode != 200 {
		t.Errorf("third query: %d", resp.StatusCode)
	}
	resp, body = do(t, srv, m, "POST", FaultsPath, []byte(`{"route":"GET /nope","fault":"SYSTEM_ERROR","count":1}`))
	wantError(t, resp, body, 400, "PARAM_ERROR")
	resp, body = do(t, srv, m, "POST", FaultsPath, []byte(`{"refund_outcome":"LOST"}`))
	wantError(t, resp, body, 400, "PARAM_ERROR")
}

func TestRefundOutcomes(t *testing.T) {
	got := make(chan string, 8)
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n struct {
			EventType string `json:"event_type"`
		}
		json.NewDecoder(r.Body).Decode(&n)
		got <- n.EventType
	}))
	defer merchant.Close()
	srv := NewServer(WithRefundDelay(10 * time.Millisecond))
	defer srv.Close()
	m := srv.Merchant()
	placeNative(t, srv, m, "OUTCOME1", merchant.URL, 100)
	srv.Pay(m.ID, "OUTCOME1", PaySuccess)
	if e := <-got; e != "TRANSACTION.SUCCESS" {
		t.Fatal(e)
	}
	for i, outcome := range []string{"ABNORMAL", "CLOSED"} {
		srv.SetRefundOutcome(outcome)
		no := fmt.Sprintf("RO%d", i)
		resp, body := do(t, srv, m, "POST", "/v3/refund/domestic/refunds", []byte(`{"out_trade_no":"OUTCOME1","out_refund_no":"`+no+`","amount":{"refund":50,"total":100,"currency":"CNY"}}`))
		if resp.StatusCode != 200 {
			t.Fatalf("refund: %s", body)
		}
		if e := <-got; e != "REFUND."+outcome { // waits for the event, however busy the machine
			t.Errorf("event %s; want REFUND.%s", e, outcome)
		}
		_, body = do(t, srv, m, "GET", "/v3/refund/domestic/refunds/"+no, nil)
		if !bytes.Contains(body, []byte(`"status":"`+outcome+`"`)) {
			t.Errorf("refund query: %s", body)
		}
	}
	_, body := do(t, srv, m, "GET", "/v3/pay/transactions/out-trade-no/OUTCOME1?mchid="+m.ID, nil)
	if !bytes.Contains(body, []byte(`"trade_state":"REFUND"`)) {
		t.Errorf("order: %s", body)
	}
}

func TestStateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	srv := NewServer(WithStateFile(path))
	m := srv.Merchant()
	placeNative(t, srv, m, "KEPT0001", "https://example.com/n", 100)
	if err := srv.Pay(m.ID, "KEPT0001", PaySuccess); err != nil {
		t.Fatal(err)
	}
	placeNative(t, srv, m, "KEPT0002", "https://example.com/n", 5)
	srv.Close()
	if err := srv.StateError(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v", fi.Mode())
	}

	again := NewServer(WithStateFile(path))
	defer again.Close()
	m2 := again.Merchant()
	if m2.ID != m.ID || m2.APIv3Key != m.APIv3Key || !m2.PrivateKey.Equal(m.PrivateKey) {
		t.Fatalf("merchant not kept: %v vs %v", m2, m)
	}
	resp, body := do(t, again, m2, "GET", "/v3/pay/transactions/out-trade-no/KEPT0001?mchid="+m.ID, nil)
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"trade_state":"SUCCESS"`)) {
		t.Errorf("paid order after restart: %d %s", resp.StatusCode, body)
	}
	var tx struct {
		TransactionID string `json:"transaction_id"`
	}
	json.Unmarshal(body, &tx)
	resp, _ = do(t, again, m2, "GET", "/v3/pay/transactions/id/"+tx.TransactionID+"?mchid="+m.ID, nil)
	if resp.StatusCode != 200 {
		t.Errorf("query by transaction_id after restart: %d", resp.StatusCode)
	}
	if err := again.Pay(m.ID, "KEPT0002", PaySuccess); err != nil {
		t.Errorf("paying a kept order: %v", err)
	}

	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "state file") {
				t.Errorf("corrupt state file: recover() = %v", r)
			}
		}()
		NewServer(WithStateFile(path)).Close()
	}()
}

func TestCashierPage(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	m := srv.Merchant()
	body := fmt.Sprintf(`{"appid":"wx1","mchid":%q,"description":"<script>alert(1)</script> tea","out_trade_no":"CASH0001","notify_url":"http://127.0.0.1:1/n","amount":{"total":12345}}`, m.ID)
	resp, b := do(t, srv, m, "POST", "/v3/pay/transactions/native", []byte(body))
	var out struct {
		CodeURL string `json:"code_url"`
	}
	json.Unmarshal(b, &out)
	if resp.StatusCode != 200 || out.CodeURL == "" {
		t.Fatalf("order: %s", b)
	}
	get := func() string {
		resp, err := http.Get(out.CodeURL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		page, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("cashier: %d %s", resp.StatusCode, page)
		}
		return string(page)
	}
	page := get()
	for _, want := range []string{"¥123.45", m.ID, "&lt;script&gt;alert(1)&lt;/script&gt; tea", "NOTPAY", `id="pay"`, `id="fail"`,
		`<meta name="viewport" content="width=device-width, initial-scale=1">`} {
		if !strings.Contains(page, want) {
			t.Errorf("cashier page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>") {
		t.Error("description not escaped")
	}
	u, _ := url.Parse(out.CodeURL)
	prepayID := u.Query().Get("prepay_id")
	post := func(origin, result string) int {
		req, _ := http.NewRequest("POST", srv.URL+CashierPath, strings.NewReader(url.Values{"prepay_id": {prepayID}, "result": {result}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("https://evil.example", "SUCCESS"); code != http.StatusForbidden {
		t.Errorf("cross-origin payment: %d", code)
	}
	if code := post(srv.URL, "PAYERROR"); code != http.StatusSeeOther {
		t.Errorf("failed payment: %d", code)
	}
	if page := get(); !strings.Contains(page, "PAYERROR") || !strings.Contains(page, `id="pay"`) || !strings.Contains(page, "支付失败<small>Payment failed</small>") {
		t.Errorf("after a failed payment the page shows no PAYERROR, no result or no Pay button:\n%s", page)
	}
	if code := post(srv.URL, "SUCCESS"); code != http.StatusSeeOther {
		t.Errorf("payment: %d", code)
	}
	for len(srv.Deliveries()) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	page = get()
	if !strings.Contains(page, ">SUCCESS<") || strings.Contains(page, `id="pay"`) || !strings.Contains(page, "支付成功<small>Payment successful</small>") {
		t.Errorf("after paying:\n%s", page)
	}
	// The delivery to the closed port: a short answer, and the next retry.
	if !strings.Contains(page, "<td>connection refused</td>") || strings.Contains(page, "dial tcp") || strings.Contains(page, "none: gave up") {
		t.Errorf("delivery table:\n%s", page)
	}
	if code := post(srv.URL, "SUCCESS"); code != http.StatusForbidden {
		t.Errorf("paying twice: %d; want 403 (ORDERPAID)", code)
	}
	if resp, err := http.Get(srv.URL + CashierPath + "?prepay_id=nope"); err != nil || resp.StatusCode != 404 {
		t.Errorf("unknown prepay_id: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

func TestPayControl(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	m := srv.Merchant()
	placeNative(t, srv, m, "CTRL0001", "http://127.0.0.1:1/n", 100)
	resp, body := do(t, srv, m, "POST", PayPath, []byte(`{"out_trade_no":"CTRL0001","result":"NOPE"}`))
	wantError(t, resp, body, 400, "PARAM_ERROR")
	other := srv.AddMerchant()
	resp, body = do(t, srv, other, "POST", PayPath, []byte(`{"out_trade_no":"CTRL0001","sub_mchid":"`+m.ID+`"}`))
	wantError(t, resp, body, 404, "ORDER_NOT_EXIST") // not the other merchant's order
	resp, body = do(t, srv, m, "POST", PayPath, []byte(`{"out_trade_no":"CTRL0001"}`))
	mustVerify(t, srv, m, resp, body, resp.Header.Get("Wechatpay-Serial"))
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"trade_state":"SUCCESS"`)) {
		t.Errorf("pay: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, srv, m, "POST", PayPath, []byte(`{"out_trade_no":"CTRL0001"}`))
	wantError(t, resp, body, 403, "ORDERPAID")
	resp, body = do(t, srv, m, "GET", PayPath, nil)
	wantError(t, resp, body, 405, "INVALID_REQUEST")
}

// FuzzOrderRoutes sends arbitrary bodies to every simulator route: the
// sandbox never panics, and every answer is a success or WeChat Pay's
// error JSON.
func FuzzOrderRoutes(f *testing.F) {
	srv := NewServer(WithRefundDelay(time.Hour))
	defer srv.Close()
	m := srv.Merchant()
	seeds := []string{
		`{"appid":"wx1","mchid":"` + m.ID + `","description":"d","out_trade_no":"FUZZ0001","notify_url":"http://127.0.0.1:1/n","amount":{"total":1},"payer":{"openid":"o"}}`,
		`{"sp_appid":"wx1","sp_mchid":"` + m.ID + `","sub_mchid":"1","description":"d","out_trade_no":"FUZZ0002","notify_url":"http://x/n","amount":{"total":1},"payer":{"sp_openid":"o"}}`,
		`{"out_trade_no":"FUZZ0001","out_refund_no":"R1","amount":{"refund":1,"total":1,"currency":"CNY"}}`,
		`{"mchid":"` + m.ID + `"}`, `{"amount":{"total":1e400}}`, `{"amount":null}`, `{"payer":[]}`, `null`, `[]`, ``, "\x00", `{"description":"\ud800"}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), s)
	}
	paths := []struct{ method, path string }{
		{"POST", "/v3/pay/transactions/jsapi"}, {"POST", "/v3/pay/transactions/native"}, {"POST", "/v3/pay/transactions/h5"},
		{"POST", "/v3/pay/transactions/app"}, {"POST", "/v3/pay/partner/transactions/jsapi"},
		{"POST", "/v3/pay/transactions/out-trade-no/FUZZ0001/close"}, {"POST", "/v3/pay/partner/transactions/out-trade-no/FUZZ0002/close"},
		{"POST", "/v3/refund/domestic/refunds"}, {"POST", PayPath}, {"POST", FaultsPath},
	}
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		p := paths[int(route)%len(paths)]
		req := httptest.NewRequest(p.method, p.path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req = req.WithContext(context.WithValue(req.Context(), merchantIDKey{}, m.ID))
		rec := httptest.NewRecorder()
		srv.faults.clearRoutes() // a fuzzed RouteTimeout would hang the next call
		switch p.path {
		case PayPath:
			srv.control.servePay(rec, req)
		case FaultsPath:
			srv.control.serveFaults(rec, req)
		default:
			srv.core.builtin.ServeHTTP(rec, req)
		}
		if rec.Code >= 300 && rec.Code != 202 {
			var e errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code == "" || e.Message == "" {
				t.Fatalf("%s %s %q: %d %q is not WeChat Pay's error JSON", p.method, p.path, body, rec.Code, rec.Body.String())
			}
		}
	})
}

// TestPartnerOrders runs a service provider's order: placed under
// /v3/pay/partner, queried and closed with sp_mchid and sub_mchid, paid
// with the sub-merchant's ID, and notified with the provider's keys.
func TestPartnerOrders(t *testing.T) {
	got := make(chan []byte, 2)
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- b
	}))
	defer merchant.Close()
	srv := NewServer()
	defer srv.Close()
	sp := srv.Merchant()
	const sub = "1900000109"
	order := func(no string) []byte {
		return []byte(fmt.Sprintf(`{"sp_appid":"wx1","sp_mchid":%q,"sub_mchid":%q,"description":"d","out_trade_no":%q,"notify_url":%q,"amount":{"total":7},"payer":{"sp_openid":"oSP"}}`, sp.ID, sub, no, merchant.URL))
	}
	resp, body := do(t, srv, sp, "POST", "/v3/pay/partner/transactions/jsapi", order("PART0001"))
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"prepay_id":"wx`)) {
		t.Fatalf("partner order: %d %s", resp.StatusCode, body)
	}
	q := "/v3/pay/partner/transactions/out-trade-no/PART0001?sp_mchid=" + sp.ID + "&sub_mchid=" + sub
	resp, body = do(t, srv, sp, "GET", q, nil)
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"sub_mchid":"`+sub+`"`)) || !bytes.Contains(body, []byte(`"trade_state":"NOTPAY"`)) {
		t.Fatalf("partner query: %d %s", resp.StatusCode, body)
	}
	// The direct route does not see a partner order.
	resp, body = do(t, srv, sp, "GET", "/v3/pay/transactions/out-trade-no/PART0001?mchid="+sp.ID, nil)
	wantError(t, resp, body, 404, "ORDER_NOT_EXIST")
	if err := srv.Pay(sub, "PART0001", PaySuccess); err != nil {
		t.Fatal(err)
	}
	var n notification
	if err := json.Unmarshal(<-got, &n); err != nil || n.EventType != "TRANSACTION.SUCCESS" {
		t.Fatalf("notification %+v: %v", n, err)
	}
	m := srv.merchants.get(sp.ID)
	plain, err := m.aead.Open(nil, []byte(n.Resource.Nonce), mustBase64(t, n.Resource.Ciphertext), []byte(n.Resource.AssociatedData))
	if err != nil {
		t.Fatalf("the provider's APIv3 key does not open the resource: %v", err)
	}
	if !bytes.Contains(plain, []byte(`"sp_mchid":"`+sp.ID+`"`)) || !bytes.Contains(plain, []byte(`"sp_openid":"oSP"`)) {
		t.Errorf("resource %s", plain)
	}
	resp, body = do(t, srv, sp, "POST", "/v3/pay/partner/transactions/out-trade-no/PART0001/close", []byte(`{"sp_mchid":"`+sp.ID+`","sub_mchid":"`+sub+`"}`))
	wantError(t, resp, body, 403, "ORDERPAID")
	resp, body = do(t, srv, sp, "POST", "/v3/refund/domestic/refunds", []byte(`{"sub_mchid":"`+sub+`","out_trade_no":"PART0001","out_refund_no":"PR1","amount":{"refund":7,"total":7,"currency":"CNY"}}`))
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"sub_mchid":"`+sub+`"`)) {
		t.Errorf("partner refund: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, srv, sp, "GET", "/v3/refund/domestic/refunds/PR1?sub_mchid="+sub, nil)
	if resp.StatusCode != 200 {
		t.Errorf("partner refund query: %d %s", resp.StatusCode, body)
	}
}

func mustBase64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestContentTypeMissing checks that a JSON body sent without any
// Content-Type is refused like a wrong one, and a body-less close is not.
func TestContentTypeMissing(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	m := srv.Merchant()
	req := newRequest(t, srv, m, "POST", "/v3/refund/domestic/refunds", []byte(`{"out_trade_no":"NOPE0001"}`))
	req.Header.Del("Content-Type")
	resp, body := send(t, req)
	if e := wantError(t, resp, body, 400, "INVALID_REQUEST"); !strings.Contains(e.Message, "application/json") {
		t.Errorf("message %q does not name application/json", e.Message)
	}
	mustVerify(t, srv, m, resp, body, resp.Header.Get("Wechatpay-Serial"))
	req = newRequest(t, srv, m, "POST", "/v3/pay/transactions/out-trade-no/NOPE0001/close", nil)
	resp, body = send(t, req)
	wantError(t, resp, body, 400, "PARAM_ERROR") // the empty body, not the Content-Type
}

// TestSerialsLookLikeWeChatPays checks that certificate serials are 40
// upper-case hex digits without a leading zero, so that a client
// formatting the serial number itself names the same serial.
func TestSerialsLookLikeWeChatPays(t *testing.T) {
	for range 5000 {
		s := newSerialHex()
		if len(s) != 40 || s[0] == '0' || strings.ToUpper(s) != s {
			t.Fatalf("serial %q", s)
		}
	}
	srv := NewServer()
	defer srv.Close()
	m := srv.Merchant()
	for range 20 {
		srv.AddCertificate(m.ID)
	}
	for _, c := range srv.Certificates(m.ID) {
		if got := strings.ToUpper(c.SerialNumber.Text(16)); len(got) != 40 {
			t.Errorf("platform certificate serial %s", got)
		}
	}
	if got := strings.ToUpper(m.Certificate.SerialNumber.Text(16)); got != m.CertificateSerial {
		t.Errorf("merchant certificate serial %s; CertificateSerial %s", got, m.CertificateSerial)
	}
}

// TestDeliveryRows checks the cashier's delivery table: short answers,
// and the next retry on the last failed attempt of each notification only.
func TestDeliveryRows(t *testing.T) {
	start := time.Date(2026, 1, 2, 10, 0, 0, 0, time.Local)
	retries := []time.Duration{15 * time.Second, 15 * time.Second}
	ds := []Delivery{
		{ID: "a", Attempt: 1, Start: start, Duration: time.Second, Err: "Post \"http://127.0.0.1:1/n\": dial tcp 127.0.0.1:1: connect: connection refused"},
		{ID: "a", Attempt: 2, Start: start.Add(16 * time.Second), Duration: time.Second, Status: 500},
		{ID: "b", Attempt: 1, Start: start, Duration: 5 * time.Second, Err: "no answer within 5s"},
		{ID: "b", Attempt: 1, Duplicate: true, Start: start, Duration: time.Second, Status: 204, OK: true},
		{ID: "c", Attempt: 3, Start: start, Duration: time.Second, Err: "read: connection reset by peer"},
	}
	rows := deliveryRows(ds, retries)
	want := []deliveryRow{
		{"10:00:00", "1", "connection refused", "—"},
		{"10:00:16", "2", "500 Internal Server Error", "10:00:32"},
		{"10:00:00", "1", "no answer within 5s", "—"},
		{"10:00:00", "1 (dup)", "204 No Content ✓", "—"},
		{"10:00:00", "3", "connection closed", "none: gave up"},
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d = %+v; want %+v", i, rows[i], want[i])
		}
	}
}
