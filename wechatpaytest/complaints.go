package wechatpaytest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The complaints 2.0 part of the simulator: complaints filed against paid
// orders (FileComplaint, ComplaintPath), their lifecycle PENDING →
// PROCESSING → PROCESSED, their negotiation history, the notification
// URL and the COMPLAINT.* callbacks, and complaint images (uploaded
// signed over the meta JSON, downloaded unsigned). Paths, fields and
// states: docs/protocol.md §18. The part keeps its own state under its
// own mutex; it reaches the orders (s.sim) and the delivery (s.notify)
// only through the Server.

// ComplaintPath is the sandbox's control endpoint that files a complaint
// against a paid order, as a payer would in WeChat: POST
// {"out_trade_no":..., "sub_mchid":..., "detail":..., "phone":...} signed
// by the merchant; the answer is the complaint as the detail query shows
// it, its payer_phone encrypted for the merchant. The command "wechatpay
// complaint" uses it. WeChat Pay itself has no such endpoint.
const ComplaintPath = "/sandbox/complaint"

// Paths of the complaint routes.
const (
	complaintsPath      = "/v3/merchant-service/complaints-v2"
	complaintNotifyPath = "/v3/merchant-service/complaint-notifications"
	complaintImagesPath = "/v3/merchant-service/images/"
	complaintUploadPath = "/v3/merchant-service/images/upload"
)

// Complaint states and the action types of their notifications.
const (
	complaintPending    = "PENDING"
	complaintProcessing = "PROCESSING"
	complaintProcessed  = "PROCESSED"
)

// simComplaint is one complaint. Guarded by complaintDesk.mu.
type simComplaint struct {
	ID         string
	Merchant   string // the merchant complained about (owner of the order)
	Caller     string // the merchant whose keys encrypt and sign for it
	Detail     string
	Phone      string // plaintext: encrypted on every answer, as WeChat Pay does
	OpenID     string
	State      string
	Created    time.Time
	Order      order
	Images     []string // media IDs of the payer's images
	RefundAsk  int64
	Log        []complaintLog
	FullRefund bool
}

type complaintLog struct {
	LogID       string   `json:"log_id"`
	Operator    string   `json:"operator"`
	OperateTime string   `json:"operate_time"`
	OperateType string   `json:"operate_type"`
	Details     string   `json:"operate_details"`
	Images      []string `json:"-"`
}

// simImage is an image the part serves at /v3/merchant-service/images/{id}.
type simImage struct {
	owner       string
	data        []byte
	contentType string
}

// complaintDesk is the complaints part: the services it reaches, fixed
// by NewServer, then its state under its lock.
type complaintDesk struct {
	url      string // the server's base URL, for media URLs
	clock    *simClock
	trades   *orders
	delivery *delivery
	fields   *sensitiveFields
	core     *core

	mu         sync.Mutex               // guards the fields below
	complaints map[string]*simComplaint // by complaint_id
	order      []string                 // complaint_ids in filing order
	notifyURL  map[string]string        // merchant → notification URL
	images     map[string]simImage      // media_id → image
}

// routes are the complaint endpoints and the sandbox's control endpoint.
func (d *complaintDesk) routes() []route {
	return []route{
		{"GET " + complaintsPath, signed, d.serveList},
		{"GET " + complaintsPath + "/{id}", signed, d.serveDetail},
		{"GET " + complaintsPath + "/{id}/negotiation-historys", signed, d.serveHistory},
		{"POST " + complaintsPath + "/{id}/response", signed, d.serveStep("response")},
		{"POST " + complaintsPath + "/{id}/complete", signed, d.serveStep("complete")},
		{"POST " + complaintsPath + "/{id}/update-refund-progress", signed, d.serveStep("refund")},
		{"POST " + complaintNotifyPath, signed, d.serveNotifyURL},
		{"GET " + complaintNotifyPath, signed, d.serveNotifyURL},
		{"PUT " + complaintNotifyPath, signed, d.serveNotifyURL},
		{"DELETE " + complaintNotifyPath, signed, d.serveNotifyURL},
		{"POST " + complaintUploadPath, multipartBody, d.serveUpload},
		{"GET " + complaintImagesPath + "{id}", raw, d.serveImage},
		{"POST " + ComplaintPath, signed, d.serveControl},
	}
}

