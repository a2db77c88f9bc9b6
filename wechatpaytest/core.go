package wechatpaytest

import (
	"bytes"
	"context"
	"io"
	"mime"
	"net/http"
	"strings"
)

// core is the signed-response core: it authenticates every APIv3 request
// as WeChat Pay does (authenticate.go), dispatches it to a route the test
// registered with Handle, the certificate endpoints or the route table
// (routes.go), and signs every answer (answer.go). It is fixed once
// NewServer has mounted the route table; the state it reaches is in the
// parts it points to.
type core struct {
	clock     *simClock
	life      *lifecycle
	merchants *merchants
	ca        *authority
	faults    *faults
	stats     *stats
	v2        *apiV2       // APIv2 (XML) routes, served before authentication
	cashier   http.Handler // the payer's page, served without authentication

	mux     *http.ServeMux // routes registered with Handle
	builtin *http.ServeMux // the route table
}

type merchantIDKey struct{}

// MerchantIDFrom returns the ID of the authenticated merchant inside a
// handler registered with Handle, or "" if ctx does not come from one.
func MerchantIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(merchantIDKey{}).(string)
	return id
}

// merchantOf returns the authenticated merchant of a request dispatched
// by ServeHTTP.
func (c *core) merchantOf(r *http.Request) *merchant {
	return c.merchants.get(MerchantIDFrom(r.Context()))
}

// forHandler returns a copy of r that carries merchant m in its context
// and the already read body.
func forHandler(r *http.Request, m *merchant, body []byte) *http.Request {
	r2 := r.WithContext(context.WithValue(r.Context(), merchantIDKey{}, m.info.ID))
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	return r2
}

func isCertificatePath(p string) bool {
	return p == "/v3/certificates" || p == "/v3/global/certificates"
}

// ServeHTTP serves APIv2 and the cashier page without APIv3
// authentication, authenticates every other request, then serves it with
// the first of: a route the test registered with Handle, the certificate
// endpoints, the route table.
func (c *core) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.clock.setDate(w)
	c.stats.count(r.URL.Path)
	if c.v2.serve(w, r) { // APIv2: XML, signed with the APIv2 key
		return
	}
	if r.URL.Path == CashierPath || strings.HasPrefix(r.URL.Path, CashierPath+"/") {
		c.cashier.ServeHTTP(w, r) // the payer's page: no Authorization
		return
	}
	isCert := isCertificatePath(r.URL.Path)
	if isCert {
		c.stats.certHits.Add(1)
	}
	m, body, ok := c.authenticate(w, r)
	if !ok {
		return
	}
	r2 := forHandler(r, m, body)
	if _, pattern := c.mux.Handler(r2); pattern != "" {
		// The test's own route wins over every built-in one.
		c.stats.requests.Add(1)
		c.signed(c.mux.ServeHTTP)(w, r2)
		return
	}
	if isCert && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		m.downloads.Add(1)
		c.serveCertificates(w, r, m)
		return
	}
	if _, pattern := c.builtin.Handler(r2); pattern != "" {
		c.builtin.ServeHTTP(w, r2)
		return
	}

	// No route: let the muxes tell 404 from 405, then answer in JSON.
	rec := &bufferedWriter{header: make(http.Header)}
	c.builtin.ServeHTTP(rec, r2)
	if rec.status == http.StatusNotFound {
		rec = &bufferedWriter{header: make(http.Header)}
		c.mux.ServeHTTP(rec, r2)
	}
	switch rec.status {
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", rec.header.Get("Allow"))
		c.writeError(w, r, m, http.StatusMethodNotAllowed, "INVALID_REQUEST", "不支持该HTTP方法", nil)
	default:
		c.writeError(w, r, m, http.StatusNotFound, "NOT_FOUND", "请求的资源不存在", nil)
	}
}

// mount puts the route table into the built-in mux, each route wrapped as
// its kind says, and tells the faults which routes FailRoute accepts.
func (c *core) mount(table []route) {
	c.builtin = http.NewServeMux()
	for _, rt := range table {
		h := rt.handler
		if rt.kind&failable != 0 {
			c.faults.failable[rt.pattern] = true
			h = c.faults.wrap(rt.pattern, h, c.hang)
		}
		method, _, _ := strings.Cut(rt.pattern, " ")
		if rt.kind&multipartBody == 0 && (method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch) {
			h = requireJSON(h)
		}
		if rt.kind&raw == 0 {
			h = c.signed(h)
		}
		c.builtin.Handle(rt.pattern, h)
	}
}

// errContentType is WeChat Pay's answer to a JSON route called with
// another Content-Type: its APIv3 rules require application/json on
// every request but uploads, and INVALID_REQUEST is the code of a
// request that breaks those rules (pay.weixin.qq.com/docs/merchant/
// development/interface-rules/basic-rules.html). The message is the
// sandbox's own.
var errContentType = &simError{http.StatusBadRequest, "INVALID_REQUEST", "Content-Type应为application/json", nil}

// requireJSON refuses a request with a body whose Content-Type is not
// application/json, before h sees it.
func requireJSON(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/json" {
				writeSimError(w, errContentType)
				return
			}
		}
		h(w, r)
	}
}

// hang holds a request that the sandbox answers with nothing, until the
// client gives up or the server closes.
func (c *core) hang(r *http.Request) {
	c.clock.sleep(r.Context(), -1, c.life.closing())
}

// serveCertificates answers an authenticated download of the platform
// certificates of m, subject to SetCertDelay and SetCertFault.
func (c *core) serveCertificates(w http.ResponseWriter, r *http.Request, m *merchant) {
	if d := c.faults.certDelayed(); d > 0 && !c.clock.sleep(r.Context(), d, c.life.closing()) {
		return
	}
	fault := c.faults.certFault()
	switch fault {
	case CertHang:
		c.hang(r)
		return
	case CertStatus500:
		c.writeError(w, r, m, http.StatusInternalServerError, "SYSTEM_ERROR", "系统错误", nil)
		return
	case CertGarbage:
		c.writeSigned(w, r, m, http.StatusOK, jsonHeader, []byte("<html>this is not JSON</html>"), FaultNone)
		return
	}
	if c.ca.publicKeyOnly {
		c.writeError(w, r, m, http.StatusNotFound, "RESOURCE_NOT_EXISTS", "无可用的平台证书，请在商户平台-API安全申请使用微信支付公钥", nil)
		return
	}
	body := c.ca.certificateJSON(m, fault)
	signFault := FaultNone
	switch fault {
	case CertBadSignature:
		signFault = faultBadSignature
	case CertUnsigned:
		signFault = FaultNoHeaders
	}
	c.writeSigned(w, r, m, http.StatusOK, jsonHeader, body, signFault)
}
