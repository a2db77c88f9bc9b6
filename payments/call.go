package payments

import (
	"context"
	"net/http"

	"github.com/wxpaykit/wechatpay/internal/apicall"
)

// Do makes one JSON call to WeChat Pay through client, whose Transport
// must be a *wechatpay.Transport (it signs the request and verifies the
// answer). It marshals in as the request body (nil: no body), sends
// method rawURL, and decodes the answer into out (nil: the answer is
// read and dropped; a 204 leaves out untouched).
//
// Errors:
//   - a non-2xx answer is the *wechatpay.APIError of
//     wechatpay.CheckResponse;
//   - a failed state-changing call (POST, PUT, PATCH, DELETE) whose
//     request may have reached WeChat Pay is a
//     *wechatpay.OutcomeUnknownError: query before trying again;
//   - anything else (a verification failure of a query, a network error)
//     is returned as client.Do returned it.
//
// Build rawURL with PathEscape'd segments: Do sends it as given.
func Do(ctx context.Context, client *http.Client, method, rawURL string, in, out any) error {
	return apicall.Do(ctx, "payments", client, method, rawURL, in, out)
}

func segment(name, v string) (string, error) { return apicall.Segment("payments", name, v) }

func query(kv ...string) string { return apicall.Query(kv...) }
