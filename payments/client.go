package payments

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/apicall"
)

// A Client makes the payment lifecycle calls of one merchant, or of one
// service provider for one sub-merchant, through HTTP, whose Transport
// signs and verifies (a *wechatpay.Transport). Set SubMerchantID to act
// as a service provider (服务商): the calls then use the /partner/ paths
// and the sp_/sub_ fields.
//
// A Client holds no state of its own; it is safe for concurrent use. Do
// not change its fields while calls are running.
type Client struct {
	// HTTP sends the calls. Required; its Transport must sign and verify.
	HTTP *http.Client
	// BaseURL is where WeChat Pay is. Empty means the BaseURL of the
	// *wechatpay.Transport HTTP sends through (found through a Failover
	// and any wrapper with an Unwrap() http.RoundTripper method), or
	// wechatpay.DefaultBaseURL without one.
	BaseURL string
	// MerchantID is the merchant's mchid, or the service provider's
	// sp_mchid. Required.
	MerchantID string
	// AppID is the appid orders are placed for (the sp_appid of a service
	// provider); a request's own AppID or SpAppID overrides it.
	AppID string
	// SubMerchantID, if set, is the sub-merchant (sub_mchid) a service
	// provider acts for.
	SubMerchantID string
	// SubAppID, if set, is the sub-merchant's sub_appid; a request's own
	// SubAppID overrides it.
	SubAppID string
	// Key is the merchant's API private key (that of the service provider
	// for a sub-merchant), which signs the front-end payment parameters.
	// Needed by JSAPI and App only.
	Key crypto.Signer
}

// String describes c without its key.
func (c Client) String() string {
	key := "none"
	if c.Key != nil {
		key = "set"
	}
	return fmt.Sprintf("payments.Client{BaseURL: %q, MerchantID: %q, AppID: %q, SubMerchantID: %q, SubAppID: %q, Key: %s}",
		apicall.BaseURL(c.HTTP, c.BaseURL), c.MerchantID, c.AppID, c.SubMerchantID, c.SubAppID, key)
}

// GoString is String, so that %#v does not print the key either.
func (c Client) GoString() string { return c.String() }

// LogValue describes c to log/slog without its key.
func (c Client) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("base_url", apicall.BaseURL(c.HTTP, c.BaseURL)),
		slog.String("mchid", c.MerchantID),
		slog.String("appid", c.AppID),
		slog.String("sub_mchid", c.SubMerchantID),
		slog.Bool("key", c.Key != nil),
	)
}

func (c *Client) partner() bool { return c.SubMerchantID != "" }

func (c *Client) check() error {
	if c == nil || c.HTTP == nil {
		return errors.New("wechatpay/payments: Client needs an HTTP client")
	}
	if c.MerchantID == "" {
		return errors.New("wechatpay/payments: Client needs a MerchantID")
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	if err := c.check(); err != nil {
		return err
	}
	return Do(ctx, c.HTTP, method, apicall.BaseURL(c.HTTP, c.BaseURL)+path, in, out)
}

// cst is the UTC+8 zone WeChat Pay's examples write times in.
var cst = time.FixedZone("CST", 8*60*60)

// fill completes a copy of req with the Client's merchant and app.
func (c *Client) fill(req PrepayRequest) (PrepayRequest, error) {
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
		if req.AppID != "" || req.MchID != "" {
			return req, errors.New("wechatpay/payments: a service provider's order takes sp_appid/sub_appid, not appid/mchid")
		}
	} else {
		if req.MchID == "" {
			req.MchID = c.MerchantID
		}
		if req.AppID == "" {
			req.AppID = c.AppID
		}
		if req.SpAppID != "" || req.SpMchID != "" || req.SubAppID != "" || req.SubMchID != "" {
			return req, errors.New("wechatpay/payments: a direct merchant's order takes appid/mchid; set Client.SubMerchantID to act as a service provider")
		}
	}
	if req.OutTradeNo == "" {
		return req, errors.New("wechatpay/payments: out_trade_no is empty")
	}
	if req.Amount.Total <= 0 {
		return req, fmt.Errorf("wechatpay/payments: order %s: amount.total must be positive fen, not %d", req.OutTradeNo, req.Amount.Total)
	}
	if req.Amount.Currency == "" {
		req.Amount.Currency = "CNY"
	}
	if !req.TimeExpire.IsZero() {
		req.TimeExpire = req.TimeExpire.Truncate(time.Second).In(cst)
	}
	return req, nil
}

