package wechatpaytest

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Payment codes (付款码支付, APIv3; docs/protocol.md §17). A charge of at
// most 1,000 CNY succeeds at once (200, the paid order); a larger one
// needs the payer's password (WeChat Pay's rule: "支付金额>1000元的交易需要
// 验证用户支付密码"), so the order stays USERPAYING (202
// {"trade_state":"USERPAYING"}) until Server.Pay ends it or the merchant
// reverses it. Reverse closes an unpaid order and refunds a paid one;
// both become REVOKED. There is no notification. The orders are the
// simulator's orders (trade_type MICROPAY), so the plain query finds them.
// Sources: pay.weixin.qq.com/docs/merchant/apis/code-payment-v3/direct/code-pay.html,
// .../direct/reverse.html, the partner pages, doc/v2/partner/4011941160,
// wiki/doc/api/wxpay/ch/pay/QuickPay/chapter3_3.shtml (the password rule).

const (
	stateRevoked = "REVOKED"
	// passwordAbove is the amount, in fen, above which the payer must
	// enter a password: 1,000 CNY.
	passwordAbove = 100000
)

func init() { tradeStateDesc[stateRevoked] = "已撤销（付款码支付）" }

// authCodeRE is a WeChat Pay payment code: 18 digits starting 10 to 15.
var authCodeRE = regexp.MustCompile(`^1[0-5][0-9]{16}$`)

var errNotMicropay = &simError{http.StatusBadRequest, "INVALID_REQUEST", "订单支付场景不正确，拒绝请求", nil}

// codePayRequest is the body of a charge, direct and partner forms.
type codePayRequest struct {
	AppID       string `json:"appid"`
	MchID       string `json:"mchid"`
	SpAppID     string `json:"sp_appid"`
	SpMchID     string `json:"sp_mchid"`
	SubAppID    string `json:"sub_appid"`
	SubMchID    string `json:"sub_mchid"`
	Description string `json:"description"`
	OutTradeNo  string `json:"out_trade_no"`
	Attach      string `json:"attach"`
	Payer       *struct {
		AuthCode string `json:"auth_code"`
	} `json:"payer"`
	Amount *struct {
		Total    *int64 `json:"total"`
		Currency string `json:"currency"`
	} `json:"amount"`
	SceneInfo *json.RawMessage `json:"scene_info"`
}

// validateCodePay checks a charge and returns the order it would create.
func validateCodePay(caller string, partner bool, body []byte) (*order, *simError) {
	var req codePayRequest
	if err := decodeObject(body, &req); err != nil {
		return nil, err
	}
	o := &order{Merchant: caller, Partner: partner, TradeType: "MICROPAY", Currency: "CNY"}
	need := []struct{ name, v string }{{"appid", req.AppID}, {"mchid", req.MchID}}
	if partner {
		need = []struct{ name, v string }{{"sp_appid", req.SpAppID}, {"sp_mchid", req.SpMchID}, {"sub_mchid", req.SubMchID}}
	}
	for _, f := range need {
		if f.v == "" {
			return nil, paramError("/"+f.name, "缺少必填参数"+f.name, nil)
		}
	}
	if partner {
		if req.SpMchID != caller {
			return nil, paramError("/sp_mchid", "sp_mchid与请求签名的商户号不一致", req.SpMchID)
		}
		o.Owner, o.AppID, o.SubAppID = req.SubMchID, req.SpAppID, req.SubAppID
	} else {
		if req.MchID != caller {
			return nil, paramError("/mchid", "mchid与请求签名的商户号不一致", req.MchID)
		}
		o.Owner, o.AppID = req.MchID, req.AppID
	}
	switch {
	case req.Description == "":
		return nil, paramError("/description", "缺少必填参数description", nil)
	case utf8.RuneCountInString(req.Description) > 127:
		return nil, paramError("/description", "description长度超过127", nil)
	case !outTradeNoRE.MatchString(req.OutTradeNo):
		return nil, paramError("/out_trade_no", "out_trade_no应为6至32位数字、大小写字母或_-*", req.OutTradeNo)
	case utf8.RuneCountInString(req.Attach) > 128:
		return nil, paramError("/attach", "attach长度超过128", nil)
	case req.Payer == nil || req.Payer.AuthCode == "":
		return nil, paramError("/payer/auth_code", "缺少必填参数payer.auth_code", nil)
	case !authCodeRE.MatchString(req.Payer.AuthCode):
		// The code is a credential: it is not echoed back.
		return nil, paramError("/payer/auth_code", "付款码应为10至15开头的18位数字", nil)
	case req.Amount == nil || req.Amount.Total == nil:
		return nil, paramError("/amount/total", "缺少必填参数amount.total", nil)
	case *req.Amount.Total <= 0:
		return nil, paramError("/amount/total", "订单金额必须大于0", *req.Amount.Total)
	case req.Amount.Currency != "" && req.Amount.Currency != "CNY":
		return nil, paramError("/amount/currency", "Currency code is invalid", req.Amount.Currency)
	case req.SceneInfo == nil:
		return nil, paramError("/scene_info", "缺少必填参数scene_info", nil)
	}
	o.Description, o.OutTradeNo, o.Attach, o.Total = req.Description, req.OutTradeNo, req.Attach, *req.Amount.Total
	o.Fingerprint = fingerprint("MICROPAY", body)
	return o, nil
}

