package main

import (
	"strings"
	"testing"
)

// TestWrongSerialLeadsWithCause plays the most common first-day mistake:
// a merchant certificate serial that is not the key's. The command says
// first that the signature was refused and what to check, then, for a
// POST, that its outcome is unknown.
func TestWrongSerialLeadsWithCause(t *testing.T) {
	f := newFixture(t)
	wrong := strings.Repeat("1", 40)
	flags := append(append([]string{}, f.flags...), "-serial", wrong) // the last -serial wins
	order := `{"appid":"wxd678efh567hg6787","mchid":"` + f.m.ID + `","description":"tea","out_trade_no":"WRONGSERIAL1","notify_url":"https://merchant.example/notify","amount":{"total":1}}`
	for _, tc := range []struct {
		name    string
		args    []string
		outcome bool
	}{
		{"post", append([]string{"post", "/v3/pay/transactions/native", "-d", order}, flags...), true},
		{"get", append([]string{"get", "/v3/pay/transactions/out-trade-no/WRONGSERIAL1?mchid=" + f.m.ID}, flags...), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runApp(t, nil, "", tc.args...)
			wantCode(t, r, exitAPIError, "HTTP 401 SIGN_ERROR", "-serial", "-key", "wechatpay doctor")
			if !strings.HasPrefix(r.stderr, "wechatpay: the merchant's signature was refused (SIGN_ERROR") {
				t.Errorf("the message does not lead with the cause:\n%s", r.stderr)
			}
			if n := strings.Count(r.stderr, "wechatpay: "); n != 1 {
				t.Errorf("%d prefixes; want one:\n%s", n, r.stderr)
			}
			if got := strings.Contains(r.stderr, "outcome unknown: POST /v3/pay/transactions/native was most likely refused"); got != tc.outcome {
				t.Errorf("outcome note %v; want %v:\n%s", got, tc.outcome, r.stderr)
			}
		})
	}
}
