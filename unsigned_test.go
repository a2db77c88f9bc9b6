package wechatpay

import (
	"context"
	"net/http"
	"testing"
)

func TestIsUnsignedDownload(t *testing.T) {
	tests := []struct {
		method, path string
		want         bool
	}{
		{"GET", "/v3/billdownload/file", true},
		{"GET", "/v3/billdownload/filex", false},
		{"GET", "/v3/billdownload/file/../x", false},
		{"POST", "/v3/billdownload/file", false},
		{"GET", "/v3/merchant-service/images/abc", true},
		{"GET", "/v3/merchant-service/images-upload", false},
		{"GET", "/v3/statements", true},
		{"GET", "/v3/statementsX", false},
		{"GET", "/v3/pay/transactions/id/1", false},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(tc.method, "https://api.mch.weixin.qq.com"+tc.path+"?token=x", nil)
		if got := isUnsignedDownload(req); got != tc.want {
			t.Errorf("isUnsignedDownload(%s %s) = %v; want %v", tc.method, tc.path, got, tc.want)
		}
	}
	req, _ := http.NewRequestWithContext(WithoutResponseVerification(context.Background()), "GET", "https://x/v3/other", nil)
	if !isUnsignedDownload(req) {
		t.Error("WithoutResponseVerification not honoured")
	}
}
