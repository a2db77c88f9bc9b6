package wechatpaytest

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/wxpaykit/wechatpay/apiv2"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// v2CertificatesPath is WeChat Pay's APIv2 certificate endpoint, with its
// misspelling (docs/protocol.md §5).
const v2CertificatesPath = "/risk/getcertficates"

// maxV2Body bounds the APIv2 request bodies the sandbox reads.
const maxV2Body = 64 << 10

// apiV2 serves APIv2 (XML) requests: /risk/getcertficates and the routes
// registered with HandleV2.
type apiV2 struct {
	merchants *merchants
	ca        *authority
	stats     *stats

	fault atomic.Int64 // V2Fault

	mu     sync.Mutex
	routes map[string]V2HandlerFunc // guarded by mu; by path
}

// A V2HandlerFunc serves an APIv2 route registered with HandleV2. It gets
// the merchant ID and the fields of a request whose sign was checked, and
// returns the business fields of the answer (such as result_code); the
// sandbox adds return_code, mch_id, nonce_str and sign.
type V2HandlerFunc func(merchantID string, fields map[string]string) map[string]string

// handle registers h for path p.
func (v *apiV2) handle(p string, h V2HandlerFunc) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.routes == nil {
		v.routes = make(map[string]V2HandlerFunc)
	}
	if p == v2CertificatesPath || v.routes[p] != nil {
		panic(fmt.Sprintf("wechatpaytest: HandleV2: %s is already served", p))
	}
	v.routes[p] = h
}

// V2Fault is a fault of APIv2 answers, set with SetV2Fault.
type V2Fault int

// Faults of APIv2 answers.
const (
	// V2OK signs answers correctly.
	V2OK V2Fault = iota
	// V2BadSign sends a well-formed sign that does not match.
	V2BadSign
	// V2NoSign sends a SUCCESS answer without sign.
	V2NoSign
	// V2EntityBomb answers with a DOCTYPE declaring nested entities (a
	// "billion laughs" document) instead of the answer.
	V2EntityBomb
)

// entityBomb is the classic exponential entity expansion document.
const entityBomb = `<?xml version="1.0"?>
<!DOCTYPE xml [
<!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
<!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
<!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">
]>
<xml><return_code>SUCCESS</return_code><return_msg>&g;</return_msg></xml>`

// serve serves the APIv2 routes and reports whether r was one.
func (v *apiV2) serve(w http.ResponseWriter, r *http.Request) bool {
	var h V2HandlerFunc
	if r.URL.Path == v2CertificatesPath {
		h = v.certificates
	} else {
		v.mu.Lock()
		h = v.routes[r.URL.Path]
		v.mu.Unlock()
	}
	if h == nil {
		return false
	}
	fail := func(msg string) bool {
		writeV2(w, map[string]string{"return_code": "FAIL", "return_msg": msg})
		return true
	}
	if r.Method != http.MethodPost {
		return fail("请使用POST方法")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxV2Body))
	if err != nil {
		return fail("请求体过大")
	}
	req, err := apiv2.ParseXML(body)
	if err != nil {
		return fail("XML格式错误")
	}
	m := v.merchants.lookup(req["mch_id"])
	if m == nil {
		return fail("mch_id参数错误")
	}
	signType := req["sign_type"]
	if signType == "" {
		signType = apiv2.SignTypeMD5 // APIv2's default
	}
	if signType != apiv2.SignTypeMD5 && signType != apiv2.SignTypeHMACSHA256 {
		return fail("sign_type参数错误")
	}
	if req["nonce_str"] == "" || len(req["nonce_str"]) > 32 {
		return fail("nonce_str参数错误")
	}
	if apiv2.Verify(req, m.info.APIv2Key, signType) != nil {
		return fail("签名错误")
	}
	answer := h(m.info.ID, req)
	if answer == nil {
		answer = make(map[string]string)
	}
	if answer["return_code"] == "" {
		answer["return_code"], answer["return_msg"] = "SUCCESS", "OK"
	}
	if answer["return_code"] != "SUCCESS" {
		writeV2(w, answer) // WeChat Pay does not sign failed calls
		return true
	}
	answer["mch_id"] = m.info.ID
	answer["nonce_str"] = wire.NewNonce()
	delete(answer, "sign")
	sign, err := apiv2.Sign(answer, m.info.APIv2Key, signType)
	if err != nil {
		panic(err) // the sign type was checked
	}
	switch V2Fault(v.fault.Load()) {
	case V2BadSign:
		answer["sign"] = strings.Repeat("0", len(sign)-1) + "1"
	case V2NoSign:
	case V2EntityBomb:
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		io.WriteString(w, entityBomb)
		return true
	default:
		answer["sign"] = sign
	}
	writeV2(w, answer)
	return true
}

func writeV2(w http.ResponseWriter, fields map[string]string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Write(apiv2.EncodeXML(fields))
}

// certificates answers /risk/getcertficates: the merchant's platform
// certificates as a JSON string of the APIv3 shape, encrypted with the
// APIv3 key (docs/protocol.md §5).
func (v *apiV2) certificates(merchantID string, req map[string]string) map[string]string {
	if req["sign_type"] != apiv2.SignTypeHMACSHA256 {
		return map[string]string{"return_code": "FAIL", "return_msg": "sign_type参数错误，仅支持HMAC-SHA256"}
	}
	v.stats.certHits.Add(1)
	m := v.merchants.get(merchantID)
	m.downloads.Add(1)
	if v.ca.publicKeyOnly {
		return map[string]string{"result_code": "FAIL", "err_code": "CERT_NOT_EXIST", "err_code_des": "证书不存在"}
	}
	if certs, _ := m.keys.snapshot(); len(certs) == 0 {
		return map[string]string{"result_code": "FAIL", "err_code": "SYSTEM_ERROR", "err_code_des": "系统错误"}
	}
	return map[string]string{"result_code": "SUCCESS", "certificates": string(v.ca.certificateJSON(m, CertOK))}
}

// HandleV2 registers h for POST requests to the APIv2 (XML) path p, such
// as "/pay/orderquery". Requests are checked as WeChat Pay does: flat XML,
// a known mch_id, and a sign made with the merchant's APIv2 key using the
// request's sign_type (MD5 when absent); failures get return_code FAIL.
// Answers are signed with the same sign type, subject to SetV2Fault.
func (s *Server) HandleV2(p string, h V2HandlerFunc) { s.v2.handle(p, h) }

// SetV2Fault spoils every later APIv2 answer (including
// /risk/getcertficates) as f says, until it is set back to V2OK.
func (s *Server) SetV2Fault(f V2Fault) { s.v2.fault.Store(int64(f)) }