func (c *Client) prepay(ctx context.Context, kind string, req PrepayRequest, out any) (PrepayRequest, error) {
	if err := c.check(); err != nil {
		return req, err
	}
	req, err := c.fill(req)
	if err != nil {
		return req, err
	}
	err = c.do(ctx, http.MethodPost, c.transactionsPath()+kind, req, out)
	return req, apicall.Outcome(err, "out_trade_no", req.OutTradeNo)
}

// PrepayJSAPI places a JSAPI or mini-program order (POST
// /v3/pay/transactions/jsapi) and returns its prepay_id, valid for 2
// hours. req.Payer is required. Placing the same out_trade_no again with
// the same parameters returns the current prepay_id. Use JSAPI to get the
// front-end parameters in the same step.
func (c *Client) PrepayJSAPI(ctx context.Context, req PrepayRequest) (prepayID string, err error) {
	var out struct {
		PrepayID string `json:"prepay_id"`
	}
	if _, err := c.prepay(ctx, "jsapi", req, &out); err != nil {
		return "", err
	}
	return nonEmpty("prepay_id", out.PrepayID)
}

// PrepayApp places an App order (POST /v3/pay/transactions/app) and
// returns its prepay_id. Use App to get the front-end parameters in the
// same step.
func (c *Client) PrepayApp(ctx context.Context, req PrepayRequest) (prepayID string, err error) {
	var out struct {
		PrepayID string `json:"prepay_id"`
	}
	if _, err := c.prepay(ctx, "app", req, &out); err != nil {
		return "", err
	}
	return nonEmpty("prepay_id", out.PrepayID)
}

// PrepayH5 places an H5 order (POST /v3/pay/transactions/h5) for a
// mobile browser outside WeChat and returns the h5_url to send the payer
// to, valid for 5 minutes. req.SceneInfo with PayerClientIP and H5Info
// is required.
func (c *Client) PrepayH5(ctx context.Context, req PrepayRequest) (h5URL string, err error) {
	var out struct {
		H5URL string `json:"h5_url"`
	}
	if _, err := c.prepay(ctx, "h5", req, &out); err != nil {
		return "", err
	}
	return nonEmpty("h5_url", out.H5URL)
}

// PrepayNative places a Native order (POST /v3/pay/transactions/native)
// and returns the code_url (weixin://wxpay/bizpayurl?pr=...) to show as a
// QR code, valid for 2 hours.
func (c *Client) PrepayNative(ctx context.Context, req PrepayRequest) (codeURL string, err error) {
	var out struct {
		CodeURL string `json:"code_url"`
	}
	if _, err := c.prepay(ctx, "native", req, &out); err != nil {
		return "", err
	}
	return nonEmpty("code_url", out.CodeURL)
}

// JSAPI places a JSAPI or mini-program order and returns the parameters
// the front end passes to WeixinJSBridge / wx.requestPayment, signed with
// c.Key. Their appId is the order's sub_appid for a service provider
// that set one, else its appid (sp_appid).
func (c *Client) JSAPI(ctx context.Context, req PrepayRequest) (*JSAPIParams, error) {
	if c != nil && c.Key == nil {
		return nil, errors.New("wechatpay/payments: JSAPI needs Client.Key to sign the front-end parameters")
	}
	var out struct {
		PrepayID string `json:"prepay_id"`
	}
	sent, err := c.prepay(ctx, "jsapi", req, &out)
	if err != nil {
		return nil, err
	}
	if _, err := nonEmpty("prepay_id", out.PrepayID); err != nil {
		return nil, err
	}
	return NewJSAPIParams(c.Key, frontAppID(sent), out.PrepayID)
}

