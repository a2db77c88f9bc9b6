package wechatpaytest

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
)

// profitSharing is the simulator's profit sharing (分账, docs/protocol.md
// §15): receivers, sharing orders, unfreezes and returns over the paid
// orders whose prepay set settle_info.profit_sharing. Sharing happens at
// once; the create answer says PROCESSING, as WeChat Pay's does, and a
// query says FINISHED.
type profitSharing struct {
	merchants *merchants       // receivers that are merchants of the server
	trades    *orders          // the paid orders shared
	delivery  *delivery        // PROFITSHARING.* notifications
	fields    *sensitiveFields // receiver names

	mu        sync.Mutex             // guards the maps below
	receivers map[string]*psReceiver // owner/type/account
	orders    map[string]*psOrder    // owner/out_order_no
	txs       map[string]*psTx       // owner/transaction_id
	returns   map[string]*psReturn   // owner/out_return_no
	notifyURL map[string]string      // receiver merchant → where its PROFITSHARING.* go
	seq       int64                  // numbers order_id, detail_id, return_id
}

// routes are the profit-sharing routes.
func (p *profitSharing) routes() []route {
	return []route{
		{"POST /v3/profitsharing/receivers/add", failable, p.serveReceiverAdd},
		{"POST /v3/profitsharing/receivers/delete", failable, p.serveReceiverDelete},
		{"POST /v3/profitsharing/orders", failable, p.serveShare},
		{"GET /v3/profitsharing/orders/{no}", failable, p.serveShareQuery},
		{"POST /v3/profitsharing/orders/unfreeze", failable, p.serveUnfreeze},
		{"GET /v3/profitsharing/transactions/{id}/amounts", failable, p.serveUnsplit},
		{"POST /v3/profitsharing/return-orders", failable, p.serveReturn},
		{"GET /v3/profitsharing/return-orders/{no}", failable, p.serveReturnQuery},
	}
}

// maxShareRatio is the sandbox's maximum share of an order, in percent:
// the ratio a merchant sets on WeChat Pay's merchant platform (分账管理比例),
// whose default for a direct merchant is 30%.
const maxShareRatio = 30

type psReceiver struct {
	Type, Account, Name, RelationType, CustomRelation string
}

type psTx struct {
	total    int64 // the order's amount, fen
	shared   int64 // shared so far
	unfrozen bool  // released to the merchant: no more sharing
	returned map[string]int64
}

type psShare struct {
	Type        string `json:"type"`
	Account     string `json:"account"`
	Amount      int64  `json:"amount"`
	Description string `json:"description"`
	Result      string `json:"result"`
	DetailID    string `json:"detail_id"`
	CreateTime  string `json:"create_time"`
	FinishTime  string `json:"finish_time,omitempty"`
}

type psOrder struct {
	fingerprint   string
	subMchID      string
	transactionID string
	outOrderNo    string
	orderID       string
	receivers     []psShare
}

type psReturn struct {
	fingerprint string
	body        map[string]any
}

var (
	outOrderNoRE = regexp.MustCompile(`^[0-9A-Za-z_\-|*@]{1,64}$`)

	errNotShareOrder = &simError{http.StatusBadRequest, "INVALID_REQUEST", "非分账订单不支持分账", nil}
	errNotReady      = &simError{http.StatusBadRequest, "INVALID_REQUEST", "订单处理中，暂时无法分账，请稍后再试", nil}
	errNoRelation    = &simError{http.StatusBadRequest, "INVALID_REQUEST", "分账接收方关系不存在，请检查参数中每个接收方的关系", nil}
	errRatio         = &simError{http.StatusBadRequest, "INVALID_REQUEST", "分账金额超出最大分账比例", nil}
	errNotEnough     = &simError{http.StatusForbidden, "NOT_ENOUGH", "分账金额不足", nil}
	errPSNotFound    = &simError{http.StatusNotFound, "RESOURCE_NOT_EXISTS", "记录不存在", nil}
	errPSSameNo      = &simError{http.StatusBadRequest, "INVALID_REQUEST", "商户单号重复，且请求参数与原请求不一致", nil}
	errPSName        = &simError{http.StatusBadRequest, "INVALID_REQUEST", "分账接收方姓名与实名不一致", nil}
)