// A ComplaintOption changes a complaint filed by FileComplaint.
type ComplaintOption func(*complaintFiling)

type complaintFiling struct {
	merchant, detail, phone string
	images                  []simImage
	refund                  int64
}

// ComplaintMerchant files the complaint against an order of merchant id
// instead of the default merchant.
func ComplaintMerchant(id string) ComplaintOption {
	return func(f *complaintFiling) { f.merchant = id }
}

// ComplaintDetail sets what the payer wrote.
func ComplaintDetail(text string) ComplaintOption {
	return func(f *complaintFiling) { f.detail = text }
}

// ComplaintPhone sets the payer's phone number, which answers carry
// encrypted for the merchant.
func ComplaintPhone(phone string) ComplaintOption {
	return func(f *complaintFiling) { f.phone = phone }
}

// ComplaintImage attaches an image of the payer, of any size, served with
// the given Content-Type (empty: sniffed from data); the complaint's
// complaint_media_list gives its URL, served unsigned as WeChat Pay does.
func ComplaintImage(data []byte, contentType string) ComplaintOption {
	if contentType == "" {
		contentType = http.DetectContentType(data)
	}
	return func(f *complaintFiling) {
		f.images = append(f.images, simImage{data: bytes.Clone(data), contentType: contentType})
	}
}

// ComplaintRefund makes the payer ask for a refund of fen.
func ComplaintRefund(fen int64) ComplaintOption {
	return func(f *complaintFiling) { f.refund = fen }
}

// FileComplaint files a complaint, as a payer would in WeChat, against
// the paid order outTradeNo of the default merchant (or of
// ComplaintMerchant) and returns its complaint_id. The complaint starts
// PENDING; if the merchant set a complaint notification URL, a
// COMPLAINT.CREATE notification is delivered to it on WeChat Pay's
// schedule. An unknown or unpaid order is an error.
func (s *Server) FileComplaint(outTradeNo string, opts ...ComplaintOption) (string, error) {
	f := complaintFiling{merchant: s.merchants.defaultID}
	for _, o := range opts {
		o(&f)
	}
	id, serr := s.complaints.file(f.merchant, outTradeNo, f)
	if serr != nil {
		return "", errors.New(serr.Error())
	}
	return id, nil
}

func (d *complaintDesk) file(owner, outTradeNo string, f complaintFiling) (string, *simError) {
	o, ok := d.trades.lookup(owner, outTradeNo)
	if !ok {
		return "", errOrderNotExist
	}
	if o.State != stateSuccess && o.State != stateRefund {
		return "", &simError{http.StatusBadRequest, "INVALID_REQUEST", "订单未支付，不能投诉", nil}
	}
	if f.detail == "" {
		f.detail = "商品与描述不符"
	}
	if f.phone == "" {
		f.phone = "13800138000"
	}
	now := d.clock.now()
	d.mu.Lock()
	id := "2002" + now.In(beijing).Format("20060102") + randomDigits(15)
	c := &simComplaint{
		ID: id, Merchant: owner, Caller: o.Merchant, Detail: f.detail, Phone: f.phone,
		OpenID: o.OpenID, State: complaintPending, Created: now, Order: o, RefundAsk: f.refund,
	}
	for _, img := range f.images {
		c.Images = append(c.Images, d.addImageLocked(o.Merchant, img.data, img.contentType))
	}
	c.log(now, "USER", "USER_CREATE_COMPLAINT", f.detail)
	if d.complaints == nil {
		d.complaints = make(map[string]*simComplaint)
	}
	d.complaints[id] = c
	d.order = append(d.order, id)
	url := d.notifyURL[c.Caller]
	snap := *c
	d.mu.Unlock()
	d.notice(url, &snap, "COMPLAINT.CREATE", "CREATE_COMPLAINT")
	return id, nil
}

