package payments

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/apicall"
)

// Payment codes (付款码支付, APIv3; docs/protocol.md §17): the cashier scans
// the code the payer shows and charges it. There is no notification: the
// merchant learns the outcome from the answer, or by querying. Sources:
// pay.weixin.qq.com/docs/merchant/apis/code-payment-v3/direct/code-pay.html
// (doc/v3/merchant/4012382150), .../direct/reverse.html,
// docs/partner/apis/partner-code-payment-v3/partner/partner-code-pay.html
// and partner-reverse.html; the waiting rules in doc/v2/partner/4011941160.

// CodePayRequest is the body of a payment code charge. The Client fills
// the merchant and app fields as for a prepay (appid/mchid, or
// sp_appid/sp_mchid/sub_appid/sub_mchid for a service provider).
type CodePayRequest struct {
	AppID    string `json:"appid,omitempty"`
	MchID    string `json:"mchid,omitempty"`
	SpAppID  string `json:"sp_appid,omitempty"`
	SpMchID  string `json:"sp_mchid,omitempty"`
	SubAppID string `json:"sub_appid,omitempty"`
	SubMchID string `json:"sub_mchid,omitempty"`

	Description string `json:"description"`  // up to 127 characters
	OutTradeNo  string `json:"out_trade_no"` // up to 32 characters: digits, letters, _-*
	Attach      string `json:"attach,omitempty"`
	GoodsTag    string `json:"goods_tag,omitempty"`
	// SupportFapiao shows an invoice entry with the payment.
	SupportFapiao bool               `json:"support_fapiao,omitempty"`
	Payer         PaymentCode        `json:"payer"`
	Amount        OrderAmount        `json:"amount"`
	SceneInfo     CodePaySceneInfo   `json:"scene_info"`
	SettleInfo    *CodePaySettleInfo `json:"settle_info,omitempty"`
}

// String describes r without the payer's code.
func (r CodePayRequest) String() string {
	return fmt.Sprintf("payments.CodePayRequest{OutTradeNo: %q, Description: %q, Amount: %d %s, Payer: %s}",
		r.OutTradeNo, r.Description, r.Amount.Total, r.Amount.Currency, r.Payer)
}

// GoString is String, so that %#v does not print the code either.
func (r CodePayRequest) GoString() string { return r.String() }

// LogValue describes r to log/slog without the payer's code.
func (r CodePayRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("out_trade_no", r.OutTradeNo), slog.Int64("total", r.Amount.Total), slog.String("auth_code", r.Payer.String()))
}

// PaymentCode is the payer of a payment code charge: the code the
// cashier scanned (auth_code, 18 digits starting 10 to 15). Whoever holds
// it can charge the payer until it expires, so its String, GoString and
// LogValue leave it out.
type PaymentCode struct {
	AuthCode string `json:"auth_code"`
}

// String says whether p holds a code, not the code.
func (p PaymentCode) String() string {
	if p.AuthCode == "" {
		return "auth_code(empty)"
	}
	return "auth_code(redacted)"
}

// GoString is String.
func (p PaymentCode) GoString() string { return p.String() }

// LogValue is String.
func (p PaymentCode) LogValue() slog.Value { return slog.StringValue(p.String()) }

// CodePaySceneInfo is the scene of a payment code charge: the cashier
// device and the store.
type CodePaySceneInfo struct {
	DeviceID  string     `json:"device_id,omitempty"`
	DeviceIP  string     `json:"device_ip,omitempty"`
	StoreInfo *StoreInfo `json:"store_info,omitempty"`
}

// StoreInfo is the store of a payment code charge: WeChat Pay's store ID
// and/or the merchant's own (out_id).
type StoreInfo struct {
	ID    string `json:"id,omitempty"`
	OutID string `json:"out_id,omitempty"`
}

// CodePaySettleInfo is the settlement of a payment code charge.
type CodePaySettleInfo struct {
	ProfitSharing bool `json:"profit_sharing,omitempty"`
}

func (c *Client) fillCodePay(req CodePayRequest) (CodePayRequest, error) {
	if c.partner() {
		if req.SpMchID == "" {
			req.SpMchID = c.MerchantID
		}
		if req.SpAppID == "" {
			req.SpAppID = c.AppID
		}
		if req.SubMchID == "" {
			req.SubMchID = c.SubMerchantID
		}
		if req.SubAppID == "" {
			req.SubAppID = c.SubAppID
		}
	} else {
		if req.MchID == "" {
			req.MchID = c.MerchantID
		}
		if req.AppID == "" {
			req.AppID = c.AppID
		}
	}
	switch {
	case req.OutTradeNo == "":
		return req, errors.New("wechatpay/payments: payment code charge: out_trade_no is empty")
	case req.Payer.AuthCode == "":
		return req, fmt.Errorf("wechatpay/payments: payment code order %s: payer.auth_code is empty", req.OutTradeNo)
	case req.Amount.Total <= 0:
		return req, fmt.Errorf("wechatpay/payments: payment code order %s: amount.total must be positive fen, not %d", req.OutTradeNo, req.Amount.Total)
	}
	if req.Amount.Currency == "" {
		req.Amount.Currency = "CNY"
	}
	return req, nil
}

