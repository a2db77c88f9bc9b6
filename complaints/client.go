// Package complaints is a typed client for WeChat Pay's consumer
// complaints 2.0 (消费者投诉2.0): list and read complaints, their
// negotiation history, answer the payer, settle refund requests, mark a
// complaint done, upload and download complaint images, manage the
// notification URL, and the payload of complaint notifications.
//
// A Client works over any *http.Client whose Transport is a
// *wechatpay.Transport, which signs every request and verifies every
// answer. Two things in this product need care, and the client takes it:
//
//   - The payer's phone number (payer_phone) arrives encrypted for the
//     merchant. It stays encrypted unless the caller asks for it
//     (GetWithPhone, ListRequest.WithPhone); a Complaint never prints it.
//   - Complaint images come unsigned. DownloadImage is the only way this
//     package reads an unverified answer: it marks its own request with
//     wechatpay.WithoutResponseVerification, accepts only WeChat Pay's
//     image path, bounds the size, and hands back the bytes whatever
//     Content-Type the answer claims.
//
// Notifications: register handlers for EventCreate and EventStateChange
// with middleware.On[complaints.Notice]; the notice names the complaint,
// fetch it with Get. WeChat Pay may send a notice twice: handle it
// idempotently.
//
// Facts and sources: docs/protocol.md §18.
package complaints

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/apicall"
	"github.com/wxpaykit/wechatpay/upload"
)

const pkg = "complaints"

// DefaultMaxImageSize bounds a downloaded image when Client.MaxImageSize
// is zero. WeChat Pay takes uploads of at most 2 MB; payers' images are
// not documented, hence the margin.
const DefaultMaxImageSize = 5 << 20

// maxUpload is WeChat Pay's limit on an uploaded image (2 MB).
const maxUpload = 2 << 20

// ImagesPath is the path prefix of complaint images; DownloadImage
// fetches nothing else.
const ImagesPath = "/v3/merchant-service/images/"

// ErrImageTooLarge is returned (wrapped) by DownloadImage for an image
// larger than the Client's MaxImageSize, and by UploadImage for one
// larger than WeChat Pay takes.
var ErrImageTooLarge = errors.New("wechatpay/complaints: image too large")

// A Client makes the complaint calls of one merchant (or service
// provider). It holds no state of its own and is safe for concurrent use;
// do not change its fields while calls are running.
type Client struct {
	// HTTP sends the calls. Required; its Transport must be a
	// *wechatpay.Transport (it signs and verifies).
	HTTP *http.Client
	// BaseURL is where WeChat Pay is. Empty means the BaseURL of the
	// *wechatpay.Transport HTTP sends through (or
	// wechatpay.DefaultBaseURL).
	BaseURL string
	// MaxImageSize bounds an image DownloadImage accepts. Zero means
	// DefaultMaxImageSize.
	MaxImageSize int64
}

