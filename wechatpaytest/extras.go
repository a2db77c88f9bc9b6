package wechatpaytest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// extras is the state of the sandbox's built-in routes beyond APIv3
// authentication and certificates: APIv2, bills, media uploads. Its zero
// value is ready to use.
type extras struct {
	pathsMu sync.Mutex
	paths   map[string]int // requests per URL path, any outcome

	billSize      atomic.Int64 // bytes of generated bill files; 0 means defaultBillSize
	billFlip      atomic.Int64 // offset+1 of the byte FlipBillByte spoils; 0 means none
	billHashes    sync.Map     // bill token → hex SHA-1
	realBills     sync.Map     // token → simBill, bills of the simulated day
	realBillCount atomic.Int64

	v2Fault  atomic.Int64 // V2Fault
	v2Mu     sync.Mutex
	v2Routes map[string]V2HandlerFunc

	mediaMu sync.Mutex
	media   map[string]UploadedMedia
}

// maxCountedPaths bounds the path log: a sandbox fed arbitrary paths does
// not grow without limit.
const maxCountedPaths = 4096

func (x *extras) count(path string) {
	x.pathsMu.Lock()
	defer x.pathsMu.Unlock()
	if x.paths == nil {
		x.paths = make(map[string]int)
	}
	if _, ok := x.paths[path]; ok || len(x.paths) < maxCountedPaths {
		x.paths[path]++
	}
}

// PathRequests returns how many requests for the URL path p (without
// query) reached the server, whatever their outcome, including failed
// authentication. For example, PathRequests("/v3/global/certificates")
// tells a test that a client used the global certificate endpoint.
func (s *Server) PathRequests(p string) int {
	s.x.pathsMu.Lock()
	defer s.x.pathsMu.Unlock()
	return s.x.paths[p]
}

// Paths of the built-in APIv3 routes.
const (
	billFilePath       = "/v3/billdownload/file"
	tradeBillPath      = "/v3/bill/tradebill"
	fundFlowBillPath   = "/v3/bill/fundflowbill"
	mediaUploadPath    = "/v3/merchant/media/upload"
	videoUploadPath    = "/v3/merchant/media/video_upload"
	marketingImagePath = "/v3/marketing/favor/media/image-upload"
)

// serveBuiltin serves the sandbox's own APIv3 routes for an authenticated
// request of m, and reports whether it did. Routes registered with Handle
// take precedence over them.
func (s *Server) serveBuiltin(w http.ResponseWriter, r *http.Request, m *merchant, body []byte) bool {
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	if s.serveComplaints(w, r, m, body) || s.serveEncryptedBills(w, r, m, body) { // complaints.go, encbill.go
		return true
	}
	switch p := r.URL.Path; {
	case p == fapiaoUploadPath && r.Method == http.MethodPost:
		s.serveSigned(w, r, m, body, s.serveFapiaoUpload)
	case p == billFilePath && get:
		s.serveBillFile(w, r, m)
	case p == fundFlowBillPath && get:
		s.serveSigned(w, r, m, body, s.serveBill)
	case isMediaPath(p) && r.Method == http.MethodPost:
		s.serveSigned(w, r, m, body, s.serveMediaUpload)
	default:
		return false
	}
	return true
}

// serveSigned runs h like a route registered with Handle: h sees the
// merchant in its context and the body, and what it writes is signed,
// subject to SetFault.
func (s *Server) serveSigned(w http.ResponseWriter, r *http.Request, m *merchant, body []byte, h http.HandlerFunc) {
	r2 := r.WithContext(context.WithValue(r.Context(), merchantIDKey{}, m.info.ID))
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	rec := &bufferedWriter{header: make(http.Header)}
	h(rec, r2)
	s.writeSigned(w, r, m, rec.status, rec.header, rec.body.Bytes(), Fault(s.fault.Load()))
}

// WriteError writes WeChat Pay's error JSON, {"code":...,"message":...},
// with the given status. Handlers registered with Handle use it to answer
// as WeChat Pay does, for example
// WriteError(w, http.StatusBadRequest, "PARAM_ERROR", "...").
func WriteError(w http.ResponseWriter, status int, code, message string) {
	b, err := json.Marshal(errorBody{Code: code, Message: message})
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}
