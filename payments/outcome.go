package payments

import (
	"errors"
	"net/http"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/apicall"
)

// numbered makes the failure err of a state-changing call (method path)
// name the business number to query by: an *wechatpay.OutcomeUnknownError
// gets field and number, and an error answer whose signature did not
// verify becomes one (anyone on the path can forge an unsigned "400
// PARAM_ERROR" in place of a real "200", and a merchant who believed it
// might pay again under a new number). Other errors pass unchanged.
func numbered(err error, method, path, field, number string) error {
	if err == nil {
		return nil
	}
	var unknown *wechatpay.OutcomeUnknownError
	if errors.As(err, &unknown) {
		return apicall.Outcome(err, field, number)
	}
	var apiErr *wechatpay.APIError
	if errors.As(err, &apiErr) && !apiErr.Verified && method != http.MethodGet {
		return &wechatpay.OutcomeUnknownError{Method: method, Path: path, RequestID: apiErr.RequestID, Err: err, NumberName: field, Number: number}
	}
	return err
}

// accepted is the error code and message that a 2xx answer may carry
// instead of a result: WeChat Pay's close pages list "202 USERPAYING"
// among the errors (the payer is entering a password: nothing was
// closed).
type accepted struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// err returns the verified error a 2xx answer with a code means, or nil.
func (a *accepted) err(status int) error {
	if a.Code == "" {
		return nil
	}
	return &wechatpay.APIError{StatusCode: status, Code: a.Code, Message: a.Message, Verified: true}
}
