package wechatpaytest

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestValidateCombine: a combine prepay is checked as WeChat Pay checks
// it, each refusal naming the field.
func TestValidateCombine(t *testing.T) {
	sub := func(no string) map[string]any {
		return map[string]any{"mchid": "1900000109", "attach": "a", "description": "tea", "out_trade_no": no, "amount": map[string]any{"total_amount": 1, "currency": "CNY"}}
	}
	base := func() map[string]any {
		return map[string]any{"combine_appid": "wx1", "combine_mchid": "1900000109", "combine_out_trade_no": "C0000001",
			"notify_url": "https://m.example/n", "combine_payer_info": map[string]any{"openid": "o1"},
			"sub_orders": []any{sub("S0000001"), sub("S0000002")}}
	}
	for _, tc := range []struct {
		name, kind, field string
		edit              func(m map[string]any)
	}{
		{"valid", "jsapi", "", func(m map[string]any) {}},
		{"another merchant", "jsapi", "/combine_mchid", func(m map[string]any) { m["combine_mchid"] = "1900000999" }},
		{"bad number", "jsapi", "/combine_out_trade_no", func(m map[string]any) { m["combine_out_trade_no"] = "C1" }},
		{"one sub-order", "jsapi", "/sub_orders", func(m map[string]any) { m["sub_orders"] = []any{sub("S0000001")} }},
		{"same sub number twice", "jsapi", "/sub_orders/1/out_trade_no", func(m map[string]any) { m["sub_orders"] = []any{sub("S0000001"), sub("S0000001")} }},
		{"no attach", "jsapi", "/sub_orders/0/attach", func(m map[string]any) { delete(m["sub_orders"].([]any)[0].(map[string]any), "attach") }},
		{"zero amount", "jsapi", "/sub_orders/1/amount/total_amount", func(m map[string]any) {
			m["sub_orders"].([]any)[1].(map[string]any)["amount"] = map[string]any{"total_amount": 0}
		}},
		{"no payer", "jsapi", "/combine_payer_info/openid", func(m map[string]any) { delete(m, "combine_payer_info") }},
		{"native without payer", "native", "", func(m map[string]any) { delete(m, "combine_payer_info") }},
		{"h5 without scene", "h5", "/scene_info/payer_client_ip", func(m map[string]any) {}},
		{"notify with query", "native", "/notify_url", func(m map[string]any) { m["notify_url"] = "https://m.example/n?a=1" }},
		{"bad time", "native", "/time_expire", func(m map[string]any) { m["time_expire"] = "tomorrow" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := base()
			tc.edit(m)
			body, _ := json.Marshal(m)
			o, serr := validateCombine("1900000109", tc.kind, body)
			if tc.field == "" {
				if serr != nil || len(o.subs) != 2 || o.subs[0].state != stateNotPay {
					t.Fatalf("validateCombine = %+v, %v; want an order of two NOTPAY sub-orders", o, serr)
				}
				return
			}
			if serr == nil {
				t.Fatalf("validateCombine accepted it; want PARAM_ERROR on %s", tc.field)
			}
			d, _ := serr.detail.(fieldDetail)
			if serr.code != "PARAM_ERROR" || d.Field != tc.field || !strings.Contains(serr.message, "参数错误") {
				t.Errorf("validateCombine = %v (field %q); want PARAM_ERROR on %s", serr, d.Field, tc.field)
			}
		})
	}
}

// TestValidateCodePay: a payment code charge is checked before anything
// is charged; the code itself is never echoed in a refusal.
func TestValidateCodePay(t *testing.T) {
	const code = "134567890123456789"
	base := func() map[string]any {
		return map[string]any{"appid": "wx1", "mchid": "1900000109", "description": "tea", "out_trade_no": "P0000001",
			"payer": map[string]any{"auth_code": code}, "amount": map[string]any{"total": 1}, "scene_info": map[string]any{}}
	}
	for _, tc := range []struct {
		name    string
		partner bool
		field   string
		edit    func(m map[string]any)
	}{
		{"valid", false, "", func(m map[string]any) {}},
		{"another merchant", false, "/mchid", func(m map[string]any) { m["mchid"] = "1900000999" }},
		{"code of 17 digits", false, "/payer/auth_code", func(m map[string]any) { m["payer"] = map[string]any{"auth_code": code[:17]} }},
		{"code starting 16", false, "/payer/auth_code", func(m map[string]any) { m["payer"] = map[string]any{"auth_code": "16" + code[2:]} }},
		{"no scene", false, "/scene_info", func(m map[string]any) { delete(m, "scene_info") }},
		{"zero amount", false, "/amount/total", func(m map[string]any) { m["amount"] = map[string]any{"total": 0} }},
		{"partner without sub_mchid", true, "/sp_appid", func(m map[string]any) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := base()
			tc.edit(m)
			body, _ := json.Marshal(m)
			o, serr := validateCodePay("1900000109", tc.partner, body)
			if tc.field == "" {
				if serr != nil || o.TradeType != "MICROPAY" || o.Owner != "1900000109" {
					t.Fatalf("validateCodePay = %+v, %v", o, serr)
				}
				return
			}
			d, _ := serr.detail.(fieldDetail)
			if serr == nil || serr.code != "PARAM_ERROR" || d.Field != tc.field {
				t.Fatalf("validateCodePay = %v (field %q); want PARAM_ERROR on %s", serr, d.Field, tc.field)
			}
			if strings.Contains(serr.Error(), code) || d.Value == code {
				t.Errorf("the refusal echoes the payment code: %v %v", serr, d.Value)
			}
		})
	}
}
