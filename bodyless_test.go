package wechatpay

import (
	"io"
	"net/http"
	"testing"
)

// bodylessBase answers with a signed empty body and a Content-Length that
// describes the resource, not the message, as HEAD, 204 and 304 do.
type bodylessBase struct {
	f      *fakeWeChat
	status int
}

func (b bodylessBase) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/v3/certificates" {
		return b.f.RoundTrip(r)
	}
	resp := b.f.respond(b.status, nil)
	resp.ContentLength = 1234
	resp.Header.Set("Content-Length", "1234")
	resp.Body = http.NoBody
	return resp, nil
}

func TestBodylessResponsesRead(t *testing.T) {
	f := newFake(t)
	for _, tc := range []struct {
		method string
		status int
	}{
		{http.MethodHead, http.StatusOK},
		{http.MethodGet, http.StatusNoContent},
		{http.MethodGet, http.StatusNotModified},
	} {
		cfg := testConfig("1900000001", f)
		cfg.Base = bodylessBase{f, tc.status}
		tr, err := NewTransport(cfg)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(tc.method, "https://api.mch.weixin.qq.com/v3/pay/transactions/id/1", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Errorf("%s answered %d with Content-Length 1234: %v", tc.method, tc.status, err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(b) != 0 || !IsVerified(resp) {
			t.Errorf("%s %d: body %q, verified %v; want empty and verified", tc.method, tc.status, b, IsVerified(resp))
		}
	}
}
