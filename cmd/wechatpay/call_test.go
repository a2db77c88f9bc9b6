package main

import (
	"slices"
	"testing"
)

func TestSandboxDefaults(t *testing.T) {
	const base = "http://127.0.0.1:8080"
	for _, tc := range []struct {
		name, method, target, body string
		wantTarget, wantBody       string
		filled                     []string
	}{
		{"prepay without mchid and appid", "POST", base + "/v3/pay/transactions/native", `{"out_trade_no":"ORDER1"}`,
			base + "/v3/pay/transactions/native", `{"appid":"wxd678efh567hg6787","mchid":"1900000001","out_trade_no":"ORDER1"}`,
			[]string{`"mchid": "1900000001"`, `"appid": "wxd678efh567hg6787"`}},
		{"prepay with its own", "POST", base + "/v3/pay/transactions/jsapi", `{"appid":"wx1","mchid":"2"}`,
			base + "/v3/pay/transactions/jsapi", `{"appid":"wx1","mchid":"2"}`, nil},
		{"close: mchid only", "POST", base + "/v3/pay/transactions/out-trade-no/ORDER1/close", `{}`,
			base + "/v3/pay/transactions/out-trade-no/ORDER1/close", `{"mchid":"1900000001"}`, []string{`"mchid": "1900000001"`}},
		{"query without mchid", "GET", base + "/v3/pay/transactions/out-trade-no/ORDER1", "",
			base + "/v3/pay/transactions/out-trade-no/ORDER1?mchid=1900000001", "", []string{"mchid=1900000001"}},
		{"query with mchid", "GET", base + "/v3/pay/transactions/id/42?mchid=3", "",
			base + "/v3/pay/transactions/id/42?mchid=3", "", nil},
		{"other path untouched", "POST", base + "/v3/refund/domestic/refunds", `{"out_refund_no":"R1"}`,
			base + "/v3/refund/domestic/refunds", `{"out_refund_no":"R1"}`, nil},
		{"not a JSON object: sent as given", "POST", base + "/v3/pay/transactions/native", `[1]`,
			base + "/v3/pay/transactions/native", `[1]`, nil},
		{"partner order untouched", "POST", base + "/v3/pay/partner/transactions/native", `{}`,
			base + "/v3/pay/partner/transactions/native", `{}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
			}
			target, got, filled := sandboxDefaults("1900000001", tc.method, tc.target, body)
			if target != tc.wantTarget || string(got) != tc.wantBody || !slices.Equal(filled, tc.filled) {
				t.Errorf("sandboxDefaults = %s, %s, %q; want %s, %s, %q", target, got, filled, tc.wantTarget, tc.wantBody, tc.filled)
			}
		})
	}
}
