package payments_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/payments"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// A wrong merchant certificate serial, the most common first-day
// mistake, comes back through payments cause first, with one prefix; a
// prepay whose answer could not be verified stays an unknown outcome.
func TestWrongSerialErrorLeadsWithCause(t *testing.T) {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	cfg := srv.Config()
	cfg.CertificateSerial = strings.Repeat("1", 40)
	tr, err := wechatpay.NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pay := &payments.Client{HTTP: &http.Client{Transport: tr}, MerchantID: cfg.MerchantID, AppID: "wxd678efh567hg6787"}
	ctx := context.Background()
	_, prepayErr := pay.PrepayNative(ctx, payments.PrepayRequest{Description: "tea", OutTradeNo: "WRONGSERIAL1",
		NotifyURL: "https://merchant.example/notify", Amount: payments.OrderAmount{Total: 1}})
	_, queryErr := pay.QueryByOutTradeNo(ctx, "WRONGSERIAL1")
	for _, tc := range []struct {
		name    string
		err     error
		unknown bool
	}{{"prepay", prepayErr, true}, {"query", queryErr, false}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil {
				t.Fatal("the call succeeded with a wrong serial")
			}
			msg := tc.err.Error()
			if !strings.HasPrefix(msg, "wechatpay: WeChat Pay refused merchant "+cfg.MerchantID+"'s signature (SIGN_ERROR") {
				t.Errorf("error does not lead with the cause: %s", msg)
			}
			if n := strings.Count(msg, "wechatpay:"); n != 1 {
				t.Errorf("%d prefixes; want one: %s", n, msg)
			}
			var unknown *wechatpay.OutcomeUnknownError
			if errors.As(tc.err, &unknown) != tc.unknown {
				t.Errorf("OutcomeUnknownError %v; want %v: %s", !tc.unknown, tc.unknown, msg)
			}
			if !errors.Is(tc.err, wechatpay.ErrCertificateDownload) || wechatpay.Retryable(tc.err) {
				t.Errorf("want ErrCertificateDownload in the chain and no retry: %v", tc.err)
			}
		})
	}
}
