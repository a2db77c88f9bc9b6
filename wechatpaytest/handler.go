package wechatpaytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// maxBody bounds the request bodies the sandbox reads.
const maxBody = 8 << 20

// maxSkew is how far a request timestamp may be from the real time.
const maxSkew = 5 * time.Minute

// errorBody is WeChat Pay's error JSON.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// signErrorDetail is the detail of a SIGN_ERROR for a signature mismatch,
// shaped like WeChat Pay's (docs/protocol.md §8).
type signErrorDetail struct {
	Detail struct {
		Issue string `json:"issue"`
	} `json:"detail"`
	Field           string          `json:"field"`
	Location        string          `json:"location"`
	SignInformation signInformation `json:"sign_information"`
}

type signInformation struct {
	Method               string `json:"method"`
	SignMessageLength    int    `json:"sign_message_length"`
	TruncatedSignMessage string `json:"truncated_sign_message"`
	URL                  string `json:"url"`
}

// Messages of WeChat Pay's authentication errors. The first three are
// quoted from WeChat Pay; the others are worded for the sandbox.
const (
	msgNoAcceptOrUA    = "Http头缺少Accept或User-Agent"
	msgAuthFormat      = "Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》"
	msgTimestamp       = "Http头Authorization中的timestamp与发起请求的时间不得超过5分钟"
	msgUnknownMerchant = "商户号mchid不存在"
	msgMerchantSerial  = "商户证书序列号有误。请使用签名私钥匹配的证书序列号"
	msgBadSignature    = "错误的签名，验签失败"
	msgRequestSerial   = "平台证书序列号Wechatpay-Serial错误"
)

func isCertificatePath(p string) bool {
	return p == "/v3/certificates" || p == "/v3/global/certificates"
}

// serveHTTP serves the cashier page without authentication, authenticates
// every other request, then serves it with the first of: a route the test
// registered with Handle, the certificate endpoints, the other built-in
// routes, the control endpoints and the simulator's routes.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.setDate(w)
	s.x.count(r.URL.Path)
	if s.serveV2(w, r) { // APIv2: XML, signed with the APIv2 key
		return
	}
	if r.URL.Path == CashierPath || strings.HasPrefix(r.URL.Path, CashierPath+"/") {
		s.serveCashier(w, r) // the payer's page: no Authorization
		return
	}
	isCert := isCertificatePath(r.URL.Path)
	if isCert {
		s.certHits.Add(1)
	}
	m, body, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	r2 := r.WithContext(context.WithValue(r.Context(), merchantIDKey{}, m.info.ID))
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	if _, pattern := s.mux.Handler(r2); pattern != "" {
		// The test's own route wins over every built-in one.
		s.requests.Add(1)
		rec := &bufferedWriter{header: make(http.Header)}
		s.mux.ServeHTTP(rec, r2)
		s.writeSigned(w, r, m, rec.status, rec.header, rec.body.Bytes(), Fault(s.fault.Load()))
		return
	}
	if isCert && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		m.downloads.Add(1)
		s.serveCertificates(w, r, m)
		return
	}
	if s.serveBuiltin(w, r, m, body) { // bills, media uploads, sensitive fields
		return
	}
	if control := s.controlHandler(r.URL.Path); control != nil {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			s.writeError(w, r, m, http.StatusMethodNotAllowed, "INVALID_REQUEST", "不支持该HTTP方法", nil)
			return
		}
		control(w, r, m, body)
		return
	}
	if _, pattern := s.sims.Handler(r2); pattern != "" {
		s.serveSigned(w, r, m, body, s.sims.ServeHTTP)
		return
	}

	// No route: let the muxes tell 404 from 405, then answer in JSON.
	rec := &bufferedWriter{header: make(http.Header)}
	s.sims.ServeHTTP(rec, r2)
	if rec.status == http.StatusNotFound {
		rec = &bufferedWriter{header: make(http.Header)}
		s.mux.ServeHTTP(rec, r2)
	}
	switch rec.status {
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", rec.header.Get("Allow"))
		s.writeError(w, r, m, http.StatusMethodNotAllowed, "INVALID_REQUEST", "不支持该HTTP方法", nil)
	default:
		s.writeError(w, r, m, http.StatusNotFound, "NOT_FOUND", "请求的资源不存在", nil)
	}
}