func (c *Client) check() error {
	if c == nil || c.HTTP == nil {
		return errors.New("wechatpay/complaints: Client needs an HTTP client")
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, p string, in, out any) error {
	if err := c.check(); err != nil {
		return err
	}
	return apicall.Do(ctx, pkg, c.HTTP, method, apicall.BaseURL(c.HTTP, c.BaseURL)+p, in, out)
}

func complaintPath(id, suffix string) (string, error) {
	seg, err := apicall.Segment(pkg, "complaint_id", id)
	if err != nil {
		return "", err
	}
	return "/v3/merchant-service/complaints-v2/" + seg + suffix, nil
}

func itoa(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// List returns a page of complaints filed between req.BeginDate and
// req.EndDate (GET /v3/merchant-service/complaints-v2).
func (c *Client) List(ctx context.Context, req ListRequest) (*Page, error) {
	if req.BeginDate == "" || req.EndDate == "" {
		return nil, errors.New("wechatpay/complaints: List needs BeginDate and EndDate")
	}
	if req.Limit < 0 || req.Limit > 50 || req.Offset < 0 {
		return nil, fmt.Errorf("wechatpay/complaints: List: limit %d (1 to 50) or offset %d out of range", req.Limit, req.Offset)
	}
	q := apicall.Query("limit", itoa(req.Limit), "offset", itoa(req.Offset), "begin_date", req.BeginDate,
		"end_date", req.EndDate, "complainted_mchid", req.ComplaintedMchID)
	if !req.WithPhone {
		var p Page
		if err := c.do(ctx, http.MethodGet, "/v3/merchant-service/complaints-v2"+q, nil, &p); err != nil {
			return nil, err
		}
		return &p, nil
	}
	var wp struct {
		Data       []complaintWithPhone `json:"data"`
		Limit      int                  `json:"limit"`
		Offset     int                  `json:"offset"`
		TotalCount int                  `json:"total_count"`
	}
	if err := c.do(ctx, http.MethodGet, "/v3/merchant-service/complaints-v2"+q, nil, &wp); err != nil {
		return nil, err
	}
	p := &Page{Data: make([]Complaint, len(wp.Data)), Limit: wp.Limit, Offset: wp.Offset, TotalCount: wp.TotalCount}
	for i, x := range wp.Data {
		p.Data[i] = x.complaint()
	}
	return p, nil
}

// Get returns complaint id (GET /v3/merchant-service/complaints-v2/{id}),
// its PayerPhone still encrypted.
func (c *Client) Get(ctx context.Context, id string) (*Complaint, error) {
	p, err := complaintPath(id, "")
	if err != nil {
		return nil, err
	}
	var out Complaint
	if err := c.do(ctx, http.MethodGet, p, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetWithPhone is Get with PayerPhone decrypted by the call path with the
// merchant key (the Signer key of the HTTP client's *wechatpay.Transport).
// A key that can only sign gets an error saying so.
func (c *Client) GetWithPhone(ctx context.Context, id string) (*Complaint, error) {
	p, err := complaintPath(id, "")
	if err != nil {
		return nil, err
	}
	var out complaintWithPhone
	if err := c.do(ctx, http.MethodGet, p, nil, &out); err != nil {
		return nil, err
	}
	x := out.complaint()
	return &x, nil
}

// complaintWithPhone is a Complaint whose payer_phone the call path
// decrypts (the field shadows the embedded one when decoding).
type complaintWithPhone struct {
	Complaint
	PayerPhone string `json:"payer_phone,omitempty" wechatpay:"decrypt"`
}

func (x complaintWithPhone) complaint() Complaint {
	c := x.Complaint
	c.PayerPhone = x.PayerPhone
	return c
}

// History returns a page of the negotiation history of complaint id (GET
// …/{id}/negotiation-historys); limit is 1 to 300, zero leaves it to
// WeChat Pay.
func (c *Client) History(ctx context.Context, id string, limit, offset int) (*History, error) {
	if limit < 0 || limit > 300 || offset < 0 {
		return nil, fmt.Errorf("wechatpay/complaints: History: limit %d (1 to 300) or offset %d out of range", limit, offset)
	}
	p, err := complaintPath(id, "/negotiation-historys")
	if err != nil {
		return nil, err
	}
	var out History
	if err := c.do(ctx, http.MethodGet, p+apicall.Query("limit", itoa(limit), "offset", itoa(offset)), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Respond sends the merchant's answer to the payer (POST …/{id}/response).
// The first answer moves a PENDING complaint to PROCESSING. An error that
// is a *wechatpay.OutcomeUnknownError means the answer may have been
// posted: read the complaint's history before sending it again.
func (c *Client) Respond(ctx context.Context, id string, r Response) error {
	if r.ComplaintedMchID == "" || r.ResponseContent == "" {
		return errors.New("wechatpay/complaints: Respond needs ComplaintedMchID and ResponseContent")
	}
	p, err := complaintPath(id, "/response")
	if err != nil {
		return err
	}
	return apicall.Outcome(c.do(ctx, http.MethodPost, p, r, nil), "complaint_id", id)
}

// Complete tells WeChat Pay the complaint is dealt with (POST
// …/{id}/complete); it becomes PROCESSED and the payer is asked to rate
// the handling. Call it only once the payer's problem is solved.
func (c *Client) Complete(ctx context.Context, id, complaintedMchID string) error {
	if complaintedMchID == "" {
		return errors.New("wechatpay/complaints: Complete needs the complainted_mchid")
	}
	p, err := complaintPath(id, "/complete")
	if err != nil {
		return err
	}
	return apicall.Outcome(c.do(ctx, http.MethodPost, p, map[string]string{"complainted_mchid": complaintedMchID}, nil), "complaint_id", id)
}

// UpdateRefundProgress approves or rejects the refund the payer asked for
// (POST …/{id}/update-refund-progress). Approving does not refund: make
// the refund with the refund API; the complaint becomes PROCESSED when it
// arrives. Rejecting makes it PROCESSED at once.
func (c *Client) UpdateRefundProgress(ctx context.Context, id string, r RefundProgress) error {
	switch r.Action {
	case RefundApprove, RefundReject:
	default:
		return fmt.Errorf("wechatpay/complaints: UpdateRefundProgress: action %q is neither APPROVE nor REJECT", r.Action)
	}
	if len(r.RejectMediaList) > 4 {
		return fmt.Errorf("wechatpay/complaints: UpdateRefundProgress: %d reject images, at most 4", len(r.RejectMediaList))
	}
	p, err := complaintPath(id, "/update-refund-progress")
	if err != nil {
		return err
	}
	return apicall.Outcome(c.do(ctx, http.MethodPost, p, r, nil), "complaint_id", id)
}

const notificationsPath = "/v3/merchant-service/complaint-notifications"

func checkNotifyURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" || (p.Scheme != "https" && p.Scheme != "http") {
		return fmt.Errorf("wechatpay/complaints: notification URL %q is not an absolute http(s) URL (WeChat Pay takes https only)", u)
	}
	return nil
}

// CreateNotificationURL sets the address WeChat Pay posts complaint
// notifications to (POST /v3/merchant-service/complaint-notifications).
// WeChat Pay takes https URLs only.
func (c *Client) CreateNotificationURL(ctx context.Context, notifyURL string) (*NotificationURL, error) {
	if err := checkNotifyURL(notifyURL); err != nil {
		return nil, err
	}
	var out NotificationURL
	if err := c.do(ctx, http.MethodPost, notificationsPath, map[string]string{"url": notifyURL}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// NotificationURL returns the address set (GET …/complaint-notifications).
func (c *Client) NotificationURL(ctx context.Context) (*NotificationURL, error) {
	var out NotificationURL
	if err := c.do(ctx, http.MethodGet, notificationsPath, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateNotificationURL changes the address (PUT …/complaint-notifications).
func (c *Client) UpdateNotificationURL(ctx context.Context, notifyURL string) (*NotificationURL, error) {
	if err := checkNotifyURL(notifyURL); err != nil {
		return nil, err
	}
	var out NotificationURL
	if err := c.do(ctx, http.MethodPut, notificationsPath, map[string]string{"url": notifyURL}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteNotificationURL removes the address; WeChat Pay stops sending
// complaint notifications (DELETE …/complaint-notifications).
func (c *Client) DeleteNotificationURL(ctx context.Context) error {
	return c.do(ctx, http.MethodDelete, notificationsPath, nil, nil)
}

var imageExts = []string{".jpg", ".jpeg", ".png", ".bmp"}

// UploadImage uploads an image for a response or a refund rejection
// (POST /v3/merchant-service/images/upload) and returns its media_id.
// WeChat Pay takes JPG, BMP and PNG files of at most 2 MB; the meta part
// is {filename, sha256 of content} and the request is signed over exactly
// that JSON.
func (c *Client) UploadImage(ctx context.Context, filename string, content []byte) (mediaID string, err error) {
	if err := c.check(); err != nil {
		return "", err
	}
	if !slices.Contains(imageExts, strings.ToLower(path.Ext(filename))) {
		return "", fmt.Errorf("wechatpay/complaints: image %q: WeChat Pay takes .jpg, .bmp and .png files only", filename)
	}
	if len(content) > maxUpload {
		return "", fmt.Errorf("%w: %q has %d bytes, WeChat Pay takes at most %d", ErrImageTooLarge, filename, len(content), maxUpload)
	}
	meta, err := json.Marshal(struct {
		Filename string `json:"filename"`
		SHA256   string `json:"sha256"`
	}{filename, upload.SHA256(content)})
	if err != nil {
		return "", err
	}
	req, err := upload.NewRequest(ctx, apicall.BaseURL(c.HTTP, c.BaseURL)+"/v3/merchant-service/images/upload", meta, filename, content)
	if err != nil {
		return "", err
	}
	var out struct {
		MediaID string `json:"media_id"`
	}
	if err := send(c.HTTP, req, &out); err != nil {
		return "", err
	}
	if out.MediaID == "" {
		return "", errors.New("wechatpay/complaints: image upload succeeded but the answer has no media_id")
	}
	return out.MediaID, nil
}

// send sends a prepared request and decodes its verified JSON answer.
func send(client *http.Client, req *http.Request, out any) error {
	resp, err := client.Do(req)
	if err != nil {
		return wechatpay.ClassifyError(req, err)
	}
	defer resp.Body.Close()
	if err := wechatpay.CheckResponse(resp); err != nil {
		return err
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
		return fmt.Errorf("wechatpay/complaints: %s %s succeeded but its answer does not decode: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

// DownloadImage downloads a complaint image from mediaURL, a URL of a
// Complaint's or NegotiationLog's media list (GET
// /v3/merchant-service/images/{media_id}), and returns its bytes.
//
// WeChat Pay does not sign these answers and gives no hash to check them
// against: the bytes are what the server sent, authenticated only by the
// TLS connection to WeChat Pay's host. DownloadImage therefore fetches
// only WeChat Pay's image path (the Transport signs only for WeChat Pay's
// hosts), reads at most MaxImageSize bytes (more is an error wrapping
// ErrImageTooLarge, and no bytes are returned), and never lets the
// answer's Content-Type change what it does: the bytes are returned as
// they are. A non-2xx answer is the *wechatpay.APIError of
// wechatpay.CheckResponse.
func (c *Client) DownloadImage(ctx context.Context, mediaURL string) ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	u, err := url.Parse(mediaURL)
	if err != nil || !u.IsAbs() {
		return nil, fmt.Errorf("wechatpay/complaints: media URL %q is not an absolute URL", truncate(mediaURL, 200))
	}
	id, ok := strings.CutPrefix(u.EscapedPath(), ImagesPath)
	if !ok || id == "" || strings.Contains(id, "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("wechatpay/complaints: media URL %q is not a complaint image (%s{media_id})", truncate(mediaURL, 200), ImagesPath)
	}
	limit := c.MaxImageSize
	if limit <= 0 {
		limit = DefaultMaxImageSize
	}
	// The one unverified read of this package, marked as such.
	req, err := http.NewRequestWithContext(wechatpay.WithoutResponseVerification(ctx), http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("wechatpay/complaints: %w", err)
	}
	req.Header.Set("Accept", "*/*")
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := wechatpay.CheckResponse(resp); err != nil {
		return nil, err
	}
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("%w: %s announces %d bytes, the limit is %d", ErrImageTooLarge, u.Path, resp.ContentLength, limit)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("wechatpay/complaints: downloading %s: %w", u.Path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s has more than %d bytes", ErrImageTooLarge, u.Path, limit)
	}
	return b, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
