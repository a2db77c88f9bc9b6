package transfers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"unicode/utf8"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/apicall"
)

const pkg = "transfers"

// A Client makes the transfer calls of one merchant, or of one service
// provider for one sub-merchant, through HTTP, whose Transport signs and
// verifies (a *wechatpay.Transport). Set SubMerchantID to act as a
// service provider (服务商): bills, cancels and queries then use the
// /partner/ paths and carry sub_mchid. The authorisation and receipt
// calls are those of a direct merchant.
//
// A Client holds no state of its own; it is safe for concurrent use. Do
// not change its fields while calls are running.
type Client struct {
	// HTTP sends the calls. Required; its Transport must sign and verify.
	HTTP *http.Client
	// BaseURL is where WeChat Pay is. Empty means the BaseURL of the
	// *wechatpay.Transport HTTP sends through, or wechatpay.DefaultBaseURL
	// without one.
	BaseURL string
	// MerchantID is the merchant's mchid (the service provider's for a
	// sub-merchant). Required.
	MerchantID string
	// AppID is the appid bills are made for, unless a request sets its
	// own; the user's openid belongs to it.
	AppID string
	// SubMerchantID, if set, is the sub-merchant (sub_mchid) a service
	// provider pays from.
	SubMerchantID string
}

// String describes c.
func (c Client) String() string {
	return fmt.Sprintf("transfers.Client{BaseURL: %q, MerchantID: %q, AppID: %q, SubMerchantID: %q}",
		apicall.BaseURL(c.HTTP, c.BaseURL), c.MerchantID, c.AppID, c.SubMerchantID)
}

// LogValue describes c to log/slog.
func (c Client) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("base_url", apicall.BaseURL(c.HTTP, c.BaseURL)),
		slog.String("mchid", c.MerchantID),
		slog.String("appid", c.AppID),
		slog.String("sub_mchid", c.SubMerchantID),
	)
}

func (c *Client) partner() bool { return c.SubMerchantID != "" }

func (c *Client) check() error {
	if c == nil || c.HTTP == nil {
		return errors.New("wechatpay/transfers: Client needs an HTTP client")
	}
	if c.MerchantID == "" {
		return errors.New("wechatpay/transfers: Client needs a MerchantID")
	}
	return nil
}

// direct refuses, before sending, a call WeChat Pay offers direct
// merchants only (its partner form has other paths and fields).
func (c *Client) direct(call string) error {
	if c.partner() {
		return errors.New("wechatpay/transfers: " + call + " is a direct merchant's call; this Client acts for sub-merchant " + c.SubMerchantID)
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	if err := c.check(); err != nil {
		return err
	}
	return apicall.Do(ctx, pkg, c.HTTP, method, apicall.BaseURL(c.HTTP, c.BaseURL)+path, in, out)
}

// moneyCall makes a call that moves money or changes a bill (create,
// cancel) and applies the outcome rule: whatever answer is not a verified
// 2xx, even a verified error, is an *wechatpay.OutcomeUnknownError naming
// the out_bill_no to query by. WeChat Pay asks exactly that: "HTTP状态码
// 不为200时,请务必不要立即更换商户订单单号重试 … 通过商户单号查询转账单
// … 查询订单结果" (docs/protocol.md §14). Errors from before anything was
// sent (a request the library refused, a connection never made) stay as
// they are: nothing happened.
func (c *Client) moneyCall(ctx context.Context, path, outBillNo string, in, out any) error {
	err := c.do(ctx, http.MethodPost, path, in, out)
	if err == nil {
		return nil
	}
	var unknown *wechatpay.OutcomeUnknownError
	if errors.As(err, &unknown) {
		return apicall.Outcome(err, "out_bill_no", outBillNo)
	}
	// WeChat Pay's answer to this request, as apicall.Do returns it; an
	// *APIError nested deeper is a certificate download's, from a request
	// that was never sent.
	if apiErr, ok := err.(*wechatpay.APIError); ok {
		return &wechatpay.OutcomeUnknownError{Method: http.MethodPost, Path: path, RequestID: apiErr.RequestID,
			Err: err, NumberName: "out_bill_no", Number: outBillNo}
	}
	return err
}

func (c *Client) billsPath() string {
	if c.partner() {
		return "/v3/fund-app/mch-transfer/partner/transfer-bills"
	}
	return "/v3/fund-app/mch-transfer/transfer-bills"
}

// checkOutBillNo accepts what WeChat Pay documents for out_bill_no:
// digits and ASCII letters, at most 32. Such a number is also safe as a
// path segment.
func checkOutBillNo(no string) error { return checkNumber("out_bill_no", no) }

func checkNumber(field, no string) error {
	if no == "" {
		return fmt.Errorf("wechatpay/transfers: %s is empty", field)
	}
	if len(no) > 32 {
		return fmt.Errorf("wechatpay/transfers: %s %.40q is longer than 32 characters", field, no)
	}
	for _, r := range no {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
			return fmt.Errorf("wechatpay/transfers: %s %.40q may hold only digits and letters", field, no)
		}
	}
	return nil
}

