package wechatpay

import (
	"errors"
	"net/url"
	"testing"
)

func TestAPIHosts(t *testing.T) {
	for _, tc := range []struct {
		base    string
		allowed []string
		refused []string
	}{
		{"https://api.mch.weixin.qq.com",
			[]string{"https://api.mch.weixin.qq.com/v3/x", "https://API2.mch.weixin.qq.com:443/v3/x"},
			[]string{"http://api.mch.weixin.qq.com/v3/x", "https://apihk.mch.weixin.qq.com/v3/x", "https://api.mch.weixin.qq.com:8443/v3/x", "https://api.mch.weixin.qq.com.evil.example/v3/x", "https://evil.example/v3/x"}},
		{"https://api2.mch.weixin.qq.com",
			[]string{"https://api2.mch.weixin.qq.com/v3/x", "https://api.mch.weixin.qq.com/v3/x"},
			[]string{"https://apihk.mch.weixin.qq.com/v3/x"}},
		{"https://apihk.mch.weixin.qq.com",
			[]string{"https://apihk.mch.weixin.qq.com/v3/x", "https://api.mch.weixin.qq.com/v3/x"},
			[]string{"https://api2.mch.weixin.qq.com/v3/x"}},
		{"http://127.0.0.1:8080",
			[]string{"http://127.0.0.1:8080/v3/x"},
			[]string{"http://127.0.0.1:8081/v3/x", "https://127.0.0.1:8080/v3/x", "http://localhost:8080/v3/x", "https://api.mch.weixin.qq.com/v3/x"}},
	} {
		h := newAPIHosts(mustParse(t, tc.base))
		for _, u := range tc.allowed {
			if err := h.check(mustParse(t, u)); err != nil {
				t.Errorf("BaseURL %s: %s refused: %v", tc.base, u, err)
			}
		}
		for _, u := range tc.refused {
			if err := h.check(mustParse(t, u)); !errors.Is(err, ErrHostNotAllowed) {
				t.Errorf("BaseURL %s: %s: %v; want ErrHostNotAllowed", tc.base, u, err)
			}
		}
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