// codeRoutes are the payment code routes: they create and reverse
// orders of the orders part.
func (od *orders) codeRoutes() []route {
	return []route{
		{"POST /v3/pay/transactions/codepay", failable, od.serveCodePay(false)},
		{"POST /v3/pay/partner/transactions/codepay", failable, od.serveCodePay(true)},
		{"POST /v3/pay/transactions/out-trade-no/{no}/reverse", failable, od.serveReverse(false)},
		{"POST /v3/pay/partner/transactions/out-trade-no/{no}/reverse", failable, od.serveReverse(true)},
	}
}

// serveCodePay answers POST /v3/pay/[partner/]transactions/codepay.
func (od *orders) serveCodePay(partner bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		o, serr := validateCodePay(MerchantIDFrom(r.Context()), partner, bodyOf(r))
		if serr != nil {
			writeSimError(w, serr)
			return
		}
		od.mu.Lock()
		k := orderKey(o.Owner, o.OutTradeNo)
		if old := od.byKey[k]; old != nil {
			// The same charge sent again: its current state, never a
			// second charge.
			var tx map[string]any
			switch {
			case old.Fingerprint != o.Fingerprint || old.Merchant != o.Merchant:
				serr = errOutTradeNo
			case old.State == stateClosed || old.State == stateRevoked:
				serr = errOrderClosed
			default:
				tx = old.transactionJSON()
			}
			state := old.State
			od.mu.Unlock()
			if serr != nil {
				writeSimError(w, serr)
				return
			}
			writeCodePay(w, state, tx)
			return
		}
		now := od.clock.now()
		o.PrepayID, o.CreateTime = "", now
		if o.Total > passwordAbove {
			o.State = stateUserPaying
		} else {
			o.State, o.TransactionID, o.SuccessTime = stateSuccess, "4200"+randomDigits(24), now
			o.OpenID = "oSandbox" + randomText(20)
			od.byTx[o.TransactionID] = k
		}
		od.byKey[k] = o
		tx := o.transactionJSON()
		od.saveLocked()
		od.mu.Unlock()
		writeCodePay(w, o.State, tx)
	}
}

// writeCodePay answers a charge: 202 with the state alone while the payer
// enters a password, else 200 with the order.
func writeCodePay(w http.ResponseWriter, state string, tx map[string]any) {
	if state == stateUserPaying {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte(`{"trade_state":"USERPAYING"}`))
		return
	}
	writeJSON(w, tx)
}

// serveReverse answers POST
// /v3/pay/[partner/]transactions/out-trade-no/{no}/reverse: a payment
// code order not yet reversed becomes REVOKED (a paid one is refunded to
// the payer); reversing again answers the same.
func (od *orders) serveReverse(partner bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		caller := MerchantIDFrom(r.Context())
		var req map[string]any
		if serr := decodeObject(bodyOf(r), &req); serr != nil {
			writeSimError(w, serr)
			return
		}
		get := func(k string) string { v, _ := req[k].(string); return v }
		owner, serr := queryCaller(caller, partner, get)
		if serr != nil {
			if d, ok := serr.detail.(fieldDetail); ok {
				d.Field, d.Location = "/"+strings.TrimPrefix(d.Field, "/"), "body"
				serr.detail = d
			}
			writeSimError(w, serr)
			return
		}
		no := r.PathValue("no")
		od.mu.Lock()
		o := od.byKey[orderKey(owner, no)]
		switch {
		case o == nil || o.Merchant != caller || o.Partner != partner:
			serr = errOrderNotExist
		case o.TradeType != "MICROPAY":
			serr = errNotMicropay
		case o.State == stateRefund:
			serr = errOrderPaid
		default:
			o.State = stateRevoked
			od.saveLocked()
		}
		od.mu.Unlock()
		if serr != nil {
			writeSimError(w, serr)
			return
		}
		out := map[string]string{"out_trade_no": no}
		if partner {
			out["sp_mchid"], out["sub_mchid"] = caller, owner
			if v := get("sp_appid"); v != "" {
				out["sp_appid"] = v
			}
		} else {
			out["mchid"], out["appid"] = caller, get("appid")
		}
		writeJSON(w, out)
	}
}
