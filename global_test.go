package wechatpay_test

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/wxpaykit/wechatpay"
)

// TestGlobalHost runs a merchant configured for the global (Hong Kong)
// host against the sandbox standing in for it: every connection goes to
// the sandbox, whatever the host name.
func TestGlobalHost(t *testing.T) {
	srv := newSandbox(t)
	addr := srv.URL[len("http://"):]
	var mu sync.Mutex
	var dialed []string
	base := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, a)
		mu.Unlock()
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	defer base.CloseIdleConnections()

	cfg := srv.Config()
	u, _ := url.Parse(wechatpay.GlobalBaseURL)
	u.Scheme = "http" // the sandbox speaks plain HTTP; the host name decides the path
	cfg.BaseURL = u.String()
	cfg.Base = base
	client, _ := newClient(t, cfg, wechatpay.StoreOptions{})
	resp, err := client.Get(cfg.BaseURL + "/v3/echo/global")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := srv.PathRequests("/v3/global/certificates"); n != 1 {
		t.Errorf("sandbox saw %d requests for /v3/global/certificates; want 1", n)
	}
	if n := srv.PathRequests("/v3/certificates"); n != 0 {
		t.Errorf("sandbox saw %d requests for /v3/certificates; want 0", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(dialed) == 0 || dialed[0] != "apihk.mch.weixin.qq.com:80" {
		t.Errorf("dialed %v; want apihk.mch.weixin.qq.com:80", dialed)
	}

	// The mainland host name uses /v3/certificates.
	srv2 := newSandbox(t)
	cfg2 := srv2.Config()
	client2, _ := newClient(t, cfg2, wechatpay.StoreOptions{})
	resp, err = client2.Get(srv2.URL + "/v3/echo/mainland")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if srv2.PathRequests("/v3/certificates") != 1 || srv2.PathRequests("/v3/global/certificates") != 0 {
		t.Errorf("mainland: %d /v3/certificates, %d global; want 1 and 0", srv2.PathRequests("/v3/certificates"), srv2.PathRequests("/v3/global/certificates"))
	}
}
