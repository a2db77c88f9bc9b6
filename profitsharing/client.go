package profitsharing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/wxpaykit/wechatpay/internal/apicall"
)

// A Client makes the profit-sharing calls of one merchant, or of one
// service provider for one sub-merchant (set SubMerchantID), through
// HTTP, whose Transport signs, verifies and encrypts (a
// *wechatpay.Transport, possibly wrapped).
//
// A Client holds no state of its own; it is safe for concurrent use. Do
// not change its fields while calls are running.
type Client struct {
	// HTTP sends the calls. Required; its Transport must be a
	// *wechatpay.Transport, which encrypts receiver names.
	HTTP *http.Client
	// BaseURL is where WeChat Pay is. Empty means the BaseURL of the
	// *wechatpay.Transport HTTP sends through (found through a Failover
	// and any wrapper with an Unwrap() http.RoundTripper method), or
	// wechatpay.DefaultBaseURL without one.
	BaseURL string
	// MerchantID is the merchant's mchid, or the service provider's
	// sp_mchid. Required.
	MerchantID string
	// AppID is sent as appid when a request has none (needed for
	// PERSONAL_OPENID receivers).
	AppID string
	// SubMerchantID, if set, is the sub-merchant (sub_mchid) a service
	// provider shares for.
	SubMerchantID string
	// SubAppID, if set, is sent as sub_appid when a request has none.
	SubAppID string
}

// String describes c.
func (c Client) String() string {
	return fmt.Sprintf("profitsharing.Client{BaseURL: %q, MerchantID: %q, AppID: %q, SubMerchantID: %q}",
		apicall.BaseURL(c.HTTP, c.BaseURL), c.MerchantID, c.AppID, c.SubMerchantID)
}

// LogValue describes c to log/slog.
func (c Client) LogValue() slog.Value {
	return slog.GroupValue(slog.String("mchid", c.MerchantID), slog.String("sub_mchid", c.SubMerchantID))
}

const pkg = "profitsharing"

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	if c == nil || c.HTTP == nil {
		return errors.New("wechatpay/profitsharing: Client needs an HTTP client")
	}
	if c.MerchantID == "" {
		return errors.New("wechatpay/profitsharing: Client needs a MerchantID")
	}
	return apicall.Do(ctx, pkg, c.HTTP, method, apicall.BaseURL(c.HTTP, c.BaseURL)+path, in, out)
}

func (c *Client) sub(v string) string {
	if v != "" {
		return v
	}
	return c.SubMerchantID
}

func orDefault(v, d string) string {
	if v != "" {
		return v
	}
	return d
}

func need(what, v string) error {
	if v == "" {
		return fmt.Errorf("wechatpay/profitsharing: %s is empty", what)
	}
	return nil
}

