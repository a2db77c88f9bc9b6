package wechatpaytest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// Answers: WeChat Pay's error JSON, and the signature headers on every
// answer to an APIv3 request.

// errorBody is WeChat Pay's error JSON.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// simError is a WeChat Pay error answer: status, code, message and an
// optional detail.
type simError struct {
	status        int
	code, message string
	detail        any
}

func (e *simError) Error() string {
	return fmt.Sprintf("wechatpaytest: %d %s: %s", e.status, e.code, e.message)
}

// fieldDetail is the detail WeChat Pay gives with a PARAM_ERROR about one
// field (docs/protocol.md §8).
type fieldDetail struct {
	Field    string `json:"field"`
	Value    any    `json:"value,omitempty"`
	Issue    string `json:"issue"`
	Location string `json:"location"`
}

// paramError is a PARAM_ERROR about one field: a JSON pointer such as
// "/amount/total" for a body field, a bare name for a query parameter.
func paramError(field, issue string, value any) *simError {
	loc := "body"
	if !strings.HasPrefix(field, "/") {
		loc = "query"
	}
	return &simError{http.StatusBadRequest, "PARAM_ERROR", "参数错误: " + issue,
		fieldDetail{Field: field, Value: value, Issue: issue, Location: loc}}
}

// writeSimError writes e as WeChat Pay's error JSON.
func writeSimError(w http.ResponseWriter, e *simError) {
	b, err := json.Marshal(errorBody{Code: e.code, Message: e.message, Detail: e.detail})
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	w.Write(b)
}

// WriteError writes WeChat Pay's error JSON, {"code":...,"message":...},
// with the given status. Handlers registered with Handle use it to answer
// as WeChat Pay does, for example
// WriteError(w, http.StatusBadRequest, "PARAM_ERROR", "...").
func WriteError(w http.ResponseWriter, status int, code, message string) {
	writeSimError(w, &simError{status: status, code: code, message: message})
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

var jsonHeader = http.Header{"Content-Type": {"application/json"}}

// bodyOf returns the body the sandbox already read (bounded) and
// authenticated; handlers get it as an in-memory reader.
func bodyOf(r *http.Request) []byte {
	var buf bytes.Buffer
	buf.ReadFrom(r.Body)
	return buf.Bytes()
}

// signed runs h like a route registered with Handle: h sees the merchant
// in its context and the body, and what it writes is signed, subject to
// SetFault.
func (c *core) signed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rec := &bufferedWriter{header: make(http.Header)}
		h(rec, r)
		c.writeSigned(w, r, c.merchantOf(r), rec.status, rec.header, rec.body.Bytes(), c.faults.responseFault())
	}
}

// writeError sends a signed WeChat Pay error JSON.
func (c *core) writeError(w http.ResponseWriter, r *http.Request, m *merchant, status int, code, msg string, detail any) {
	body, err := json.Marshal(errorBody{Code: code, Message: msg, Detail: detail})
	if err != nil {
		panic(err) // the types above always marshal
	}
	c.writeSigned(w, r, m, status, nil, body, FaultNone)
}

// writeSigned sends status, the headers hdr and body with WeChat Pay's
// signature headers for merchant m (nil means the default merchant), then
// spoils them as fault says.
func (c *core) writeSigned(w http.ResponseWriter, r *http.Request, m *merchant, status int, hdr http.Header, body []byte, fault Fault) {
	if status == 0 {
		status = http.StatusOK
	}
	if !bodyAllowed(status) {
		body = nil
	}
	m = c.merchants.orDefault(m)
	serial, key := c.ca.responseKey(m, r.Header.Get(wire.HeaderSerial))
	ts := strconv.FormatInt(c.clock.now().Unix(), 10)
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
		body = tamper(body)
	case FaultTamperTimestamp:
		sec, _ := strconv.ParseInt(ts, 10, 64)
		ts = strconv.FormatInt(sec+1, 10)
	case FaultWrongSerial:
		serial = c.ca.otherSerial(m, serial)
	case FaultProbe:
		sig = probeSignature()
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
		setSignature(h, ts, nonce, sig, serial)
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

// setSignature sets WeChat Pay's signature headers.
func setSignature(h http.Header, ts, nonce, sig, serial string) {
	h.Set(wire.HeaderTimestamp, ts)
	h.Set(wire.HeaderNonce, nonce)
	h.Set(wire.HeaderSignature, sig)
	h.Set(wire.HeaderSerial, serial)
	h.Set(wire.HeaderSignatureType, wire.SchemeRSA)
}

// tamper returns a copy of body with one bit flipped (an empty body
// becomes a single space).
func tamper(body []byte) []byte {
	if len(body) == 0 {
		return []byte{' '}
	}
	body = bytes.Clone(body)
	body[len(body)/2] ^= 0x01
	return body
}

// probeSignature is a signature probe as WeChat Pay sends them.
func probeSignature() string {
	var junk [256]byte
	rand.Read(junk[:])
	return wire.ProbePrefix + base64.StdEncoding.EncodeToString(junk[:])
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