// CodePay charges a payment code once (POST /v3/pay/transactions/codepay)
// and returns WeChat Pay's answer. Its TradeState is SUCCESS (paid) or
// USERPAYING (WeChat Pay answers 202 while the payer enters a password,
// always for more than 1,000 CNY): query until it ends, and reverse the
// order if it does not end in time. CodePayAndWait does all of that.
//
// A failure whose outcome is unknown is an *wechatpay.OutcomeUnknownError
// naming the out_trade_no: query it, never charge again under a new
// number.
func (c *Client) CodePay(ctx context.Context, req CodePayRequest) (*Transaction, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	req, err := c.fillCodePay(req)
	if err != nil {
		return nil, err
	}
	path := c.transactionsPath() + "codepay"
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodPost, path, req, &raw); err != nil {
		redactCode(err, req.Payer.AuthCode)
		return nil, apicall.Outcome(err, "out_trade_no", req.OutTradeNo)
	}
	var tx Transaction
	var code accepted
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &tx); err != nil {
			return nil, &wechatpay.OutcomeUnknownError{Method: http.MethodPost, Path: path, NumberName: "out_trade_no", Number: req.OutTradeNo,
				Err: fmt.Errorf("wechatpay/payments: the payment code answer does not decode: %w", err)}
		}
		json.Unmarshal(raw, &code) // a decoding error was reported just above
	}
	if tx.TradeState == "" && (code.Code == "USERPAYING" || code.Code == "USER_PAYING") {
		// A 202 that says USERPAYING as an error code, as WeChat Pay's
		// close pages show it, rather than as trade_state.
		tx.TradeState, tx.OutTradeNo = "USERPAYING", req.OutTradeNo
	}
	if tx.TradeState == "" {
		return nil, &wechatpay.OutcomeUnknownError{Method: http.MethodPost, Path: path, NumberName: "out_trade_no", Number: req.OutTradeNo,
			Err: errors.New("wechatpay/payments: the payment code answer has no trade_state")}
	}
	return &tx, nil
}

// Reverse reverses (撤销) a payment code order (POST
// /v3/pay/transactions/out-trade-no/{out_trade_no}/reverse): an unpaid
// order is closed, a paid one refunded to the payer. Reversing again is
// harmless. WeChat Pay asks not to reverse within 15 seconds of the
// charge. A failure whose outcome is unknown is an
// *wechatpay.OutcomeUnknownError naming the out_trade_no: reverse again.
func (c *Client) Reverse(ctx context.Context, outTradeNo string) error {
	if err := c.check(); err != nil {
		return err
	}
	seg, err := segment("out_trade_no", outTradeNo)
	if err != nil {
		return err
	}
	var body any = struct {
		AppID string `json:"appid,omitempty"`
		MchID string `json:"mchid"`
	}{c.AppID, c.MerchantID}
	if c.partner() {
		body = struct {
			SpAppID  string `json:"sp_appid,omitempty"`
			SpMchID  string `json:"sp_mchid"`
			SubAppID string `json:"sub_appid,omitempty"`
			SubMchID string `json:"sub_mchid"`
		}{c.AppID, c.MerchantID, c.SubAppID, c.SubMerchantID}
	}
	path := c.transactionsPath() + "out-trade-no/" + seg + "/reverse"
	var out struct {
		OutTradeNo string `json:"out_trade_no"`
	}
	if err := c.do(ctx, http.MethodPost, path, body, &out); err != nil {
		return apicall.Outcome(err, "out_trade_no", outTradeNo)
	}
	if out.OutTradeNo != "" && out.OutTradeNo != outTradeNo {
		return &wechatpay.OutcomeUnknownError{Method: http.MethodPost, Path: path, NumberName: "out_trade_no", Number: outTradeNo,
			Err: fmt.Errorf("wechatpay/payments: the reverse answer names order %.40q", out.OutTradeNo)}
	}
	return nil
}

// redactCode removes the payment code from an error answer that quotes
// it (a PARAM_ERROR's detail may hold the value it refused), so that the
// error can be logged.
func redactCode(err error, code string) {
	var apiErr *wechatpay.APIError
	if code == "" || !errors.As(err, &apiErr) {
		return
	}
	apiErr.Message = strings.ReplaceAll(apiErr.Message, code, "(auth_code redacted)")
	apiErr.Detail = bytes.ReplaceAll(apiErr.Detail, []byte(code), []byte("(auth_code redacted)"))
}

