package wechatpaytest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Checking a prepay request as WeChat Pay does (pay.weixin.qq.com/doc/v3/
// merchant/4012525167 and the pages of the other trade types).

// prepayRequest is the body of a prepay call, direct and partner forms.
type prepayRequest struct {
	AppID       string `json:"appid"`
	MchID       string `json:"mchid"`
	SpAppID     string `json:"sp_appid"`
	SpMchID     string `json:"sp_mchid"`
	SubAppID    string `json:"sub_appid"`
	SubMchID    string `json:"sub_mchid"`
	Description string `json:"description"`
	OutTradeNo  string `json:"out_trade_no"`
	TimeExpire  string `json:"time_expire"`
	Attach      string `json:"attach"`
	NotifyURL   string `json:"notify_url"`
	Amount      *struct {
		Total    *int64 `json:"total"`
		Currency string `json:"currency"`
	} `json:"amount"`
	Payer *struct {
		OpenID    string `json:"openid"`
		SpOpenID  string `json:"sp_openid"`
		SubOpenID string `json:"sub_openid"`
	} `json:"payer"`
	SettleInfo *struct {
		ProfitSharing bool `json:"profit_sharing"`
	} `json:"settle_info"`
	SceneInfo *struct {
		PayerClientIP string `json:"payer_client_ip"`
		H5Info        *struct {
			Type string `json:"type"`
		} `json:"h5_info"`
	} `json:"scene_info"`
}

var outTradeNoRE = regexp.MustCompile(`^[0-9A-Za-z_\-|*]{6,32}$`)

// tradeTypes maps the last path element of a prepay route to trade_type.
var tradeTypes = map[string]string{"jsapi": "JSAPI", "app": "APP", "h5": "MWEB", "native": "NATIVE"}

// decodeObject unmarshals a JSON object body into v.
func decodeObject(body []byte, v any) *simError {
	if t := bytes.TrimSpace(body); len(t) == 0 || t[0] != '{' {
		return &simError{http.StatusBadRequest, "PARAM_ERROR", "请求体必须是JSON对象", nil}
	}
	if err := json.Unmarshal(body, v); err != nil {
		msg := "请求体不是合法的JSON"
		var te *json.UnmarshalTypeError
		if ok := asTypeError(err, &te); ok {
			return paramError("/"+strings.ReplaceAll(te.Field, ".", "/"), "类型错误，应为"+te.Type.String(), nil)
		}
		return &simError{http.StatusBadRequest, "PARAM_ERROR", msg, nil}
	}
	return nil
}

func asTypeError(err error, te **json.UnmarshalTypeError) bool {
	t, ok := err.(*json.UnmarshalTypeError)
	if ok {
		*te = t
	}
	return ok
}

// validatePrepay checks a prepay request as WeChat Pay does and returns the
// order it would create. caller is the authenticated merchant.
func validatePrepay(caller, kind string, partner bool, body []byte) (*order, *simError) {
	var req prepayRequest
	if err := decodeObject(body, &req); err != nil {
		return nil, err
	}
	o := &order{Merchant: caller, Partner: partner, TradeType: tradeTypes[kind], Currency: "CNY"}
	required := func(field, v string) *simError {
		if v == "" {
			return paramError("/"+field, "缺少必填参数"+field, nil)
		}
		if utf8.RuneCountInString(v) > 32 {
			return paramError("/"+field, field+"长度超过32", v)
		}
		return nil
	}
	if partner {
		for _, f := range []struct{ name, v string }{{"sp_appid", req.SpAppID}, {"sp_mchid", req.SpMchID}, {"sub_mchid", req.SubMchID}} {
			if err := required(f.name, f.v); err != nil {
				return nil, err
			}
		}
		if req.SpMchID != caller {
			return nil, paramError("/sp_mchid", "sp_mchid与请求签名的商户号不一致", req.SpMchID)
		}
		o.Owner, o.AppID, o.SubAppID = req.SubMchID, req.SpAppID, req.SubAppID
	} else {
		for _, f := range []struct{ name, v string }{{"appid", req.AppID}, {"mchid", req.MchID}} {
			if err := required(f.name, f.v); err != nil {
				return nil, err
			}
		}
		if req.MchID != caller {
			return nil, paramError("/mchid", "mchid与请求签名的商户号不一致", req.MchID)
		}
		o.Owner, o.AppID = req.MchID, req.AppID
	}
	if req.Description == "" {
		return nil, paramError("/description", "缺少必填参数description", nil)
	}
	if utf8.RuneCountInString(req.Description) > 127 || !utf8.ValidString(req.Description) {
		return nil, paramError("/description", "description长度超过127", nil)
	}
	if req.OutTradeNo == "" {
		return nil, paramError("/out_trade_no", "缺少必填参数out_trade_no", nil)
	}
	if !outTradeNoRE.MatchString(req.OutTradeNo) {
		return nil, paramError("/out_trade_no", "out_trade_no应为6至32位数字、大小写字母或_-|*", req.OutTradeNo)
	}
	if req.TimeExpire != "" {
		if _, err := time.Parse(time.RFC3339, req.TimeExpire); err != nil {
			return nil, paramError("/time_expire", "time_expire应为RFC 3339格式", req.TimeExpire)
		}
	}
	if utf8.RuneCountInString(req.Attach) > 128 {
		return nil, paramError("/attach", "attach长度超过128", nil)
	}
	if req.NotifyURL == "" {
		return nil, paramError("/notify_url", "缺少必填参数notify_url", nil)
	}
	if err := checkNotifyURL("/notify_url", req.NotifyURL); err != nil {
		return nil, err
	}
	if req.Amount == nil || req.Amount.Total == nil {
		return nil, paramError("/amount/total", "缺少必填参数amount.total", nil)
	}
	if *req.Amount.Total <= 0 {
		return nil, paramError("/amount/total", "订单金额必须大于0", *req.Amount.Total)
	}
	if c := req.Amount.Currency; c != "" && c != "CNY" {
		return nil, paramError("/amount/currency", "Currency code is invalid", c)
	}
	if err := checkPayer(&req, o, kind, partner); err != nil {
		return nil, err
	}
	o.Description, o.OutTradeNo, o.TimeExpire, o.Attach, o.NotifyURL = req.Description, req.OutTradeNo, req.TimeExpire, req.Attach, req.NotifyURL
	o.Total = *req.Amount.Total
	o.ProfitSharing = req.SettleInfo != nil && req.SettleInfo.ProfitSharing
	o.Fingerprint = fingerprint(o.TradeType, body)
	return o, nil
}

// checkNotifyURL accepts an absolute http or https URL without query. WeChat
// Pay requires https on the Internet; the sandbox also takes http, for a
// merchant server on the developer's machine.
func checkNotifyURL(field, s string) *simError {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return paramError(field, "notify_url应为http或https的绝对地址", s)
	}
	if u.RawQuery != "" || u.ForceQuery {
		return paramError(field, "notify_url不能携带参数", s)
	}
	if len(s) > 255 {
		return paramError(field, "notify_url长度超过255", nil)
	}
	return nil
}