// controlHandler returns the handler of the sandbox's control endpoint
// path, or nil.
func (s *Server) controlHandler(path string) func(http.ResponseWriter, *http.Request, *merchant, []byte) {
	switch path {
	case NotifyPath:
		return s.serveNotifyPost
	case PayPath:
		return func(w http.ResponseWriter, r *http.Request, m *merchant, body []byte) {
			s.serveSigned(w, r, m, body, s.servePayControl)
		}
	case ComplaintPath: // complaints.go
		return func(w http.ResponseWriter, r *http.Request, m *merchant, body []byte) {
			s.serveSigned(w, r, m, body, s.serveComplaintControl)
		}
	case FaultsPath:
		return func(w http.ResponseWriter, r *http.Request, m *merchant, body []byte) {
			s.serveSigned(w, r, m, body, s.serveFaultsControl)
		}
	}
	return nil
}

// authenticate checks a request as WeChat Pay does (docs/protocol.md §1, §8) and
// returns its merchant and body. On failure it has written the signed
// error response and returns ok == false.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (m *merchant, body []byte, ok bool) {
	auth, authErr := wire.ParseAuthorization(r.Header.Get("Authorization"))
	if authErr == nil {
		m = s.lookup(auth.MerchantID) // also chooses the key that signs errors
	}
	fail := func(status int, code, msg string, detail any) (*merchant, []byte, bool) {
		s.writeError(w, r, m, status, code, msg, detail)
		return nil, nil, false
	}
	if r.Header.Get("Accept") == "" || r.Header.Get("User-Agent") == "" {
		return fail(http.StatusBadRequest, "INVALID_REQUEST", msgNoAcceptOrUA, nil)
	}
	if authErr != nil {
		return fail(http.StatusUnauthorized, "SIGN_ERROR", msgAuthFormat, nil)
	}
	ts, err := strconv.ParseInt(auth.Timestamp, 10, 64)
	if err != nil || strconv.FormatInt(ts, 10) != auth.Timestamp {
		return fail(http.StatusUnauthorized, "SIGN_ERROR", msgAuthFormat, nil)
	}
	if m == nil {
		return fail(http.StatusUnauthorized, "SIGN_ERROR", msgUnknownMerchant, nil)
	}
	if auth.Serial != m.info.CertificateSerial {
		return fail(http.StatusUnauthorized, "SIGN_ERROR", msgMerchantSerial, nil)
	}
	if d := s.requestClock().Unix() - ts; d > int64(maxSkew/time.Second) || d < -int64(maxSkew/time.Second) {
		return fail(http.StatusUnauthorized, "SIGN_ERROR", msgTimestamp, nil)
	}
	body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		if tooLarge := new(http.MaxBytesError); errors.As(err, &tooLarge) {
			return fail(http.StatusRequestEntityTooLarge, "INVALID_REQUEST", "请求体过大", nil)
		}
		return fail(http.StatusBadRequest, "INVALID_REQUEST", "读取请求体失败", nil)
	}
	signed := signedPart(r, body) // media uploads sign their meta JSON only
	msg := wire.RequestMessage(r.Method, r.RequestURI, ts, auth.Nonce, signed)
	if wire.Verify(&m.info.PrivateKey.PublicKey, msg, auth.Signature) != nil {
		d := signErrorDetail{Field: "signature", Location: "authorization"}
		d.Detail.Issue = "sign not match"
		d.SignInformation = signInformation{
			Method:               r.Method,
			SignMessageLength:    len(msg),
			TruncatedSignMessage: truncatedSignMessage(msg, signed),
			URL:                  r.RequestURI,
		}
		return fail(http.StatusUnauthorized, "SIGN_ERROR", msgBadSignature, d)
	}
	if serial := r.Header.Get(wire.HeaderSerial); serial != "" && !s.hasKey(m, serial) {
		return fail(http.StatusBadRequest, "PARAM_ERROR", msgRequestSerial, nil)
	}
	return m, body, true
}

// truncatedSignMessage shortens the signing string the way WeChat Pay's
// SIGN_ERROR shows it: the four header lines whole, then only the start of
// the body line.
func truncatedSignMessage(msg, body []byte) string {
	const keep = 8
	if len(body) <= keep {
		return string(msg)
	}
	head := msg[:len(msg)-len(body)-1]
	return string(head) + string(body[:keep]) + "\n"
}