func (c *simComplaint) log(t time.Time, operator, kind, details string, images ...string) {
	c.Log = append(c.Log, complaintLog{
		LogID: c.ID + "-" + strconv.Itoa(len(c.Log)+1), Operator: operator,
		OperateTime: t.Format(time.RFC3339), OperateType: kind, Details: details, Images: images,
	})
}

// addImageLocked stores an image and returns its media_id; d.mu is held.
func (d *complaintDesk) addImageLocked(owner string, data []byte, ct string) string {
	if d.images == nil {
		d.images = make(map[string]simImage)
	}
	id := randomText(40)
	d.images[id] = simImage{owner: owner, data: data, contentType: ct}
	return id
}

// notice delivers a complaint notification to url, if set.
func (d *complaintDesk) notice(url string, c *simComplaint, event, action string) {
	if url == "" {
		return
	}
	d.delivery.send(notice{
		eventType: event, merchant: c.Caller, outTradeNo: c.Order.OutTradeNo, url: url,
		resource: map[string]any{"complaint_id": c.ID, "action_type": action},
	})
}

// view is a complaint as the detail query answers it; payer_phone is
// encrypted for the merchant that asks.
func (d *complaintDesk) view(c *simComplaint, caller string) (map[string]any, error) {
	phone, err := d.fields.encrypt(caller, c.Phone)
	if err != nil {
		return nil, err
	}
	media := []map[string]any{}
	if len(c.Images) > 0 {
		media = append(media, map[string]any{"media_type": "USER_COMPLAINT_IMAGE", "media_url": d.imageURLs(c.Images)})
	}
	problem := "OTHERS"
	if c.RefundAsk > 0 {
		problem = "REFUND"
	}
	return map[string]any{
		"complaint_id":            c.ID,
		"complaint_time":          c.Created.In(beijing).Format(time.RFC3339),
		"complaint_detail":        c.Detail,
		"complaint_state":         c.State,
		"complainted_mchid":       c.Merchant,
		"payer_phone":             phone,
		"payer_openid":            c.OpenID,
		"complaint_media_list":    media,
		"complaint_order_info":    []map[string]any{{"transaction_id": c.Order.TransactionID, "out_trade_no": c.Order.OutTradeNo, "amount": c.Order.Total}},
		"complaint_full_refunded": c.FullRefund,
		"incoming_user_response":  false,
		"user_complaint_times":    1,
		"problem_description":     c.Detail,
		"problem_type":            problem,
		"apply_refund_amount":     c.RefundAsk,
	}, nil
}

func (d *complaintDesk) imageURLs(ids []string) []string {
	urls := make([]string, len(ids))
	for i, id := range ids {
		urls[i] = d.url + complaintImagesPath + id
	}
	return urls
}

// serveImage writes an image as WeChat Pay does: no signature headers,
// the bytes as they are.
func (d *complaintDesk) serveImage(w http.ResponseWriter, r *http.Request) {
	m := d.core.merchantOf(r)
	d.mu.Lock()
	img, ok := d.images[r.PathValue("id")]
	d.mu.Unlock()
	if !ok || img.owner != m.info.ID {
		d.core.writeError(w, r, m, http.StatusNotFound, "RESOURCE_NOT_EXISTS", "图片不存在", nil)
		return
	}
	w.Header().Set("Content-Type", img.contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(img.data)))
	w.Write(img.data)
}

// complaintOfLocked returns the complaint of the request's {id} if the
// caller may see it; d.mu is held.
func (d *complaintDesk) complaintOfLocked(r *http.Request) (*simComplaint, *simError) {
	c := d.complaints[r.PathValue("id")]
	if c == nil || c.Caller != MerchantIDFrom(r.Context()) {
		return nil, &simError{http.StatusNotFound, "RESOURCE_NOT_EXISTS", "投诉单不存在", nil}
	}
	return c, nil
}

func (d *complaintDesk) serveDetail(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	c, serr := d.complaintOfLocked(r)
	var snap simComplaint
	if c != nil {
		snap = *c
	}
	d.mu.Unlock()
	if serr != nil {
		writeSimError(w, serr)
		return
	}
	v, err := d.view(&snap, MerchantIDFrom(r.Context()))
	if err != nil {
		writeSimError(w, errSystem)
		return
	}
	writeJSON(w, v)
}

