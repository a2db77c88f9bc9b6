package wechatpay

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"testing"
)

// A request the Transport refused to send, because a step of its own
// failed on a certificate download that did not verify, is not an
// unknown outcome: nothing was sent, whatever the refusal holds. A
// refusal nested deeper than RoundTrip's own error (a download's) does
// not count.
func TestClassifyRefusalHoldingVerifyError(t *testing.T) {
	req, _ := http.NewRequest(http.MethodPost, "https://api.mch.weixin.qq.com/v3/fund-app/mch-transfer/transfer-bills", nil)
	download := &VerifyError{RequestID: "DOWNLOAD-REQUEST-ID", Err: ErrMissingSignature}
	refused := notSentError{fmt.Errorf("wechatpay: sensitive fields: no key to encrypt with: %w", download)}
	for _, err := range []error{refused, &url.Error{Op: "Post", URL: req.URL.String(), Err: refused}} {
		got := ClassifyError(req, err)
		var unknown *OutcomeUnknownError
		if errors.As(got, &unknown) {
			t.Errorf("ClassifyError(%T) = %v; want the refusal, not an unknown outcome", err, got)
		}
	}
	// A response that did not verify, whose error happens to hold a
	// refusal deep inside, was sent: unknown.
	sent := &url.Error{Op: "Post", URL: req.URL.String(), Err: &VerifyError{RequestID: "R", Err: fmt.Errorf("key lookup: %w", refused)}}
	var unknown *OutcomeUnknownError
	if got := ClassifyError(req, sent); !errors.As(got, &unknown) {
		t.Errorf("ClassifyError(a sent request's VerifyError) = %v; want an unknown outcome", got)
	}
}