// fingerprint identifies the parameters of a request, whatever the order
// of its JSON keys and its white space.
func fingerprint(kind string, body []byte) string {
	var v any
	json.Unmarshal(body, &v) // already decoded once
	canon, _ := json.Marshal(v)
	sum := sha256.Sum256(append([]byte(kind+"\n"), canon...))
	return hex.EncodeToString(sum[:])
}

// checkPayer checks the payer of a JSAPI order and the scene of an H5
// order, and copies the payer's openids into o.
func checkPayer(req *prepayRequest, o *order, kind string, partner bool) *simError {
	switch kind {
	case "jsapi":
		if req.Payer == nil {
			return paramError("/payer", "缺少必填参数payer", nil)
		}
		if partner {
			if req.Payer.SpOpenID == "" && req.Payer.SubOpenID == "" {
				return paramError("/payer/sp_openid", "payer.sp_openid与payer.sub_openid必填其一", nil)
			}
			if req.Payer.SubOpenID != "" && req.SubAppID == "" {
				return paramError("/sub_appid", "传入sub_openid时sub_appid必填", nil)
			}
			o.OpenID, o.SubOpenID = req.Payer.SpOpenID, req.Payer.SubOpenID
		} else {
			if req.Payer.OpenID == "" {
				return paramError("/payer/openid", "缺少必填参数payer.openid", nil)
			}
			o.OpenID = req.Payer.OpenID
		}
	case "h5":
		if req.SceneInfo == nil || req.SceneInfo.PayerClientIP == "" {
			return paramError("/scene_info/payer_client_ip", "缺少必填参数scene_info.payer_client_ip", nil)
		}
		if req.SceneInfo.H5Info == nil || req.SceneInfo.H5Info.Type == "" {
			return paramError("/scene_info/h5_info/type", "缺少必填参数scene_info.h5_info.type", nil)
		}
	}
	return nil
}
