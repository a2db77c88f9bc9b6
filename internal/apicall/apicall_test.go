package apicall

import (
	"net/http"
	"testing"

	"github.com/wxpaykit/wechatpay"
)

// wrapper is a RoundTripper around another, as tracing and retry
// transports are.
type wrapper struct{ next http.RoundTripper }

func (w *wrapper) RoundTrip(r *http.Request) (*http.Response, error) { return w.next.RoundTrip(r) }
func (w *wrapper) Unwrap() http.RoundTripper                         { return w.next }

// opaque wraps without saying what it wraps.
type opaque struct{ next http.RoundTripper }

func (o opaque) RoundTrip(r *http.Request) (*http.Response, error) { return o.next.RoundTrip(r) }

// loop unwraps to itself.
type loop struct{}

func (l *loop) RoundTrip(*http.Request) (*http.Response, error) { return nil, http.ErrNotSupported }
func (l *loop) Unwrap() http.RoundTripper                       { return l }

func TestBaseURL(t *testing.T) {
	sandbox := &wechatpay.Transport{BaseURL: "http://127.0.0.1:8080/"}
	tests := []struct {
		name   string
		client *http.Client
		base   string
		want   string
	}{
		{"the client's own BaseURL wins", &http.Client{Transport: sandbox}, "https://proxy.example/", "https://proxy.example"},
		{"from the Transport", &http.Client{Transport: sandbox}, "", "http://127.0.0.1:8080"},
		{"Transport without BaseURL", &http.Client{Transport: &wechatpay.Transport{}}, "", wechatpay.DefaultBaseURL},
		{"through a Failover", &http.Client{Transport: &wechatpay.Failover{Transport: sandbox}}, "", "http://127.0.0.1:8080"},
		{"through wrappers", &http.Client{Transport: &wrapper{&wrapper{&wechatpay.Failover{Transport: sandbox}}}}, "", "http://127.0.0.1:8080"},
		{"an opaque wrapper hides it", &http.Client{Transport: opaque{sandbox}}, "", wechatpay.DefaultBaseURL},
		{"a wrapper that unwraps to itself", &http.Client{Transport: &loop{}}, "", wechatpay.DefaultBaseURL},
		{"a Failover without Transport", &http.Client{Transport: &wechatpay.Failover{}}, "", wechatpay.DefaultBaseURL},
		{"no Transport", &http.Client{}, "", wechatpay.DefaultBaseURL},
		{"nil client", nil, "", wechatpay.DefaultBaseURL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := BaseURL(tc.client, tc.base); got != tc.want {
				t.Errorf("BaseURL = %q; want %q", got, tc.want)
			}
		})
	}
}
