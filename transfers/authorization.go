package transfers

import (
	"context"
	"fmt"
	"net/http"

	"github.com/wxpaykit/wechatpay/internal/apicall"
)

// Transfers without per-transfer confirmation (免确认收款授权,
// docs/protocol.md §14): the user authorises the merchant once, then
// TransferWithAuthorization pays them without a confirmation page. WeChat
// Pay offers it to merchants on its allow list only (others get
// NO_AUTH). These calls are those of a direct merchant.

const authorizationPath = "/v3/fund-app/mch-transfer/user-confirm-authorization"

// RequestAuthorization asks a user for 免确认收款授权 (POST
// /v3/fund-app/mch-transfer/user-confirm-authorization). The answer's
// PackageInfo goes to the front end as a bill's does (ConfirmParams);
// the user has 24 hours. The result comes as a
// MCHTRANSFER.AUTHORIZATION.CONFIRMED notification to
// AuthorizationNotifyURL, or from QueryAuthorization.
func (c *Client) RequestAuthorization(ctx context.Context, req AuthorizationRequest) (*Authorization, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if err := c.direct("RequestAuthorization"); err != nil {
		return nil, err
	}
	if req.AppID == "" {
		req.AppID = c.AppID
	}
	if err := checkNumber("out_authorization_no", req.OutAuthorizationNo); err != nil {
		return nil, err
	}
	if req.AppID == "" || req.OpenID == "" || req.TransferSceneID == "" || req.UserDisplayName == "" || req.AuthorizationNotifyURL == "" {
		return nil, fmt.Errorf("wechatpay/transfers: authorization %s: appid, openid, transfer_scene_id, user_display_name and authorization_notify_url are required", req.OutAuthorizationNo)
	}
	var a Authorization
	if err := c.do(ctx, http.MethodPost, authorizationPath, req, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// QueryAuthorization returns the authorisation with the merchant's
// out_authorization_no (GET …/user-confirm-authorization/out-authorization-no/{no}).
func (c *Client) QueryAuthorization(ctx context.Context, outAuthorizationNo string) (*Authorization, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if err := c.direct("QueryAuthorization"); err != nil {
		return nil, err
	}
	seg, err := apicall.Segment(pkg, "out_authorization_no", outAuthorizationNo)
	if err != nil {
		return nil, err
	}
	var a Authorization
	if err := c.do(ctx, http.MethodGet, authorizationPath+"/out-authorization-no/"+seg, nil, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// CloseAuthorization ends an authorisation (POST
// …/user-confirm-authorization/out-authorization-no/{no}/close).
func (c *Client) CloseAuthorization(ctx context.Context, outAuthorizationNo string) (*Authorization, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if err := c.direct("CloseAuthorization"); err != nil {
		return nil, err
	}
	seg, err := apicall.Segment(pkg, "out_authorization_no", outAuthorizationNo)
	if err != nil {
		return nil, err
	}
	var a Authorization
	if err := c.do(ctx, http.MethodPost, authorizationPath+"/out-authorization-no/"+seg+"/close", struct{}{}, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// PreTransferWithAuthorization creates a bill the user confirms and asks
// them, on the same page, for 免确认收款授权 (POST
// …/transfer-bills/pre-transfer-with-authorization). The rules of Create
// apply: the name threshold, and an *wechatpay.OutcomeUnknownError naming
// the out_bill_no for any failure after sending.
func (c *Client) PreTransferWithAuthorization(ctx context.Context, req PreTransferRequest) (*Bill, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if err := c.direct("PreTransferWithAuthorization"); err != nil {
		return nil, err
	}
	bill, err := c.fill(req.BillRequest)
	if err != nil {
		return nil, err
	}
	req.BillRequest = bill
	var b Bill
	if err := c.moneyCall(ctx, c.billsPath()+"/pre-transfer-with-authorization", req.OutBillNo, req, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// TransferWithAuthorization pays a user who granted 免确认收款授权,
// without a confirmation page (POST …/transfer-bills/transfer). OpenID
// names the user. The rules of Create apply.
func (c *Client) TransferWithAuthorization(ctx context.Context, req BillRequest) (*Bill, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if err := c.direct("TransferWithAuthorization"); err != nil {
		return nil, err
	}
	req, err := c.fill(req)
	if err != nil {
		return nil, err
	}
	var b Bill
	if err := c.moneyCall(ctx, c.billsPath()+"/transfer", req.OutBillNo, req, &b); err != nil {
		return nil, err
	}
	return &b, nil
}