// App places an App order and returns the parameters the App passes to
// the WeChat SDK, signed with c.Key. Their partnerid is the merchant ID
// (the service provider's for a sub-merchant).
func (c *Client) App(ctx context.Context, req PrepayRequest) (*AppParams, error) {
	if c != nil && c.Key == nil {
		return nil, errors.New("wechatpay/payments: App needs Client.Key to sign the front-end parameters")
	}
	var out struct {
		PrepayID string `json:"prepay_id"`
	}
	sent, err := c.prepay(ctx, "app", req, &out)
	if err != nil {
		return nil, err
	}
	if _, err := nonEmpty("prepay_id", out.PrepayID); err != nil {
		return nil, err
	}
	partnerID := sent.MchID
	if c.partner() {
		partnerID = sent.SpMchID
	}
	return NewAppParams(c.Key, frontAppID(sent), partnerID, out.PrepayID)
}

// frontAppID is the appid the front end pays with: the one the order was
// placed for.
func frontAppID(r PrepayRequest) string {
	switch {
	case r.SubAppID != "":
		return r.SubAppID
	case r.SpAppID != "":
		return r.SpAppID
	}
	return r.AppID
}

func nonEmpty(field, v string) (string, error) {
	if v == "" {
		return "", fmt.Errorf("wechatpay/payments: the answer has no %s", field)
	}
	return v, nil
}

// transactionsPath is the path the order calls of c start with.
func (c *Client) transactionsPath() string {
	if c.partner() {
		return "/v3/pay/partner/transactions/"
	}
	return "/v3/pay/transactions/"
}

// merchantQuery is the query string naming c's merchant in a query.
func merchantQuery(c *Client) string {
	if c.partner() {
		return query("sp_mchid", c.MerchantID, "sub_mchid", c.SubMerchantID)
	}
	return query("mchid", c.MerchantID)
}

// QueryByTransactionID returns the order with WeChat Pay's transaction_id
// (GET /v3/pay/transactions/id/{transaction_id}). An order that does not
// exist is a *wechatpay.APIError with Code ORDER_NOT_EXIST.
func (c *Client) QueryByTransactionID(ctx context.Context, transactionID string) (*Transaction, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	seg, err := segment("transaction_id", transactionID)
	if err != nil {
		return nil, err
	}
	var tx Transaction
	if err := c.do(ctx, http.MethodGet, c.transactionsPath()+"id/"+seg+merchantQuery(c), nil, &tx); err != nil {
		return nil, err
	}
	return &tx, nil
}

// QueryByOutTradeNo returns the order with the merchant's out_trade_no
// (GET /v3/pay/transactions/out-trade-no/{out_trade_no}). This is the
// query to make after an *wechatpay.OutcomeUnknownError from a prepay or
// close. An order that does not exist is a *wechatpay.APIError with Code
// ORDER_NOT_EXIST.
func (c *Client) QueryByOutTradeNo(ctx context.Context, outTradeNo string) (*Transaction, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	seg, err := segment("out_trade_no", outTradeNo)
	if err != nil {
		return nil, err
	}
	var tx Transaction
	if err := c.do(ctx, http.MethodGet, c.transactionsPath()+"out-trade-no/"+seg+merchantQuery(c), nil, &tx); err != nil {
		return nil, err
	}
	return &tx, nil
}

// Close closes an unpaid order (POST
// /v3/pay/transactions/out-trade-no/{out_trade_no}/close), so that it can
// no longer be paid. A paid order is a *wechatpay.APIError (ORDERPAID).
func (c *Client) Close(ctx context.Context, outTradeNo string) error {
	if err := c.check(); err != nil {
		return err
	}
	seg, err := segment("out_trade_no", outTradeNo)
	if err != nil {
		return err
	}
	var body any = struct {
		MchID string `json:"mchid"`
	}{c.MerchantID}
	if c.partner() {
		body = struct {
			SpMchID  string `json:"sp_mchid"`
			SubMchID string `json:"sub_mchid"`
		}{c.MerchantID, c.SubMerchantID}
	}
	var answer accepted // 204, or 202 USERPAYING: the payer is paying, nothing closed
	if err := c.do(ctx, http.MethodPost, c.transactionsPath()+"out-trade-no/"+seg+"/close", body, &answer); err != nil {
		return apicall.Outcome(err, "out_trade_no", outTradeNo)
	}
	return answer.err(http.StatusAccepted)
}

