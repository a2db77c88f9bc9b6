package middleware

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/wire"
)

// A stage is the step of the callback path that refused a request.
type stage int

const (
	stageMethod   stage = iota // not a POST
	stageMerchant              // MerchantIDFunc or APIv3Keys
	stageBody                  // reading the body
	stageVerify                // the signature
	stageOpen                  // parsing and decrypting the verified body
	stageClaim                 // Config.Guard
)

// A rejection is a request the middleware refuses: the stage that
// refused it, the merchant if known, and why.
type rejection struct {
	stage      stage
	merchantID string
	err        error
}

// Generic failure messages: they say what kind of failure it was and
// nothing more.
const (
	msgMethod      = "method not allowed"
	msgMerchant    = "unknown merchant"
	msgTooLarge    = "request body too large"
	msgRead        = "cannot read request body"
	msgTimeout     = "request body timeout"
	msgVerify      = "signature verification failed"
	msgUnavailable = "verification temporarily unavailable"
	msgMalformed   = "malformed notification"
	msgDecrypt     = "cannot decrypt notification"
	msgInternal    = "internal error"
	msgInProgress  = "notification is being processed"
)

// answer is the one place that maps a refusal to the HTTP status and the
// generic message answered.
func (rj *rejection) answer() (int, string) {
	err := rj.err
	switch rj.stage {
	case stageMethod:
		return http.StatusMethodNotAllowed, msgMethod
	case stageMerchant:
		if errors.Is(err, ErrUnknownMerchant) {
			return http.StatusNotFound, msgMerchant
		}
		return http.StatusInternalServerError, msgInternal // APIv3Keys gave a bad key
	case stageBody:
		switch {
		case errors.Is(err, wechatpay.ErrBodyTooLarge):
			return http.StatusRequestEntityTooLarge, msgTooLarge
		case errors.Is(err, ErrBodyTimeout):
			return http.StatusRequestTimeout, msgTimeout
		}
		return http.StatusBadRequest, msgRead
	case stageVerify:
		switch {
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
			errors.Is(err, wechatpay.ErrCertificateDownload):
			// We could not tell; WeChat Pay will retry.
			return http.StatusServiceUnavailable, msgUnavailable
		case errors.Is(err, wechatpay.ErrUnknownMerchant):
			return http.StatusNotFound, msgMerchant
		}
		return http.StatusUnauthorized, msgVerify
	case stageOpen:
		if errors.Is(err, ErrMalformed) {
			return http.StatusBadRequest, msgMalformed
		}
		return http.StatusBadRequest, msgDecrypt
	case stageClaim:
		return http.StatusServiceUnavailable, msgInProgress
	}
	return http.StatusInternalServerError, msgInternal
}

// refuse answers rj with WeChat Pay's failure JSON, after telling
// ErrorHandler and Events.
func (h *handler) refuse(w http.ResponseWriter, r *http.Request, rj *rejection) {
	status, msg := rj.answer()
	merchantID, err := rj.merchantID, rj.err
	h.report(r, status, merchantID, err)
	if h.cfg.Events != nil {
		// The headers are the sender's: bounded before they are passed on.
		h.cfg.Events(r.Context(), wechatpay.Event{
			Kind:       wechatpay.EventCallbackRefused,
			Time:       time.Now(),
			MerchantID: truncate(merchantID, 64),
			Serial:     truncate(r.Header.Get(wire.HeaderSerial), 64),
			RequestID:  truncate(r.Header.Get(wire.HeaderRequestID), 64),
			Host:       truncate(r.Host, 255),
			Status:     status,
			Err:        err,
		})
	}
	Fail(w, status, msg)
}

func (h *handler) report(r *http.Request, status int, merchantID string, err error) {
	if h.cfg.ErrorHandler != nil {
		h.cfg.ErrorHandler(r, &Error{Status: status, MerchantID: merchantID, Err: err})
	}
}

// failure is WeChat Pay's failure answer (docs/protocol.md §6).
type failure struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Fail answers a notification with status and WeChat Pay's failure JSON,
// {"code":"FAIL","message":message}; WeChat Pay then delivers the
// notification again later. Use a 4xx or 5xx status: WeChat Pay decides
// by the status alone, and takes 200 and 204 for success whatever the
// body. Keep message free of internal details.
func Fail(w http.ResponseWriter, status int, message string) {
	body, err := json.Marshal(failure{Code: "FAIL", Message: message})
	if err != nil {
		panic(err) // two strings always marshal
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", fmt.Sprint(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(body)
}