// pageArgs reads limit and offset, limit within [1, max].
func pageArgs(r *http.Request, max int) (limit, offset int, serr *simError) {
	limit, offset = 10, 0
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > max {
			return 0, 0, paramError("limit", fmt.Sprintf("limit应在1到%d之间", max), v)
		}
		limit = n
	}
	if v := r.URL.Query().Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, 0, paramError("offset", "offset应为非负整数", v)
		}
		offset = n
	}
	return limit, offset, nil
}

func (d *complaintDesk) serveList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	begin, err1 := time.ParseInLocation(time.DateOnly, q.Get("begin_date"), beijing)
	end, err2 := time.ParseInLocation(time.DateOnly, q.Get("end_date"), beijing)
	if err1 != nil || err2 != nil {
		writeSimError(w, paramError("begin_date", "begin_date和end_date必填，格式为yyyy-MM-dd", nil))
		return
	}
	if end.Before(begin) || end.Sub(begin) > 30*24*time.Hour {
		writeSimError(w, paramError("end_date", "查询日期跨度不超过30天", nil))
		return
	}
	limit, offset, serr := pageArgs(r, 50)
	if serr != nil {
		writeSimError(w, serr)
		return
	}
	caller := MerchantIDFrom(r.Context())
	sub := q.Get("complainted_mchid")
	d.mu.Lock()
	var match []simComplaint
	for _, id := range d.order {
		c := d.complaints[id]
		day := c.Created.In(beijing)
		if c.Caller != caller || (sub != "" && c.Merchant != sub) || day.Before(begin) || !day.Before(end.AddDate(0, 0, 1)) {
			continue
		}
		match = append(match, *c)
	}
	d.mu.Unlock()
	data := []map[string]any{}
	for i := offset; i < len(match) && i < offset+limit; i++ {
		v, err := d.view(&match[i], caller)
		if err != nil {
			writeSimError(w, errSystem)
			return
		}
		data = append(data, v)
	}
	answer := map[string]any{"data": data, "limit": limit, "offset": offset}
	if offset == 0 {
		answer["total_count"] = len(match)
	}
	writeJSON(w, answer)
}

func (d *complaintDesk) serveHistory(w http.ResponseWriter, r *http.Request) {
	limit, offset, serr := pageArgs(r, 300)
	if serr != nil {
		writeSimError(w, serr)
		return
	}
	d.mu.Lock()
	c, serr := d.complaintOfLocked(r)
	var logs []complaintLog
	if c != nil {
		logs = slices.Clone(c.Log)
	}
	d.mu.Unlock()
	if serr != nil {
		writeSimError(w, serr)
		return
	}
	data := []map[string]any{}
	for i := offset; i < len(logs) && i < offset+limit; i++ {
		l := logs[i]
		entry := map[string]any{"log_id": l.LogID, "operator": l.Operator, "operate_time": l.OperateTime,
			"operate_type": l.OperateType, "operate_details": l.Details}
		if len(l.Images) > 0 {
			entry["complaint_media_list"] = []map[string]any{{"media_type": "OPERATION_IMAGE", "media_url": d.imageURLs(l.Images)}}
		}
		data = append(data, entry)
	}
	answer := map[string]any{"data": data, "limit": limit, "offset": offset}
	if offset == 0 {
		answer["total_count"] = len(logs)
	}
	writeJSON(w, answer)
}

// stepRequest is the body of the merchant's steps.
type stepRequest struct {
	ComplaintedMchID string   `json:"complainted_mchid"`
	ResponseContent  string   `json:"response_content"`
	ResponseImages   []string `json:"response_images"`
	Action           string   `json:"action"`
	RejectReason     string   `json:"reject_reason"`
	RejectMediaList  []string `json:"reject_media_list"`
	LaunchRefundDay  *int     `json:"launch_refund_day"`
}