var (
	receiverTypes = map[string]bool{"MERCHANT_ID": true, "PERSONAL_OPENID": true, "PERSONAL_SUB_OPENID": true}
	relationTypes = map[string]bool{"SERVICE_PROVIDER": true, "STORE": true, "STAFF": true, "STORE_OWNER": true, "PARTNER": true,
		"HEADQUARTER": true, "BRAND": true, "DISTRIBUTOR": true, "USER": true, "SUPPLIER": true, "CUSTOM": true}
)

// SetProfitSharingNotifyURL sets where merchant id, as a receiver of
// profit sharing, gets its PROFITSHARING.SUCCESS and PROFITSHARING.RETURN
// notifications: WeChat Pay sends them to receivers only, at the URL each
// receiver sets on its merchant platform. The notifications are signed
// and encrypted for that merchant and follow the retry schedule.
func (s *Server) SetProfitSharingNotifyURL(merchantID, url string) {
	s.merchants.get(merchantID) // panics on an unknown merchant, as other setters do
	p := s.profit
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.notifyURL == nil {
		p.notifyURL = make(map[string]string)
	}
	p.notifyURL[merchantID] = url
}

// psOwner is the merchant whose money is shared: the sub-merchant a
// service provider names, or the caller.
func psOwner(r *http.Request, subMchID string) string {
	if subMchID != "" {
		return subMchID
	}
	return MerchantIDFrom(r.Context())
}

// paidOrder finds owner's order with transactionID: its amount, whether
// it is paid, and whether its prepay asked for profit sharing.
func (p *profitSharing) paidOrder(owner, transactionID string) (total int64, paid, sharing, found bool) {
	o, ok := p.trades.lookupTransaction(transactionID)
	if !ok || o.Owner != owner || transactionID == "" {
		return 0, false, false, false
	}
	return o.Total, o.State == stateSuccess || o.State == stateRefund, o.ProfitSharing, true
}

// ownerOf returns the owner of the order with transactionID that caller
// may see: its own, or a sub-merchant's it placed as a service provider.
// The amounts route names no sub_mchid: a transaction_id is unique.
func (p *profitSharing) ownerOf(caller, transactionID string) string {
	if o, ok := p.trades.lookupTransaction(transactionID); ok && (o.Owner == caller || o.Merchant == caller) {
		return o.Owner
	}
	return caller
}

// psTxLocked returns the sharing state of a paid, marked order, or the error to
// answer. p.mu is held.
func (p *profitSharing) psTxLocked(owner, transactionID string) (*psTx, *simError) {
	total, paid, sharing, found := p.paidOrder(owner, transactionID)
	switch {
	case !found:
		return nil, errPSNotFound
	case !paid:
		return nil, errNotReady
	case !sharing:
		return nil, errNotShareOrder
	}
	k := owner + "/" + transactionID
	t := p.txs[k]
	if t == nil {
		if p.txs == nil {
			p.txs = make(map[string]*psTx)
		}
		t = &psTx{total: total, returned: map[string]int64{}}
		p.txs[k] = t
	}
	return t, nil
}

