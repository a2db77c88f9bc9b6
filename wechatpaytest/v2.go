package wechatpaytest

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/wxpaykit/wechatpay/apiv2"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// v2CertificatesPath is WeChat Pay's APIv2 certificate endpoint, with its
// misspelling (docs/protocol.md §5).
const v2CertificatesPath = "/risk/getcertficates"

// maxV2Body bounds the APIv2 request bodies the sandbox reads.
const maxV2Body = 64 << 10

// A V2HandlerFunc serves an APIv2 route registered with HandleV2. It gets
// the merchant ID and the fields of a request whose sign was checked, and
// returns the business fields of the answer (such as result_code); the
// sandbox adds return_code, mch_id, nonce_str and sign.
type V2HandlerFunc func(merchantID string, fields map[string]string) map[string]string

// HandleV2 registers h for POST requests to the APIv2 (XML) path p, such
// as "/pay/orderquery". Requests are checked as WeChat Pay does: flat XML,
// a known mch_id, and a sign made with the merchant's APIv2 key using the
// request's sign_type (MD5 when absent); failures get return_code FAIL.
// Answers are signed with the same sign type, subject to SetV2Fault.
func (s *Server) HandleV2(p string, h V2HandlerFunc) {
	s.x.v2Mu.Lock()
	defer s.x.v2Mu.Unlock()
	if s.x.v2Routes == nil {
		s.x.v2Routes = make(map[string]V2HandlerFunc)
	}
	if p == v2CertificatesPath || s.x.v2Routes[p] != nil {
		panic(fmt.Sprintf("wechatpaytest: HandleV2: %s is already served", p))
	}
	s.x.v2Routes[p] = h
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

// SetV2Fault spoils every later APIv2 answer (including
// /risk/getcertficates) as f says, until it is set back to V2OK.
func (s *Server) SetV2Fault(f V2Fault) { s.x.v2Fault.Store(int64(f)) }

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

// serveV2 serves the APIv2 routes and reports whether r was one.
func (s *Server) serveV2(w http.ResponseWriter, r *http.Request) bool {
	var h V2HandlerFunc
	if r.URL.Path == v2CertificatesPath {
		h = s.v2Certificates
	} else {
		s.x.v2Mu.Lock()
		h = s.x.v2Routes[r.URL.Path]
		s.x.v2Mu.Unlock()
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
	m := s.lookup(req["mch_id"])
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
	switch V2Fault(s.x.v2Fault.Load()) {
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

// v2Certificates answers /risk/getcertficates: the merchant's platform
// certificates as a JSON string of the APIv3 shape, encrypted with the
// APIv3 key (docs/protocol.md §5).
func (s *Server) v2Certificates(merchantID string, req map[string]string) map[string]string {
	if req["sign_type"] != apiv2.SignTypeHMACSHA256 {
		return map[string]string{"return_code": "FAIL", "return_msg": "sign_type参数错误，仅支持HMAC-SHA256"}
	}
	s.certHits.Add(1)
	m := s.merchant(merchantID)
	m.downloads.Add(1)
	if s.opts.publicKeyOnly {
		return map[string]string{"result_code": "FAIL", "err_code": "CERT_NOT_EXIST", "err_code_des": "证书不存在"}
	}
	list, err := s.certificateJSON(m)
	if err != nil {
		return map[string]string{"result_code": "FAIL", "err_code": "SYSTEM_ERROR", "err_code_des": "系统错误"}
	}
	return map[string]string{"result_code": "SUCCESS", "certificates": string(list)}
}

// certificateJSON is the certificate list of m as /v3/certificates
// serves it.
func (s *Server) certificateJSON(m *merchant) ([]byte, error) {
	s.mu.Lock()
	certs := slices.Clone(m.certs)
	s.mu.Unlock()
	list := certificateList{Data: make([]certificateItem, 0, len(certs))}
	for _, c := range certs {
		nonce := randomText(12)
		ct, err := wire.Seal(m.aead, nonce, "certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw}))
		if err != nil {
			return nil, err
		}
		list.Data = append(list.Data, certificateItem{
			SerialNo:      c.serial,
			EffectiveTime: c.cert.NotBefore.In(beijing).Format(time.RFC3339),
			ExpireTime:    c.cert.NotAfter.In(beijing).Format(time.RFC3339),
			EncryptCertificate: encryptedResource{
				Algorithm: "AEAD_AES_256_GCM", Nonce: nonce, AssociatedData: "certificate", Ciphertext: ct,
			},
		})
	}
	if len(list.Data) == 0 {
		return nil, errors.New("no certificates")
	}
	return json.Marshal(list)
}