// serveStep serves the merchant's steps: response, complete and refund
// progress. Each answers 204 and moves the state: a first response
// PENDING → PROCESSING; complete → PROCESSED; a rejected refund →
// PROCESSED, an approved one → PROCESSING (the refund itself completes it
// at WeChat Pay; the sandbox leaves it PROCESSING).
func (d *complaintDesk) serveStep(step string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req stepRequest
		if serr := decodeObject(bodyOf(r), &req); serr != nil {
			writeSimError(w, serr)
			return
		}
		d.mu.Lock()
		c, serr := d.complaintOfLocked(r)
		var action string
		if serr == nil {
			action, serr = d.stepLocked(c, step, req)
		}
		var url string
		var snap simComplaint
		if serr == nil {
			url, snap = d.notifyURL[c.Caller], *c
		}
		d.mu.Unlock()
		if serr != nil {
			writeSimError(w, serr)
			return
		}
		d.notice(url, &snap, "COMPLAINT.STATE_CHANGE", action)
		w.WriteHeader(http.StatusNoContent)
	}
}

// stepLocked checks and applies one merchant step and returns the action
// type of its notification; d.mu is held.
func (d *complaintDesk) stepLocked(c *simComplaint, step string, req stepRequest) (string, *simError) {
	if req.ComplaintedMchID != "" && req.ComplaintedMchID != c.Merchant {
		return "", paramError("/complainted_mchid", "被诉商户号与投诉单不一致", req.ComplaintedMchID)
	}
	if c.State == complaintProcessed {
		return "", &simError{http.StatusBadRequest, "INVALID_REQUEST", "投诉单已处理完成", nil}
	}
	now := d.clock.now()
	checkImages := func(field string, ids []string) *simError {
		for _, id := range ids {
			if img, ok := d.images[id]; !ok || img.owner != c.Caller {
				return paramError(field, "图片media_id不存在", id)
			}
		}
		return nil
	}
	switch step {
	case "response":
		if req.ComplaintedMchID == "" || req.ResponseContent == "" {
			return "", paramError("/response_content", "缺少必填参数complainted_mchid或response_content", nil)
		}
		if serr := checkImages("/response_images", req.ResponseImages); serr != nil {
			return "", serr
		}
		c.log(now, "MERCHANT", "MERCHANT_RESPONSE", req.ResponseContent, req.ResponseImages...)
		c.State = complaintProcessing
		return "MERCHANT_RESPONSE", nil
	case "complete":
		if req.ComplaintedMchID == "" {
			return "", paramError("/complainted_mchid", "缺少必填参数complainted_mchid", nil)
		}
		c.log(now, "MERCHANT", "MERCHANT_CONFIRM_COMPLETE", "")
		c.State = complaintProcessed
		return "MERCHANT_CONFIRM_COMPLETE", nil
	}
	switch req.Action {
	case "APPROVE":
		c.log(now, "MERCHANT", "MERCHANT_APPROVE_REFUND", "")
		c.State = complaintProcessing
		return "MERCHANT_APPROVE_REFUND", nil
	case "REJECT":
		if len(req.RejectMediaList) > 4 {
			return "", paramError("/reject_media_list", "最多上传4张图片", len(req.RejectMediaList))
		}
		if serr := checkImages("/reject_media_list", req.RejectMediaList); serr != nil {
			return "", serr
		}
		c.log(now, "MERCHANT", "MERCHANT_REJECT_REFUND", req.RejectReason, req.RejectMediaList...)
		c.State = complaintProcessed
		return "MERCHANT_REJECT_REFUND", nil
	}
	return "", paramError("/action", "action应为APPROVE或REJECT", req.Action)
}