func (p *profitSharing) nextID(prefix string) string {
	p.seq++
	return prefix + time.Now().In(beijing).Format("20060102") + strings.Repeat("0", 8) + itoa(p.seq)
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// serveReceiverAdd serves POST /v3/profitsharing/receivers/add: the name
// is decrypted with the key the request's Wechatpay-Serial names (a name
// sent in clear, or with another key, is 400 PARAM_ERROR), and comes back
// encrypted for the merchant.
func (p *profitSharing) serveReceiverAdd(w http.ResponseWriter, r *http.Request) {
	var req struct {
		SubMchID       string `json:"sub_mchid"`
		AppID          string `json:"appid"`
		Type           string `json:"type"`
		Account        string `json:"account"`
		Name           string `json:"name"`
		RelationType   string `json:"relation_type"`
		CustomRelation string `json:"custom_relation"`
	}
	if e := decodeObject(bodyOf(r), &req); e != nil {
		writeSimError(w, e)
		return
	}
	switch {
	case !receiverTypes[req.Type]:
		writeSimError(w, paramError("/type", "取值不在枚举范围内", req.Type))
		return
	case req.Account == "":
		writeSimError(w, paramError("/account", "不能为空", nil))
		return
	case !relationTypes[req.RelationType]:
		writeSimError(w, paramError("/relation_type", "取值不在枚举范围内", req.RelationType))
		return
	case req.RelationType == "CUSTOM" && req.CustomRelation == "":
		writeSimError(w, paramError("/custom_relation", "relation_type为CUSTOM时必填", nil))
		return
	case req.Type == "MERCHANT_ID" && req.Name == "":
		writeSimError(w, paramError("/name", "分账接收方类型为MERCHANT_ID时必填", nil))
		return
	}
	name := ""
	if req.Name != "" {
		var err error
		if name, err = p.fields.decrypt(r, req.Name); err != nil {
			writeSimError(w, &simError{http.StatusBadRequest, "PARAM_ERROR", msgRequestSerial, nil})
			return
		}
	}
	owner := psOwner(r, req.SubMchID)
	p.mu.Lock()
	if p.receivers == nil {
		p.receivers = make(map[string]*psReceiver)
	}
	p.receivers[owner+"/"+req.Type+"/"+req.Account] = &psReceiver{req.Type, req.Account, name, req.RelationType, req.CustomRelation}
	p.mu.Unlock()

	answer := map[string]any{"type": req.Type, "account": req.Account, "relation_type": req.RelationType}
	if req.SubMchID != "" {
		answer["sub_mchid"] = req.SubMchID
	}
	if req.CustomRelation != "" {
		answer["custom_relation"] = req.CustomRelation
	}
	if name != "" {
		enc, err := p.fields.encrypt(MerchantIDFrom(r.Context()), name)
		if err != nil {
			writeSimError(w, errSystem)
			return
		}
		answer["name"] = enc
	}
	writeJSON(w, answer)
}

// serveReceiverDelete serves POST /v3/profitsharing/receivers/delete.
func (p *profitSharing) serveReceiverDelete(w http.ResponseWriter, r *http.Request) {
	var req struct {
		SubMchID string `json:"sub_mchid"`
		Type     string `json:"type"`
		Account  string `json:"account"`
	}
	if e := decodeObject(bodyOf(r), &req); e != nil {
		writeSimError(w, e)
		return
	}
	if !receiverTypes[req.Type] || req.Account == "" {
		writeSimError(w, paramError("/type", "type或account不合法", req.Type))
		return
	}
	p.mu.Lock()
	delete(p.receivers, psOwner(r, req.SubMchID)+"/"+req.Type+"/"+req.Account)
	p.mu.Unlock()
	answer := map[string]any{"type": req.Type, "account": req.Account}
	if req.SubMchID != "" {
		answer["sub_mchid"] = req.SubMchID
	}
	writeJSON(w, answer)
}

type psOrderRequest struct {
	SubMchID      string `json:"sub_mchid"`
	TransactionID string `json:"transaction_id"`
	OutOrderNo    string `json:"out_order_no"`
	Receivers     []struct {
		Type        string `json:"type"`
		Account     string `json:"account"`
		Name        string `json:"name"`
		Amount      *int64 `json:"amount"`
		Description string `json:"description"`
	} `json:"receivers"`
	UnfreezeUnsplit *bool `json:"unfreeze_unsplit"`
}

// check validates the fields of a sharing request, and decrypts the
// receivers' names in place.
func (p *profitSharing) checkOrderRequest(r *http.Request, req *psOrderRequest) *simError {
	switch {
	case req.TransactionID == "":
		return paramError("/transaction_id", "不能为空", nil)
	case !outOrderNoRE.MatchString(req.OutOrderNo):
		return paramError("/out_order_no", "格式错误", req.OutOrderNo)
	case len(req.Receivers) == 0 || len(req.Receivers) > 50:
		return paramError("/receivers", "分账接收方数量应为1到50个", nil)
	case req.UnfreezeUnsplit == nil:
		return paramError("/unfreeze_unsplit", "不能为空", nil)
	}
	for i := range req.Receivers {
		rc := &req.Receivers[i]
		switch {
		case !receiverTypes[rc.Type] || rc.Account == "":
			return paramError("/receivers", "分账接收方列表格式错误", nil)
		case rc.Amount == nil || *rc.Amount <= 0:
			return paramError("/receivers/amount", "分账金额必须为正整数", nil)
		case rc.Description == "":
			return paramError("/receivers/description", "不能为空", nil)
		}
		if rc.Name != "" {
			name, err := p.fields.decrypt(r, rc.Name)
			if err != nil {
				return &simError{http.StatusBadRequest, "PARAM_ERROR", msgRequestSerial, nil}
			}
			rc.Name = name
		}
	}
	return nil
}

// serveShare serves POST /v3/profitsharing/orders.
func (p *profitSharing) serveShare(w http.ResponseWriter, r *http.Request) {
	body := bodyOf(r)
	var req psOrderRequest
	if e := decodeObject(body, &req); e != nil {
		writeSimError(w, e)
		return
	}
	if e := p.checkOrderRequest(r, &req); e != nil {
		writeSimError(w, e)
		return
	}
	owner := psOwner(r, req.SubMchID)
	fp := fingerprint("profitsharing", mustJSON(req))
	p.mu.Lock()
	defer p.mu.Unlock()
	k := owner + "/" + req.OutOrderNo
	if p.answeredBefore(w, k, fp) {
		return
	}
	t, e := p.psTxLocked(owner, req.TransactionID)
	if e == nil {
		e = p.checkShare(owner, t, &req)
	}
	if e != nil {
		writeSimError(w, e)
		return
	}
	now := time.Now().In(beijing).Format(time.RFC3339)
	o := &psOrder{fingerprint: fp, subMchID: req.SubMchID, transactionID: req.TransactionID, outOrderNo: req.OutOrderNo, orderID: p.nextID("3008")}
	var sum int64
	for _, rc := range req.Receivers {
		sum += *rc.Amount
		o.receivers = append(o.receivers, psShare{Type: rc.Type, Account: rc.Account, Amount: *rc.Amount, Description: rc.Description,
			Result: "SUCCESS", DetailID: p.nextID("3600"), CreateTime: now, FinishTime: now})
	}
	t.shared += sum
	t.unfrozen = *req.UnfreezeUnsplit
	if p.orders == nil {
		p.orders = make(map[string]*psOrder)
	}
	p.orders[k] = o
	writeJSON(w, o.json(true))
	for _, sh := range o.receivers {
		p.notifyReceiverLocked("PROFITSHARING.SUCCESS", r, o, sh.Type, sh.Account, sh.Amount, sh.Description)
	}
}

// answeredBefore answers a request whose out_order_no k already names an
// order, as WeChat Pay does: the same parameters (fingerprint fp) get the
// order again, others are refused. p.mu is held.
func (p *profitSharing) answeredBefore(w http.ResponseWriter, k, fp string) bool {
	old := p.orders[k]
	if old == nil {
		return false
	}
	if old.fingerprint != fp {
		writeSimError(w, errPSSameNo)
	} else {
		writeJSON(w, old.json(true))
	}
	return true
}

// checkShare applies WeChat Pay's rules to a sharing of t. p.mu is held.
func (p *profitSharing) checkShare(owner string, t *psTx, req *psOrderRequest) *simError {
	if t.unfrozen {
		return errNotEnough
	}
	var sum int64
	for _, rc := range req.Receivers {
		rv := p.receivers[owner+"/"+rc.Type+"/"+rc.Account]
		if rv == nil {
			return errNoRelation
		}
		if rc.Name != "" && rv.Name != "" && rc.Name != rv.Name {
			return errPSName
		}
		sum += *rc.Amount
	}
	switch {
	case sum > t.total-t.shared:
		return errNotEnough
	case (t.shared+sum)*100 > t.total*maxShareRatio:
		return errRatio
	}
	return nil
}

// json is o as the order routes answer it; fresh is the create answer,
// which says PROCESSING with every receiver PENDING.
func (o *psOrder) json(fresh bool) map[string]any {
	state := "FINISHED"
	rs := make([]psShare, len(o.receivers))
	copy(rs, o.receivers)
	if fresh {
		state = "PROCESSING"
		for i := range rs {
			rs[i].Result, rs[i].FinishTime = "PENDING", ""
		}
	}
	m := map[string]any{"transaction_id": o.transactionID, "out_order_no": o.outOrderNo, "order_id": o.orderID, "state": state, "receivers": rs}
	if o.subMchID != "" {
		m["sub_mchid"] = o.subMchID
	}
	return m
}

// notifyReceiverLocked sends a PROFITSHARING.* notification to a merchant
// receiver that is a merchant of this server with a notify URL set.
// p.mu is held.
func (p *profitSharing) notifyReceiverLocked(event string, r *http.Request, o *psOrder, typ, account string, amount int64, desc string) {
	url := p.notifyURL[account]
	if typ != "MERCHANT_ID" || url == "" || p.merchants.lookup(account) == nil {
		return
	}
	res := map[string]any{
		"mchid": MerchantIDFrom(r.Context()), "transaction_id": o.transactionID, "order_id": o.orderID, "out_order_no": o.outOrderNo,
		"receiver":     map[string]any{"type": typ, "account": account, "amount": amount, "description": desc},
		"success_time": time.Now().In(beijing).Format(time.RFC3339),
	}
	if o.subMchID != "" {
		res["sp_mchid"], res["sub_mchid"] = res["mchid"], o.subMchID
		delete(res, "mchid")
	}
	p.delivery.send(notice{eventType: event, merchant: account, outTradeNo: o.outOrderNo, url: url, resource: res})
}

// serveShareQuery serves GET /v3/profitsharing/orders/{out_order_no}.
func (p *profitSharing) serveShareQuery(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("transaction_id") == "" {
		writeSimError(w, paramError("transaction_id", "不能为空", nil))
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	o := p.orders[psOwner(r, q.Get("sub_mchid"))+"/"+r.PathValue("no")]
	if o == nil || o.transactionID != q.Get("transaction_id") {
		writeSimError(w, errPSNotFound)
		return
	}
	writeJSON(w, o.json(false))
}

// serveUnfreeze serves POST /v3/profitsharing/orders/unfreeze: what is
// left unshared goes back to the merchant.
func (p *profitSharing) serveUnfreeze(w http.ResponseWriter, r *http.Request) {
	body := bodyOf(r)
	var req struct {
		SubMchID      string `json:"sub_mchid"`
		TransactionID string `json:"transaction_id"`
		OutOrderNo    string `json:"out_order_no"`
		Description   string `json:"description"`
	}
	if e := decodeObject(body, &req); e != nil {
		writeSimError(w, e)
		return
	}
	switch {
	case req.TransactionID == "":
		writeSimError(w, paramError("/transaction_id", "不能为空", nil))
		return
	case !outOrderNoRE.MatchString(req.OutOrderNo):
		writeSimError(w, paramError("/out_order_no", "格式错误", req.OutOrderNo))
		return
	case req.Description == "":
		writeSimError(w, paramError("/description", "不能为空", nil))
		return
	}
	owner := psOwner(r, req.SubMchID)
	fp := fingerprint("unfreeze", mustJSON(req))
	p.mu.Lock()
	defer p.mu.Unlock()
	k := owner + "/" + req.OutOrderNo
	if p.answeredBefore(w, k, fp) {
		return
	}
	t, e := p.psTxLocked(owner, req.TransactionID)
	if e == nil && t.unfrozen {
		e = errNotEnough
	}
	if e != nil {
		writeSimError(w, e)
		return
	}
	now := time.Now().In(beijing).Format(time.RFC3339)
	o := &psOrder{fingerprint: fp, subMchID: req.SubMchID, transactionID: req.TransactionID, outOrderNo: req.OutOrderNo, orderID: p.nextID("3008"),
		receivers: []psShare{{Type: "MERCHANT_ID", Account: owner, Amount: t.total - t.shared, Description: "解冻给分账方",
			Result: "SUCCESS", DetailID: p.nextID("3600"), CreateTime: now, FinishTime: now}}}
	t.unfrozen = true
	if p.orders == nil {
		p.orders = make(map[string]*psOrder)
	}
	p.orders[k] = o
	writeJSON(w, o.json(true))
}

// serveUnsplit serves GET /v3/profitsharing/transactions/{id}/amounts.
func (p *profitSharing) serveUnsplit(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	p.mu.Lock()
	defer p.mu.Unlock()
	var left int64
	t, e := p.psTxLocked(p.ownerOf(MerchantIDFrom(r.Context()), id), id)
	switch {
	case e == errNotShareOrder:
		left = 0
	case e != nil:
		writeSimError(w, e)
		return
	case !t.unfrozen:
		left = t.total - t.shared
	}
	writeJSON(w, map[string]any{"transaction_id": id, "unsplit_amount": left})
}

// serveReturn serves POST /v3/profitsharing/return-orders: money shared to
// a merchant receiver comes back, at once.
func (p *profitSharing) serveReturn(w http.ResponseWriter, r *http.Request) {
	body := bodyOf(r)
	var req struct {
		SubMchID    string `json:"sub_mchid"`
		OrderID     string `json:"order_id"`
		OutOrderNo  string `json:"out_order_no"`
		OutReturnNo string `json:"out_return_no"`
		ReturnMchID string `json:"return_mchid"`
		Amount      *int64 `json:"amount"`
		Description string `json:"description"`
	}
	if e := decodeObject(body, &req); e != nil {
		writeSimError(w, e)
		return
	}
	switch {
	case (req.OrderID == "") == (req.OutOrderNo == ""):
		writeSimError(w, paramError("/out_order_no", "order_id与out_order_no二选一", nil))
		return
	case !outOrderNoRE.MatchString(req.OutReturnNo):
		writeSimError(w, paramError("/out_return_no", "格式错误", req.OutReturnNo))
		return
	case req.ReturnMchID == "" || req.Description == "":
		writeSimError(w, paramError("/return_mchid", "return_mchid与description不能为空", nil))
		return
	case req.Amount == nil || *req.Amount <= 0:
		writeSimError(w, paramError("/amount", "回退金额必须为正整数", nil))
		return
	}
	owner := psOwner(r, req.SubMchID)
	fp := fingerprint("return", mustJSON(req))
	p.mu.Lock()
	defer p.mu.Unlock()
	rk := owner + "/" + req.OutReturnNo
	if old := p.returns[rk]; old != nil {
		if old.fingerprint != fp {
			writeSimError(w, errPSSameNo)
			return
		}
		writeJSON(w, old.body)
		return
	}
	o := p.findOrder(owner, req.OrderID, req.OutOrderNo)
	if o == nil {
		writeSimError(w, errPSNotFound)
		return
	}
	var shared int64
	for _, sh := range o.receivers {
		if sh.Type == "MERCHANT_ID" && sh.Account == req.ReturnMchID && sh.Result == "SUCCESS" {
			shared += sh.Amount
		}
	}
	t := p.txs[owner+"/"+o.transactionID]
	if t == nil || shared == 0 || t.returned[o.orderID+"/"+req.ReturnMchID]+*req.Amount > shared {
		writeSimError(w, &simError{http.StatusBadRequest, "INVALID_REQUEST", "回退金额超过原分账单分给该接收方的金额", nil})
		return
	}
	t.returned[o.orderID+"/"+req.ReturnMchID] += *req.Amount
	now := time.Now().In(beijing).Format(time.RFC3339)
	ret := map[string]any{"order_id": o.orderID, "out_order_no": o.outOrderNo, "out_return_no": req.OutReturnNo, "return_id": p.nextID("3008"),
		"return_mchid": req.ReturnMchID, "amount": *req.Amount, "description": req.Description, "result": "SUCCESS",
		"create_time": now, "finish_time": now}
	if req.SubMchID != "" {
		ret["sub_mchid"] = req.SubMchID
	}
	if p.returns == nil {
		p.returns = make(map[string]*psReturn)
	}
	p.returns[rk] = &psReturn{fingerprint: fp, body: ret}
	writeJSON(w, ret)
	p.notifyReceiverLocked("PROFITSHARING.RETURN", r, o, "MERCHANT_ID", req.ReturnMchID, *req.Amount, req.Description)
}

func (p *profitSharing) findOrder(owner, orderID, outOrderNo string) *psOrder {
	if outOrderNo != "" {
		return p.orders[owner+"/"+outOrderNo]
	}
	for k, o := range p.orders {
		if strings.HasPrefix(k, owner+"/") && o.orderID == orderID {
			return o
		}
	}
	return nil
}

// serveReturnQuery serves GET /v3/profitsharing/return-orders/{no}.
func (p *profitSharing) serveReturnQuery(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p.mu.Lock()
	defer p.mu.Unlock()
	ret := p.returns[psOwner(r, q.Get("sub_mchid"))+"/"+r.PathValue("no")]
	if ret == nil || ret.body["out_order_no"] != q.Get("out_order_no") {
		writeSimError(w, errPSNotFound)
		return
	}
	writeJSON(w, ret.body)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
