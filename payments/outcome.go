package payments

import (
	"github.com/wxpaykit/wechatpay"
)

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