func (d *complaintDesk) serveNotifyURL(w http.ResponseWriter, r *http.Request) {
	caller := MerchantIDFrom(r.Context())
	switch r.Method {
	case http.MethodPost, http.MethodPut:
		var req struct {
			URL string `json:"url"`
		}
		if serr := decodeObject(bodyOf(r), &req); serr != nil {
			writeSimError(w, serr)
			return
		}
		if !strings.HasPrefix(req.URL, "https://") && !strings.HasPrefix(req.URL, "http://") {
			writeSimError(w, paramError("/url", "url应为合法的通知地址", req.URL))
			return
		}
		d.mu.Lock()
		_, exists := d.notifyURL[caller]
		var serr *simError
		switch {
		case r.Method == http.MethodPost && exists:
			serr = &simError{http.StatusBadRequest, "PARAM_ERROR", "通知地址已存在，请使用更新接口", nil}
		case r.Method == http.MethodPut && !exists:
			serr = &simError{http.StatusNotFound, "RESOURCE_NOT_EXISTS", "通知地址不存在", nil}
		default:
			if d.notifyURL == nil {
				d.notifyURL = make(map[string]string)
			}
			d.notifyURL[caller] = req.URL
		}
		d.mu.Unlock()
		if serr != nil {
			writeSimError(w, serr)
			return
		}
		writeJSON(w, map[string]string{"mchid": caller, "url": req.URL})
	case http.MethodGet:
		d.mu.Lock()
		u, ok := d.notifyURL[caller]
		d.mu.Unlock()
		if !ok {
			writeSimError(w, &simError{http.StatusNotFound, "RESOURCE_NOT_EXISTS", "通知地址不存在", nil})
			return
		}
		writeJSON(w, map[string]string{"mchid": caller, "url": u})
	case http.MethodDelete:
		d.mu.Lock()
		delete(d.notifyURL, caller)
		d.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}
}

// serveUpload takes an image (the signature over its meta JSON was
// checked already): the meta's sha256 must match the file, the name end
// in .jpg, .bmp or .png, the file be at most 2 MB.
func (d *complaintDesk) serveUpload(w http.ResponseWriter, r *http.Request) {
	u, err := parseUpload(r, bodyOf(r))
	if err != nil {
		WriteError(w, http.StatusBadRequest, "PARAM_ERROR", err.Error())
		return
	}
	var meta struct {
		Filename string `json:"filename"`
		SHA256   string `json:"sha256"`
	}
	if err := json.Unmarshal(u.meta, &meta); err != nil || meta.Filename == "" || meta.SHA256 == "" {
		WriteError(w, http.StatusBadRequest, "PARAM_ERROR", "meta应为包含filename和sha256的JSON")
		return
	}
	if meta.SHA256 != sha256Hex(u.file) {
		WriteError(w, http.StatusBadRequest, "PARAM_ERROR", "文件的sha256与meta中的sha256不一致")
		return
	}
	if !slices.Contains(imageExts, strings.ToLower(path.Ext(meta.Filename))) {
		WriteError(w, http.StatusBadRequest, "PARAM_ERROR", "图片只支持JPG、BMP、PNG格式")
		return
	}
	if len(u.file) > maxImage {
		WriteError(w, http.StatusBadRequest, "PARAM_ERROR", "文件大小不能超过2M")
		return
	}
	d.mu.Lock()
	id := d.addImageLocked(MerchantIDFrom(r.Context()), u.file, http.DetectContentType(u.file))
	d.mu.Unlock()
	writeJSON(w, map[string]string{"media_id": id})
}

// serveControl serves ComplaintPath.
func (d *complaintDesk) serveControl(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OutTradeNo string `json:"out_trade_no"`
		SubMchID   string `json:"sub_mchid"`
		Detail     string `json:"detail"`
		Phone      string `json:"phone"`
		Refund     int64  `json:"refund"`
	}
	if serr := decodeObject(bodyOf(r), &req); serr != nil {
		writeSimError(w, serr)
		return
	}
	if req.OutTradeNo == "" {
		writeSimError(w, paramError("/out_trade_no", "缺少必填参数out_trade_no", nil))
		return
	}
	caller := MerchantIDFrom(r.Context())
	owner := caller
	if req.SubMchID != "" {
		owner = req.SubMchID
	}
	id, serr := d.file(owner, req.OutTradeNo, complaintFiling{detail: req.Detail, phone: req.Phone, refund: req.Refund})
	if serr != nil {
		writeSimError(w, serr)
		return
	}
	d.mu.Lock()
	snap := *d.complaints[id]
	d.mu.Unlock()
	v, err := d.view(&snap, caller)
	if err != nil {
		writeSimError(w, errSystem)
		return
	}
	writeJSON(w, v)
}
