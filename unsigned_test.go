package wechatpay

import (
	"context"
	"crypto/rsa"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// unsignedBase answers every request 200 with an unsigned body, as a
// man in the middle would, and counts what reached it.
type unsignedBase struct{ sent atomic.Int32 }

func (b *unsignedBase) RoundTrip(r *http.Request) (*http.Response, error) {
	b.sent.Add(1)
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(`{"trade_state":"SUCCESS"}`)), ContentLength: 25, Request: r}, nil
}

func unsignedTransport(base http.RoundTripper) *Transport {
	return &Transport{
		Signer:   &Signer{MerchantID: "1900000001", CertificateSerial: "5157F09EFDC096DE15EBE81A47057A7232F1B8E1", Key: testKey(0)},
		Verifier: &Verifier{MerchantID: "1900000001", Keys: keyFunc(func(string) *rsa.PublicKey { return nil })},
		Base:     base,
	}
}

// FuzzUnverifiedDecision: whatever the path, host, escaping or dot
// segments, an unsigned 2xx is returned only for a GET to the merchant's
// host that the caller marked, and never for a redirect.
func FuzzUnverifiedDecision(f *testing.F) {
	for _, p := range []string{
		"/v3/billdownload/file?token=x",
		"/v3/merchant-service/images/../../pay/transactions/id/42",
		"/v3/merchant-service/images/%2e%2e/%2e%2e/pay/transactions/id/42",
		"/v3/merchant-service/images/..%2F..%2Fpay/transactions/id/42",
		"/v3/statements",
		"/v3/pay/transactions/id/42",
	} {
		for _, host := range []string{"api.mch.weixin.qq.com", "api2.mch.weixin.qq.com", "evil.example", "api.mch.weixin.qq.com.evil.example", "API.MCH.WEIXIN.QQ.COM:443"} {
			f.Add(host, p, false, false, "GET")
			f.Add(host, p, true, false, "GET")
			f.Add(host, p, true, true, "GET")
			f.Add(host, p, true, false, "POST")
		}
	}
	f.Fuzz(func(t *testing.T, host, path string, marked, redirect bool, method string) {
		u, err := url.Parse("https://" + host + path)
		if err != nil || u.Host != host {
			return
		}
		base := &unsignedBase{}
		tr := unsignedTransport(base)
		ctx := context.Background()
		if marked {
			ctx = WithoutResponseVerification(ctx)
		}
		req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
		if err != nil {
			return
		}
		if redirect {
			req.Response = &http.Response{StatusCode: 302}
		}
		resp, err := tr.RoundTrip(req)
		hostOK := wire.NormalHost("https", u.Host) == "api.mch.weixin.qq.com" || wire.NormalHost("https", u.Host) == "api2.mch.weixin.qq.com"
		want := marked && !redirect && (method == "GET" || method == "") && hostOK // net/http reads "" as GET
		if (err == nil) != want {
			t.Fatalf("%s %s marked=%v redirect=%v: err = %v, want unverified pass = %v", method, u, marked, redirect, err, want)
		}
		if err == nil {
			resp.Body.Close()
			if IsVerified(resp) {
				t.Fatal("an unverified response reports IsVerified")
			}
		}
		if !hostOK && base.sent.Load() != 0 {
			t.Fatalf("a request for %q was sent", u.Host)
		}
	})
}

func TestUnsignedDownloadHint(t *testing.T) {
	tr := unsignedTransport(&unsignedBase{})
	req, _ := http.NewRequest("GET", "https://api.mch.weixin.qq.com/v3/billdownload/file?token=x", nil)
	_, err := tr.RoundTrip(req)
	var ve *VerifyError
	if !errors.As(err, &ve) || !errors.Is(err, ErrMissingSignature) {
		t.Fatalf("unmarked bill download: err = %v, want a *VerifyError wrapping ErrMissingSignature", err)
	}
	if !strings.Contains(err.Error(), "DownloadBill") || !strings.Contains(err.Error(), "WithoutResponseVerification") {
		t.Errorf("error %q does not say what to use", err)
	}
}