// CodeWait is how CodePayAndWait waits for a payment code charge to end.
// The zero value follows WeChat Pay's advice: query every 5 seconds,
// reverse after 30 seconds (but not within 15 seconds of the charge),
// reverse up to 3 times.
type CodeWait struct {
	// Interval is the pause before each query and between reverse
	// attempts. Zero means 5 seconds.
	Interval time.Duration
	// Timeout is how long after the charge the order may stay
	// USERPAYING before it is reversed. Zero means 30 seconds.
	Timeout time.Duration
	// ReverseAttempts bounds the reverse calls. Zero means 3.
	ReverseAttempts int
	// Now and Sleep are the clock; nil means time.Now and a timer that
	// stops early when ctx is done (returning ctx.Err()). Tests inject
	// both.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

func (w CodeWait) withDefaults() CodeWait {
	if w.Interval <= 0 {
		w.Interval = 5 * time.Second
	}
	if w.Timeout <= 0 {
		w.Timeout = 30 * time.Second
	}
	if w.ReverseAttempts <= 0 {
		w.ReverseAttempts = 3
	}
	if w.Now == nil {
		w.Now = time.Now
	}
	if w.Sleep == nil {
		w.Sleep = sleep
	}
	return w
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// reverseNotBefore is WeChat Pay's advice: do not reverse within 15
// seconds of the charge.
const reverseNotBefore = 15 * time.Second

// CodePayResult is the final state of a payment code order.
type CodePayResult struct {
	// State is SUCCESS (paid: hand over the goods), REVOKED (reversed:
	// nothing kept from the payer), or a state WeChat Pay reached by
	// itself: CLOSED, REFUND.
	State string
	// Reversed reports whether CodePayAndWait reversed the order.
	Reversed bool
	// Transaction is WeChat Pay's last verified view of the order (the
	// paid order when State is SUCCESS), nil if none came.
	Transaction *Transaction
	// Queries is the number of queries made.
	Queries int
}

// A CodePayError says that a payment code order was left in a state
// CodePayAndWait could not settle: the payer may have been charged. Query
// the order by OutTradeNo; unless it is SUCCESS, reverse it (Reverse)
// until WeChat Pay confirms. Never charge the payer again for it, under
// this number or a new one, before that.
type CodePayError struct {
	OutTradeNo string // the order to query and reverse
	State      string // the last trade_state seen, "" if none
	Err        error  // why it is unsettled: the last reverse failure, or ctx's error
}

func (e *CodePayError) Error() string {
	state := e.State
	if state == "" {
		state = "unknown"
	}
	return fmt.Sprintf("wechatpay/payments: payment code order %s is unsettled (last state %s): %v; the payer may be charged: query it by out_trade_no %s and, unless it is SUCCESS, reverse it again until WeChat Pay confirms; never charge again for it, under this number or a new one",
		e.OutTradeNo, state, e.Err, e.OutTradeNo)
}

func (e *CodePayError) Unwrap() error { return e.Err }

// pendingCodes are the error codes of a charge whose outcome is still
// open: the payer is entering a password, or WeChat Pay or the bank
// failed mid-way, or the number was seen before. The charge is followed by
// queries, not taken for a refusal.
var pendingCodes = map[string]bool{
	"USERPAYING": true, "USER_PAYING": true, "SYSTEMERROR": true, "SYSTEM_ERROR": true, "BANKERROR": true, "BANK_ERROR": true,
	"ORDERPAID": true, "ORDER_PAID": true, "OUT_TRADE_NO_USED": true, "ORDER_CLOSED": true, "ORDERREVERSED": true, "ORDER_REVERSED": true,
}

// CodePayAndWait charges a payment code and returns its final state. It
// never charges twice: the charge is sent once, and every later step
// queries or reverses that same out_trade_no.
//
//   - SUCCESS at once: returned.
//   - USERPAYING, an unknown outcome (timeout, unverified answer) or a
//     pending error (SYSTEM_ERROR, BANK_ERROR, 5xx): the order is queried
//     every w.Interval until it ends or w.Timeout has passed since the
//     charge; then it is reversed, and the result is REVOKED.
//   - PAYERROR: reversed, so that it is closed on WeChat Pay's side too.
//   - A refusal WeChat Pay signed (an invalid or expired code, a payer
//     without funds, a 429): the *wechatpay.APIError, nothing charged.
//   - An order WeChat Pay never created (it answered the charge, and the
//     reverse answers ORDER_NOT_EXIST): that verified
//     *wechatpay.APIError, nothing charged. If the charge was never
//     answered, it may still arrive: a *CodePayError.
//   - A reverse that keeps failing (w.ReverseAttempts times), or ctx
//     ending while the order is open: a *CodePayError naming the
//     out_trade_no to query and reverse.
func (c *Client) CodePayAndWait(ctx context.Context, req CodePayRequest, w CodeWait) (*CodePayResult, error) {
	w = w.withDefaults()
	if err := c.check(); err != nil {
		return nil, err
	}
	req, err := c.fillCodePay(req)
	if err != nil {
		return nil, err
	}
	start := w.Now()
	res := &CodePayResult{}
	tx, err := c.CodePay(ctx, req)
	if err == nil {
		res.Transaction = tx
	} else if refused(err) {
		return nil, err
	}
	// Whether WeChat Pay's answer to the charge was lost: the charge may
	// then still be on its way.
	var lost *wechatpay.OutcomeUnknownError
	chargeLost := errors.As(err, &lost)
	no := req.OutTradeNo
	state := ""
	if tx != nil {
		state = tx.TradeState
	}
	deadline := start.Add(w.Timeout)
	for {
		if final, reverse := settle(state); final || reverse {
			if !reverse {
				res.State = state
				return res, nil
			}
			break
		}
		left := deadline.Sub(w.Now())
		if left <= 0 {
			break
		}
		if err := w.Sleep(ctx, min(w.Interval, left)); err != nil {
			return nil, &CodePayError{OutTradeNo: no, State: state, Err: err}
		}
		q, err := c.QueryByOutTradeNo(ctx, no)
		res.Queries++
		switch {
		case err == nil:
			res.Transaction, state = q, q.TradeState
		case ctx.Err() != nil:
			return nil, &CodePayError{OutTradeNo: no, State: state, Err: err}
		}
		// Any other query failure (ORDER_NOT_EXIST while the charge may
		// still land, a network error) is asked again next time.
	}
	if err := c.reverseCode(ctx, no, start, w); err != nil {
		var apiErr *wechatpay.APIError
		if errors.As(err, &apiErr) && apiErr.Verified && apiErr.Code == "ORDER_NOT_EXIST" {
			if !chargeLost {
				return nil, err // WeChat Pay answered the charge and has no order: nothing charged
			}
			// No order yet, but the charge was never answered: it may
			// still arrive (an attacker on the path can hold a signed
			// request for as long as its timestamp is accepted).
			err = fmt.Errorf("WeChat Pay has no such order yet, but the charge was never answered and may still arrive while its signature is valid (5 minutes): %w", err)
		}
		return nil, &CodePayError{OutTradeNo: no, State: state, Err: err}
	}
	res.State, res.Reversed = "REVOKED", true
	return res, nil
}

// settle decides what a trade_state means for CodePayAndWait: final (stop
// and report it) or reverse (stop and reverse); neither means ask again.
func settle(state string) (final, reverse bool) {
	switch state {
	case "SUCCESS", "REFUND", "CLOSED", "REVOKED":
		return true, false
	case "PAYERROR":
		return false, true
	}
	return false, false // USERPAYING, NOTPAY, or not known yet
}

// refused reports whether err is WeChat Pay's signed refusal of a charge:
// nothing was charged, and the merchant may ask for another code.
func refused(err error) bool {
	var apiErr *wechatpay.APIError
	if !errors.As(err, &apiErr) || !apiErr.Verified {
		return false
	}
	var unknown *wechatpay.OutcomeUnknownError
	if errors.As(err, &unknown) {
		return false
	}
	// A signed 429 is a refusal too: WeChat Pay did not take the charge
	// (wechatpay.Retryable says to try later, with the same number).
	return apiErr.StatusCode >= 400 && apiErr.StatusCode < 500 && !pendingCodes[apiErr.Code]
}

// reverseCode reverses order no, not earlier than 15 seconds after the
// charge at start (or w.Timeout if shorter), up to w.ReverseAttempts
// times, w.Interval apart, as WeChat Pay advises ("when a reverse gets no
// answer or an error, call it again"). It stops at the first success, at
// a verified ORDER_NOT_EXIST, and when ctx is done.
func (c *Client) reverseCode(ctx context.Context, no string, start time.Time, w CodeWait) error {
	if wait := start.Add(min(reverseNotBefore, w.Timeout)).Sub(w.Now()); wait > 0 {
		if err := w.Sleep(ctx, wait); err != nil {
			return err
		}
	}
	var err error
	for i := range w.ReverseAttempts {
		if i > 0 {
			if serr := w.Sleep(ctx, w.Interval); serr != nil {
				return fmt.Errorf("%w (after %d reverse attempts, the last: %v)", serr, i, err)
			}
		}
		if err = c.Reverse(ctx, no); err == nil {
			return nil
		}
		var apiErr *wechatpay.APIError
		if errors.As(err, &apiErr) && apiErr.Verified && apiErr.Code == "ORDER_NOT_EXIST" {
			return err
		}
		if ctx.Err() != nil {
			return err
		}
	}
	return fmt.Errorf("reverse failed %d times, the last: %w", w.ReverseAttempts, err)
}