// Refund asks for a refund (POST /v3/refund/domestic/refunds). The
// answer usually has Status PROCESSING: the result comes as a REFUND.*
// notification, or from QueryRefund. Asking again with the same
// out_refund_no never refunds twice.
func (c *Client) Refund(ctx context.Context, req RefundRequest) (*Refund, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if req.OutRefundNo == "" {
		return nil, errors.New("wechatpay/payments: out_refund_no is empty")
	}
	if (req.TransactionID == "") == (req.OutTradeNo == "") {
		return nil, fmt.Errorf("wechatpay/payments: refund %s: set exactly one of transaction_id and out_trade_no", req.OutRefundNo)
	}
	if req.Amount.Refund <= 0 || req.Amount.Total <= 0 {
		return nil, fmt.Errorf("wechatpay/payments: refund %s: amount.refund (%d) and amount.total (%d) must be positive fen", req.OutRefundNo, req.Amount.Refund, req.Amount.Total)
	}
	if req.Amount.Currency == "" {
		req.Amount.Currency = "CNY"
	}
	if c.partner() && req.SubMchID == "" {
		req.SubMchID = c.SubMerchantID
	}
	var r Refund
	if err := c.do(ctx, http.MethodPost, "/v3/refund/domestic/refunds", req, &r); err != nil {
		return nil, apicall.Outcome(err, "out_refund_no", req.OutRefundNo)
	}
	return &r, nil
}

// QueryRefund returns the refund with the merchant's out_refund_no (GET
// /v3/refund/domestic/refunds/{out_refund_no}). This is the query to make
// after an *wechatpay.OutcomeUnknownError from Refund.
func (c *Client) QueryRefund(ctx context.Context, outRefundNo string) (*Refund, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	seg, err := segment("out_refund_no", outRefundNo)
	if err != nil {
		return nil, err
	}
	q := ""
	if c.partner() {
		q = query("sub_mchid", c.SubMerchantID)
	}
	var r Refund
	if err := c.do(ctx, http.MethodGet, "/v3/refund/domestic/refunds/"+seg+q, nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// TradeBill asks for a day's trade bill (GET /v3/bill/tradebill) and
// returns where to download it; pass the answer to BillFile.Download (or
// wechatpay.DownloadBill), which checks the file against its hash. For a
// service provider the bill is the sub-merchant's.
func (c *Client) TradeBill(ctx context.Context, req TradeBillRequest) (wechatpay.BillFile, error) {
	var b wechatpay.BillFile
	if err := checkDate(req.BillDate); err != nil {
		return b, err
	}
	sub := ""
	if c != nil && c.partner() {
		sub = c.SubMerchantID
	}
	err := c.do(ctx, http.MethodGet, "/v3/bill/tradebill"+query("bill_date", req.BillDate, "sub_mchid", sub, "bill_type", req.BillType), nil, &b)
	return b, err
}

// FundFlowBill asks for a day's fund-flow bill of the merchant's own
// account (GET /v3/bill/fundflowbill) and returns where to download it.
func (c *Client) FundFlowBill(ctx context.Context, req FundFlowBillRequest) (wechatpay.BillFile, error) {
	var b wechatpay.BillFile
	if err := checkDate(req.BillDate); err != nil {
		return b, err
	}
	err := c.do(ctx, http.MethodGet, "/v3/bill/fundflowbill"+query("bill_date", req.BillDate, "account_type", req.AccountType), nil, &b)
	return b, err
}

func checkDate(d string) error {
	if _, err := time.Parse(time.DateOnly, d); err != nil {
		return fmt.Errorf("wechatpay/payments: bill_date %.20q is not a date like 2006-01-02", d)
	}
	return nil
}
