package transfers

import (
	"errors"
	"net/url"
	"strings"
)

// The user's confirmation (docs/protocol.md §14). A bill in
// WAIT_USER_CONFIRM carries package_info; the merchant's front end hands
// it to WeChat, which shows the user a confirmation page:
//
//	mini-program: wx.requestMerchantTransfer(params)       (base library ≥ 3.3.0)
//	JSAPI (H5):   WeixinJSBridge.invoke("requestMerchantTransfer", params, cb)
//	App:          Open SDK WXOpenBusinessView, businessType "requestMerchantTransfer",
//	              query AppQuery(...)
//
// Nothing is signed. A successful front-end call only means the page was
// shown ("并不代表付款成功"): whether the user was paid comes from the
// MCHTRANSFER.BILL.FINISHED notification or a query, never from the front
// end, which the user controls.

// AppBusinessType is the businessType an App passes to the Open SDK's
// open-business-view to show the confirmation page.
const AppBusinessType = "requestMerchantTransfer"

// ConfirmParams are what a mini-program passes to
// wx.requestMerchantTransfer, and a page inside WeChat to
// WeixinJSBridge.invoke("requestMerchantTransfer", ...). The JSON names
// are WeChat's.
type ConfirmParams struct {
	MchID    string `json:"mchId"`
	SubMchID string `json:"subMchId,omitempty"` // a service provider's sub-merchant
	AppID    string `json:"appId,omitempty"`
	SubAppID string `json:"subAppId,omitempty"`
	Package  string `json:"package"`
	OpenID   string `json:"openId,omitempty"` // optional: WeChat checks it is the user who confirms
}

// NewConfirmParams returns the parameters for a bill in WAIT_USER_CONFIRM
// made by merchant mchID for appID; openID may be empty.
func NewConfirmParams(mchID, appID string, b *Bill, openID string) (*ConfirmParams, error) {
	if err := waiting(b); err != nil {
		return nil, err
	}
	if mchID == "" || appID == "" {
		return nil, errors.New("wechatpay/transfers: confirmation parameters need the mchId and appId the bill was made with")
	}
	return &ConfirmParams{MchID: mchID, AppID: appID, Package: b.PackageInfo, OpenID: openID}, nil
}

// ConfirmParams returns the parameters for b, a bill the Client made: its
// merchant (and sub-merchant) and the bill's appid.
func (c *Client) ConfirmParams(b *Bill) (*ConfirmParams, error) {
	if c == nil || c.MerchantID == "" {
		return nil, errors.New("wechatpay/transfers: Client needs a MerchantID")
	}
	appID := c.AppID
	if b != nil && b.AppID != "" {
		appID = b.AppID
	}
	p, err := NewConfirmParams(c.MerchantID, appID, b, "")
	if err != nil {
		return nil, err
	}
	p.SubMchID = c.SubMerchantID
	if b.OpenID != "" {
		p.OpenID = b.OpenID
	}
	return p, nil
}

// AppQuery returns the query string an App passes, with businessType
// AppBusinessType, to the Open SDK's open-business-view:
// mchId=…&appId=…&package=…, each value URL-encoded, in that order.
// appID is the App's own appid on the WeChat Open Platform.
func AppQuery(mchID, appID string, b *Bill) (string, error) {
	if err := waiting(b); err != nil {
		return "", err
	}
	if mchID == "" || appID == "" {
		return "", errors.New("wechatpay/transfers: the App query needs the mchId and the App's appId")
	}
	var s strings.Builder
	for i, kv := range [][2]string{{"mchId", mchID}, {"appId", appID}, {"package", b.PackageInfo}} {
		if i > 0 {
			s.WriteByte('&')
		}
		s.WriteString(kv[0])
		s.WriteByte('=')
		s.WriteString(url.QueryEscape(kv[1]))
	}
	return s.String(), nil
}

func waiting(b *Bill) error {
	switch {
	case b == nil:
		return errors.New("wechatpay/transfers: no bill")
	case b.PackageInfo == "":
		return errors.New("wechatpay/transfers: bill " + b.OutBillNo + " has no package_info (state " + b.State + "): only a bill in WAIT_USER_CONFIRM can be confirmed")
	}
	return nil
}