// hasKey reports whether serial names one of m's listed platform
// certificates or its public key.
func (s *Server) hasKey(m *merchant, serial string) bool {
	if m.info.PublicKeyID != "" && serial == m.info.PublicKeyID {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range m.certs {
		if c.serial == serial {
			return true
		}
	}
	return false
}

// responseKey returns the serial and key that sign responses to m (the
// default merchant if m is nil) for a request that sent Wechatpay-Serial
// reqSerial.
func (s *Server) responseKey(m *merchant, reqSerial string) (string, *rsa.PrivateKey) {
	if m == nil {
		m = s.merchant(s.defaultID)
	}
	if m.publicKey != nil && (s.opts.publicKeyOnly || reqSerial == m.info.PublicKeyID) {
		return m.info.PublicKeyID, m.publicKey
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return m.signing.serial, m.signing.key
}

// otherSerial returns a serial of m other than serial: a listed platform
// certificate, else the public key ID, else a random one.
func (s *Server) otherSerial(m *merchant, serial string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range m.certs {
		if c.serial != serial {
			return c.serial
		}
	}
	if id := m.info.PublicKeyID; id != "" && id != serial {
		return id
	}
	return newSerialHex()
}

// writeError sends a signed WeChat Pay error JSON.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, m *merchant, status int, code, msg string, detail any) {
	body, err := json.Marshal(errorBody{Code: code, Message: msg, Detail: detail})
	if err != nil {
		panic(err) // the types above always marshal
	}
	s.writeSigned(w, r, m, status, nil, body, FaultNone)
}

// faultBadSignature is an internal Fault for CertBadSignature: a valid
// Base64 signature over a different message.
const faultBadSignature Fault = -1

// writeSigned sends status, the headers hdr and body with WeChat Pay's
// signature headers for merchant m (nil means the default merchant), then
// spoils them as fault says.
func (s *Server) writeSigned(w http.ResponseWriter, r *http.Request, m *merchant, status int, hdr http.Header, body []byte, fault Fault) {
	if status == 0 {
		status = http.StatusOK
	}
	if !bodyAllowed(status) {
		body = nil
	}
	if m == nil {
		m = s.merchant(s.defaultID)
	}
	serial, key := s.responseKey(m, r.Header.Get(wire.HeaderSerial))
	ts := strconv.FormatInt(s.now().Unix(), 10)
	nonce := wire.NewNonce()
	msg := wire.ResponseMessage(ts, nonce, body)
	if fault == faultBadSignature {
		msg = append(msg, '!')
	}
	sig, err := wire.Sign(key, msg)
	if err != nil {
		panic(err) // an *rsa.PrivateKey always signs
	}

	switch fault {
	case FaultTamperBody:
		body = bytes.Clone(body)
		if len(body) == 0 {
			body = []byte{' '}
		} else {
			body[len(body)/2] ^= 0x01
		}
	case FaultTamperTimestamp:
		sec, _ := strconv.ParseInt(ts, 10, 64)
		ts = strconv.FormatInt(sec+1, 10)
	case FaultWrongSerial:
		serial = s.otherSerial(m, serial)
	case FaultProbe:
		var junk [256]byte
		rand.Read(junk[:])
		sig = wire.ProbePrefix + base64.StdEncoding.EncodeToString(junk[:])
	case FaultInvalidBase64:
		sig = "!!not-base64!!"
	case FaultRandomSerial:
		serial = newSerialHex()
	}

	h := w.Header()
	for k, v := range hdr {
		h[k] = v
	}
	if len(body) > 0 && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	h.Set(wire.HeaderRequestID, newRequestID())
	if fault != FaultNoHeaders {
		h.Set(wire.HeaderTimestamp, ts)
		h.Set(wire.HeaderNonce, nonce)
		h.Set(wire.HeaderSignature, sig)
		h.Set(wire.HeaderSerial, serial)
		h.Set(wire.HeaderSignatureType, wire.SchemeRSA)
	} else {
		for k := range h {
			if strings.HasPrefix(k, "Wechatpay-") {
				delete(h, k)
			}
		}
	}
	if bodyAllowed(status) {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	} else {
		h.Del("Content-Length")
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// newRequestID returns a random Request-ID.
func newRequestID() string {
	var b [20]byte
	rand.Read(b[:])
	return fmt.Sprintf("%X", b[:])
}

// bufferedWriter collects what a handler writes so that it can be signed.
type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }

func (b *bufferedWriter) WriteHeader(status int) {
	if b.status == 0 && status >= 200 { // informational headers are dropped
		b.status = status
	}
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}
