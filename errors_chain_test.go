package wechatpay

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestOnePrefix(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"wechatpay: a: wechatpay: b: wechatpay: c", "wechatpay: a: b: c"},
		{`Post "x": wechatpay: a: wechatpay: b`, `Post "x": wechatpay: a: b`},
		{"no prefix", "no prefix"},
		{"wechatpay/payments: a: wechatpay: b", "wechatpay/payments: a: wechatpay: b"},
	} {
		if got := onePrefix(tc.in); got != tc.want {
			t.Errorf("onePrefix(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

// signErrorChain is the error a call meets when WeChat Pay refused the
// certificate download with SIGN_ERROR, as the Store and Verifier build
// it: the answer to the call itself did not verify.
func signErrorChain(method string) error {
	download := &APIError{StatusCode: 401, Code: "SIGN_ERROR", Message: "商户证书序列号有误", RequestID: "DL-REQ"}
	storeErr := fmt.Errorf("%w %q for merchant 1900000001: %w", ErrUnknownSerial, "5157F09E",
		fmt.Errorf("%w for merchant 1900000001: %w", ErrCertificateDownload, download))
	return &url.Error{Op: method, URL: "https://api.mch.weixin.qq.com/v3/x",
		Err: &VerifyError{MerchantID: "1900000001", Serial: "5157F09E", RequestID: "CALL-REQ", Err: storeErr}}
}

func TestClassifyErrorSignRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		method  string
		err     error
		unknown bool // an *OutcomeUnknownError
	}{
		{"POST whose answer did not verify", http.MethodPost, signErrorChain("Post"), true},
		{"GET", http.MethodGet, signErrorChain("Get"), false},
		{"POST refused before sending", http.MethodPost, notSentError{fmt.Errorf("wechatpay: choosing the encryption key: %w",
			fmt.Errorf("%w for merchant 1900000001: %w", ErrCertificateDownload, &APIError{StatusCode: 401, Code: "SIGN_ERROR"}))}, false},
		{"POST, download refused, sent or not unknown", http.MethodPost,
			fmt.Errorf("wechatpay: %w", fmt.Errorf("%w for merchant 1900000001: %w", ErrCertificateDownload, &APIError{StatusCode: 401, Code: "SIGN_ERROR"})), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(context.Background(), tc.method, "https://api.mch.weixin.qq.com/v3/pay/transactions/native", nil)
			err := ClassifyError(req, tc.err)
			msg := err.Error()
			if !strings.HasPrefix(msg, "wechatpay: WeChat Pay refused ") || !strings.Contains(msg, "CertificateSerial") {
				t.Errorf("ClassifyError = %q; want it to lead with the refused signature and what to check", msg)
			}
			if n := strings.Count(msg, "wechatpay:"); n != 1 {
				t.Errorf("ClassifyError = %q: %d prefixes; want 1", msg, n)
			}
			var unknown *OutcomeUnknownError
			if errors.As(err, &unknown) != tc.unknown {
				t.Errorf("ClassifyError = %T; outcome unknown %v, want %v", err, !tc.unknown, tc.unknown)
			}
			if tc.unknown && (!strings.Contains(msg, "outcome is unknown") || !strings.Contains(msg, "query by your own order")) {
				t.Errorf("ClassifyError = %q; want it to say the outcome is unknown and to query", msg)
			}
			if !tc.unknown && strings.Contains(msg, "outcome") {
				t.Errorf("ClassifyError = %q; a call known not to have changed anything is not an unknown outcome", msg)
			}
			var apiErr *APIError
			if !errors.Is(err, ErrCertificateDownload) || !errors.As(err, &apiErr) || apiErr.Code != "SIGN_ERROR" || Retryable(err) {
				t.Errorf("ClassifyError = %v; want the chain kept (ErrCertificateDownload, SIGN_ERROR) and not retryable", err)
			}
		})
	}
}

func TestVerifyErrorOnePrefix(t *testing.T) {
	err := signErrorChain("Get")
	if n := strings.Count(err.Error(), "wechatpay:"); n != 1 {
		t.Errorf("%q: %d prefixes; want 1", err, n)
	}
}