// AddReceiver adds r to the parties the merchant may share to. Its name
// is encrypted on the wire with the key the Transport chooses, and the
// serial of that key is sent with it. Adding a receiver twice is not an
// error.
func (c *Client) AddReceiver(ctx context.Context, r Receiver) (*AddedReceiver, error) {
	r.SubMchID = c.sub(r.SubMchID)
	r.AppID = orDefault(r.AppID, c.AppID)
	r.SubAppID = orDefault(r.SubAppID, c.SubAppID)
	if err := errors.Join(need("receiver type", r.Type), need("receiver account", r.Account), need("relation_type", r.RelationType)); err != nil {
		return nil, err
	}
	if r.Type == MerchantID && r.Name == "" {
		return nil, fmt.Errorf("wechatpay/profitsharing: receiver %s: a MERCHANT_ID receiver needs the merchant's full name", r.Account)
	}
	var out AddedReceiver
	if err := c.do(ctx, http.MethodPost, "/v3/profitsharing/receivers/add", r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteReceiver removes a receiver of the given type and account.
func (c *Client) DeleteReceiver(ctx context.Context, typ, account string) error {
	if err := errors.Join(need("receiver type", typ), need("receiver account", account)); err != nil {
		return err
	}
	in := struct {
		SubMchID string `json:"sub_mchid,omitempty"`
		AppID    string `json:"appid,omitempty"`
		SubAppID string `json:"sub_appid,omitempty"`
		Type     string `json:"type"`
		Account  string `json:"account"`
	}{c.SubMerchantID, c.AppID, c.SubAppID, typ, account}
	return c.do(ctx, http.MethodPost, "/v3/profitsharing/receivers/delete", in, nil)
}

// CreateOrder shares a paid order among req's receivers. WeChat Pay
// answers at once, usually with State PROCESSING; QueryOrder says how
// each receiver fared. An answer that is not a verified 2xx is a
// *wechatpay.OutcomeUnknownError: query by req.OutOrderNo, and ask again
// only with the same number.
func (c *Client) CreateOrder(ctx context.Context, req OrderRequest) (*Order, error) {
	req.SubMchID = c.sub(req.SubMchID)
	req.AppID = orDefault(req.AppID, c.AppID)
	req.SubAppID = orDefault(req.SubAppID, c.SubAppID)
	if err := errors.Join(need("transaction_id", req.TransactionID), need("out_order_no", req.OutOrderNo)); err != nil {
		return nil, err
	}
	if n := len(req.Receivers); n == 0 || n > 50 {
		return nil, fmt.Errorf("wechatpay/profitsharing: order %s has %d receivers; WeChat Pay takes 1 to 50", req.OutOrderNo, n)
	}
	for i, r := range req.Receivers {
		if r.Amount <= 0 {
			return nil, fmt.Errorf("wechatpay/profitsharing: order %s: receivers[%d].amount must be positive fen, not %d", req.OutOrderNo, i, r.Amount)
		}
		if r.Description == "" {
			return nil, fmt.Errorf("wechatpay/profitsharing: order %s: receivers[%d].description is empty", req.OutOrderNo, i)
		}
	}
	var o Order
	if err := c.do(ctx, http.MethodPost, "/v3/profitsharing/orders", req, &o); err != nil {
		return nil, apicall.Outcome(err, "out_order_no", req.OutOrderNo)
	}
	return &o, nil
}

// QueryOrder returns the profit-sharing order outOrderNo of the paid
// order transactionID (GET /v3/profitsharing/orders/{out_order_no}); it
// also reports the result of an Unfreeze by its out_order_no.
func (c *Client) QueryOrder(ctx context.Context, transactionID, outOrderNo string) (*Order, error) {
	seg, err := apicall.Segment(pkg, "out_order_no", outOrderNo)
	if err != nil {
		return nil, err
	}
	if err := need("transaction_id", transactionID); err != nil {
		return nil, err
	}
	q := apicall.Query("sub_mchid", c.SubMerchantID, "transaction_id", transactionID)
	var o Order
	if err := c.do(ctx, http.MethodGet, "/v3/profitsharing/orders/"+seg+q, nil, &o); err != nil {
		return nil, err
	}
	return &o, nil
}

// Unfreeze releases what is left unshared of a paid order to the
// merchant; the order can then not be shared again. An answer that is not
// a verified 2xx is a *wechatpay.OutcomeUnknownError naming
// req.OutOrderNo.
func (c *Client) Unfreeze(ctx context.Context, req UnfreezeRequest) (*Order, error) {
	req.SubMchID = c.sub(req.SubMchID)
	if err := errors.Join(need("transaction_id", req.TransactionID), need("out_order_no", req.OutOrderNo), need("description", req.Description)); err != nil {
		return nil, err
	}
	var o Order
	if err := c.do(ctx, http.MethodPost, "/v3/profitsharing/orders/unfreeze", req, &o); err != nil {
		return nil, apicall.Outcome(err, "out_order_no", req.OutOrderNo)
	}
	return &o, nil
}

// UnsplitAmount returns what is left to share of the paid order
// transactionID, in fen (GET
// /v3/profitsharing/transactions/{transaction_id}/amounts).
func (c *Client) UnsplitAmount(ctx context.Context, transactionID string) (int64, error) {
	seg, err := apicall.Segment(pkg, "transaction_id", transactionID)
	if err != nil {
		return 0, err
	}
	var out struct {
		TransactionID string `json:"transaction_id"`
		UnsplitAmount int64  `json:"unsplit_amount"`
	}
	if err := c.do(ctx, http.MethodGet, "/v3/profitsharing/transactions/"+seg+"/amounts", nil, &out); err != nil {
		return 0, err
	}
	return out.UnsplitAmount, nil
}

// Return takes shared money back from a merchant receiver, for example
// before refunding the order. An answer that is not a verified 2xx is a
// *wechatpay.OutcomeUnknownError naming req.OutReturnNo: query it with
// QueryReturn, and ask again only with the same number.
func (c *Client) Return(ctx context.Context, req ReturnRequest) (*ReturnOrder, error) {
	req.SubMchID = c.sub(req.SubMchID)
	if (req.OrderID == "") == (req.OutOrderNo == "") {
		return nil, fmt.Errorf("wechatpay/profitsharing: return %s: set exactly one of order_id and out_order_no", req.OutReturnNo)
	}
	if err := errors.Join(need("out_return_no", req.OutReturnNo), need("return_mchid", req.ReturnMchID), need("description", req.Description)); err != nil {
		return nil, err
	}
	if req.Amount <= 0 {
		return nil, fmt.Errorf("wechatpay/profitsharing: return %s: amount must be positive fen, not %d", req.OutReturnNo, req.Amount)
	}
	var r ReturnOrder
	if err := c.do(ctx, http.MethodPost, "/v3/profitsharing/return-orders", req, &r); err != nil {
		return nil, apicall.Outcome(err, "out_return_no", req.OutReturnNo)
	}
	return &r, nil
}

// QueryReturn returns the return outReturnNo of the profit-sharing order
// outOrderNo (GET /v3/profitsharing/return-orders/{out_return_no}).
func (c *Client) QueryReturn(ctx context.Context, outReturnNo, outOrderNo string) (*ReturnOrder, error) {
	seg, err := apicall.Segment(pkg, "out_return_no", outReturnNo)
	if err != nil {
		return nil, err
	}
	if err := need("out_order_no", outOrderNo); err != nil {
		return nil, err
	}
	q := apicall.Query("sub_mchid", c.SubMerchantID, "out_order_no", outOrderNo)
	var r ReturnOrder
	if err := c.do(ctx, http.MethodGet, "/v3/profitsharing/return-orders/"+seg+q, nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}
