package wechatpay_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/wxpaykit/wechatpay"
)

// An OutcomeUnknownError that names its business number tells the caller
// to query by it and never to send a new one; without one, it keeps the
// general advice.
func TestOutcomeUnknownNamesNumber(t *testing.T) {
	cause := errors.New("connection reset by peer")
	e := &wechatpay.OutcomeUnknownError{Method: "POST", Path: "/v3/fund-app/mch-transfer/transfer-bills",
		Err: cause, QueryBy: "out_bill_no", Number: "plfk2020042013"}
	msg := e.Error()
	for _, want := range []string{"query by out_bill_no plfk2020042013", "never a new one", "connection reset by peer"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Error() = %q; want it to contain %q", msg, want)
		}
	}
	if !errors.Is(e, cause) {
		t.Error("the cause does not unwrap")
	}
	plain := (&wechatpay.OutcomeUnknownError{Method: "POST", Path: "/v3/refund/domestic/refunds"}).Error()
	if !strings.Contains(plain, "out_trade_no, out_refund_no") {
		t.Errorf("Error() without a number = %q; want the general advice", plain)
	}
}