// fill completes a copy of req with the Client's app and sub-merchant and
// checks what WeChat Pay would refuse, above all the name a bill of
// UserNameThreshold or more must carry.
func (c *Client) fill(req BillRequest) (BillRequest, error) {
	if req.AppID == "" {
		req.AppID = c.AppID
	}
	if c.partner() && req.SubMchID == "" {
		req.SubMchID = c.SubMerchantID
	}
	if !c.partner() && req.SubMchID != "" {
		return req, errors.New("wechatpay/transfers: a direct merchant's bill takes no sub_mchid; set Client.SubMerchantID to act as a service provider")
	}
	if err := checkOutBillNo(req.OutBillNo); err != nil {
		return req, err
	}
	switch {
	case req.AppID == "":
		return req, fmt.Errorf("wechatpay/transfers: bill %s: appid is empty (set BillRequest.AppID or Client.AppID)", req.OutBillNo)
	case req.TransferSceneID == "":
		return req, fmt.Errorf("wechatpay/transfers: bill %s: transfer_scene_id is empty", req.OutBillNo)
	case req.OpenID == "":
		return req, fmt.Errorf("wechatpay/transfers: bill %s: openid is empty", req.OutBillNo)
	case req.TransferAmount <= 0:
		return req, fmt.Errorf("wechatpay/transfers: bill %s: transfer_amount must be positive fen, not %d", req.OutBillNo, req.TransferAmount)
	case req.TransferRemark == "":
		return req, fmt.Errorf("wechatpay/transfers: bill %s: transfer_remark is empty", req.OutBillNo)
	case utf8.RuneCountInString(req.TransferRemark) > 32:
		return req, fmt.Errorf("wechatpay/transfers: bill %s: transfer_remark is longer than 32 characters", req.OutBillNo)
	case req.TransferAmount >= UserNameThreshold && req.UserName == "":
		return req, fmt.Errorf("wechatpay/transfers: bill %s: user_name is required for a transfer of %d fen: WeChat Pay requires the user's real name from 2,000 yuan (%d fen); nothing was sent",
			req.OutBillNo, req.TransferAmount, UserNameThreshold)
	}
	return req, nil
}

// Create creates a transfer bill (POST
// /v3/fund-app/mch-transfer/transfer-bills; for a service provider
// …/partner/transfer-bills). The answer's State is usually
// WAIT_USER_CONFIRM, with PackageInfo to hand to the user's WeChat
// (ConfirmParams, AppQuery); the result comes as a
// MCHTRANSFER.BILL.FINISHED notification, or from QueryByOutBillNo.
//
// A bill of UserNameThreshold (2,000 yuan) or more without UserName is
// refused before anything is sent. The UserName is encrypted on the way.
//
// Any failure after the request may have reached WeChat Pay, including
// an error answer, is a *wechatpay.OutcomeUnknownError with NumberName
// "out_bill_no": query by the out_bill_no; repeat only with the same
// out_bill_no and the same parameters, never with a new number (WeChat
// Pay warns of paying twice). Nothing here retries on its own.
func (c *Client) Create(ctx context.Context, req BillRequest) (*Bill, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	req, err := c.fill(req)
	if err != nil {
		return nil, err
	}
	var b Bill
	if err := c.moneyCall(ctx, c.billsPath(), req.OutBillNo, req, &b); err != nil {
		return nil, err
	}
	if b.OutBillNo == "" {
		b.OutBillNo = req.OutBillNo
	}
	return &b, nil
}

// Cancel cancels a bill the user has not confirmed yet (POST
// …/transfer-bills/out-bill-no/{out_bill_no}/cancel). The answer's State
// is CANCELING or CANCELLED; "以最终查询单据返回状态为准": the final state
// comes from a query or the notification. A failure after sending is a
// *wechatpay.OutcomeUnknownError, as for Create.
func (c *Client) Cancel(ctx context.Context, outBillNo string) (*Bill, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if err := checkOutBillNo(outBillNo); err != nil {
		return nil, err
	}
	var body any = struct{}{}
	if c.partner() {
		body = struct {
			SubMchID string `json:"sub_mchid"`
		}{c.SubMerchantID}
	}
	var b Bill
	if err := c.moneyCall(ctx, c.billsPath()+"/out-bill-no/"+outBillNo+"/cancel", outBillNo, body, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// QueryByOutBillNo returns the bill with the merchant's out_bill_no (GET
// …/transfer-bills/out-bill-no/{out_bill_no}): the query to make after an
// *wechatpay.OutcomeUnknownError from Create or Cancel. A bill WeChat Pay
// does not know is a *wechatpay.APIError with Code NOT_FOUND; only then,
// or when the bill is FAIL, may a new out_bill_no pay the user.
func (c *Client) QueryByOutBillNo(ctx context.Context, outBillNo string) (*Bill, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if err := checkOutBillNo(outBillNo); err != nil {
		return nil, err
	}
	return c.query(ctx, "/out-bill-no/"+outBillNo)
}

// QueryByTransferBillNo returns the bill with WeChat Pay's
// transfer_bill_no (GET …/transfer-bills/transfer-bill-no/{transfer_bill_no}).
func (c *Client) QueryByTransferBillNo(ctx context.Context, transferBillNo string) (*Bill, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	seg, err := apicall.Segment(pkg, "transfer_bill_no", transferBillNo)
	if err != nil {
		return nil, err
	}
	return c.query(ctx, "/transfer-bill-no/"+seg)
}

func (c *Client) query(ctx context.Context, rest string) (*Bill, error) {
	q := ""
	if c.partner() {
		q = apicall.Query("sub_mchid", c.SubMerchantID)
	}
	var b Bill
	if err := c.do(ctx, http.MethodGet, c.billsPath()+rest+q, nil, &b); err != nil {
		return nil, err
	}
	return &b, nil
}
