package apiv2_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay/apiv2"
)

// wrapBody wraps every response body, as tracing and logging transports do.
type wrapBody struct{ next http.RoundTripper }

type wrappedBody struct{ io.ReadCloser }

func (w wrapBody) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := w.next.RoundTrip(r)
	if err == nil {
		resp.Body = wrappedBody{resp.Body}
	}
	return resp, err
}

func TestPostThroughTimeoutAndWrappingClients(t *testing.T) {
	srv := newSandbox(t)
	m := srv.Merchant()
	v2 := &apiv2.Transport{MerchantID: m.ID, Key: m.APIv2Key, Base: srv.Config().Base, BaseURL: srv.URL}
	for _, client := range []*http.Client{
		{Transport: v2, Timeout: 10 * time.Second},
		{Transport: wrapBody{v2}},
	} {
		fields, err := apiv2.Post(context.Background(), client, srv.URL+"/risk/getcertficates", map[string]string{"mch_id": m.ID})
		if err != nil {
			t.Fatalf("PostV2: %v", err)
		}
		if fields["certificates"] == "" {
			t.Errorf("PostV2 answer has no certificates: %v", fields)
		}
	}
}
