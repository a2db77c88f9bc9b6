package wechatpaytest

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// faults is what a test asked to go wrong: the certificate endpoints
// (SetCertFault, SetCertDelay), the signatures of answers (SetFault) and
// the next calls of a built-in route (FailRoute).
type faults struct {
	failable map[string]bool // filled by core.mount, then fixed: the patterns FailRoute accepts

	cert      atomic.Int64 // CertFault
	certDelay atomic.Int64 // time.Duration
	response  atomic.Int64 // Fault

	mu     sync.Mutex
	routes map[string][]RouteFault // guarded by mu: FailRoute's queues, by pattern
}

func newFaults() *faults {
	return &faults{failable: make(map[string]bool), routes: make(map[string][]RouteFault)}
}

func (f *faults) certFault() CertFault           { return CertFault(f.cert.Load()) }
func (f *faults) certDelayed() time.Duration     { return time.Duration(f.certDelay.Load()) }
func (f *faults) responseFault() Fault           { return Fault(f.response.Load()) }
func (f *faults) isFailable(pattern string) bool { return f.failable[pattern] }

// queue makes the next n calls of pattern fail with rf.
func (f *faults) queue(pattern string, rf RouteFault, n int) {
	if !f.isFailable(pattern) {
		panic(fmt.Sprintf("wechatpaytest: FailRoute: %q is not a built-in route", pattern))
	}
	if rf < RouteSystemError || rf > RouteFrequencyLimited {
		panic(fmt.Sprintf("wechatpaytest: FailRoute: unknown fault %d", rf))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.routes[pattern] = append(f.routes[pattern], rf)
	}
}

// take pops the next fault queued for pattern, or returns 0.
func (f *faults) take(pattern string) RouteFault {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.routes[pattern]
	if len(q) == 0 {
		return 0
	}
	f.routes[pattern] = q[1:]
	return q[0]
}

// clearRoutes drops every queued route fault.
func (f *faults) clearRoutes() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.routes)
}

var (
	errSystem    = &simError{http.StatusInternalServerError, "SYSTEM_ERROR", "系统繁忙，请稍后重试", nil}
	errFrequency = &simError{http.StatusTooManyRequests, "FREQUENCY_LIMITED", "频率超限，请降低请求频率", nil}
)

// wrap applies the faults queued by FailRoute for pattern to h. hang
// holds a request until the client gives up or the server closes.
func (f *faults) wrap(pattern string, h http.HandlerFunc, hang func(*http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch f.take(pattern) {
		case RouteSystemError:
			writeSimError(w, errSystem)
		case RouteFrequencyLimited:
			writeSimError(w, errFrequency)
		case RouteTimeout:
			h(&bufferedWriter{header: make(http.Header)}, r) // done, but never answered
			hang(r)
			panic(http.ErrAbortHandler) // end the connection without an answer
		default:
			h(w, r)
		}
	}
}

// A RouteFault is a failure the sandbox gives on a built-in route on
// demand; see Server.FailRoute.
type RouteFault int

const (
	// RouteSystemError answers 500 SYSTEM_ERROR without doing anything.
	RouteSystemError RouteFault = iota + 1
	// RouteTimeout does what was asked (an order is placed, a refund
	// created) but never answers: the request hangs until the client gives
	// up or the server closes. The merchant must query to learn the
	// outcome.
	RouteTimeout
	// RouteFrequencyLimited answers 429 FREQUENCY_LIMITED without doing
	// anything.
	RouteFrequencyLimited
)

var routeFaults = map[string]RouteFault{"SYSTEM_ERROR": RouteSystemError, "TIMEOUT": RouteTimeout, "FREQUENCY_LIMITED": RouteFrequencyLimited}

// CertFault is a fault of the certificate endpoints, set with SetCertFault.
type CertFault int

// Faults of the certificate endpoints.
const (
	// CertOK serves the certificates normally.
	CertOK CertFault = iota
	// CertStatus500 answers 500 SYSTEM_ERROR (signed).
	CertStatus500
	// CertHang never answers: the request blocks until its context is
	// done or the server is closed.
	CertHang
	// CertGarbage answers 200, signed, with a body that is not JSON.
	CertGarbage
	// CertWrongAPIv3Key encrypts the certificates with a random key
	// instead of the merchant's APIv3 key.
	CertWrongAPIv3Key
	// CertSerialMismatch lists each certificate under a random serial_no
	// that differs from the serial of the encrypted certificate.
	CertSerialMismatch
	// CertBadSignature sends a well-formed Wechatpay-Signature that does
	// not verify.
	CertBadSignature
	// CertUnsigned sends no Wechatpay-* headers at all.
	CertUnsigned
)

// Fault is a fault of the signed responses to routes registered with
// Handle, set with SetFault. Errors of authentication are never spoiled.
type Fault int

// Faults of signed responses.
const (
	// FaultNone signs responses correctly.
	FaultNone Fault = iota
	// FaultTamperBody flips a bit of one byte of the body after signing
	// (an empty body becomes a single space).
	FaultTamperBody
	// FaultTamperTimestamp adds one second to Wechatpay-Timestamp after
	// signing.
	FaultTamperTimestamp
	// FaultWrongSerial signs correctly but names another of the
	// merchant's serials in Wechatpay-Serial (another listed certificate,
	// else its public key ID, else a random serial).
	FaultWrongSerial
	// FaultProbe sends a signature probe as WeChat Pay does:
	// "WECHATPAY/SIGNTEST/" followed by random Base64.
	FaultProbe
	// FaultInvalidBase64 sends the signature "!!not-base64!!".
	FaultInvalidBase64
	// FaultNoHeaders strips every Wechatpay-* header.
	FaultNoHeaders
	// FaultRandomSerial signs correctly but sends a random 40-hex serial
	// that the merchant does not have.
	FaultRandomSerial
)

// faultBadSignature is an internal Fault for CertBadSignature: a valid
// Base64 signature over a different message.
const faultBadSignature Fault = -1

var certFaultNames = [...]string{"CertOK", "CertStatus500", "CertHang", "CertGarbage", "CertWrongAPIv3Key", "CertSerialMismatch", "CertBadSignature", "CertUnsigned"}

// String returns the name of the constant f, such as "CertHang".
func (f CertFault) String() string {
	if f >= 0 && int(f) < len(certFaultNames) {
		return certFaultNames[f]
	}
	return fmt.Sprintf("CertFault(%d)", int(f))
}

var faultNames = [...]string{"FaultNone", "FaultTamperBody", "FaultTamperTimestamp", "FaultWrongSerial", "FaultProbe", "FaultInvalidBase64", "FaultNoHeaders", "FaultRandomSerial"}

// String returns the name of the constant f, such as "FaultProbe".
func (f Fault) String() string {
	if f >= 0 && int(f) < len(faultNames) {
		return faultNames[f]
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// SetCertFault makes the certificate endpoints misbehave as f says, for
// all merchants, until it is set back to CertOK. Requests are still
// authenticated and counted first.
func (s *Server) SetCertFault(f CertFault) { s.faults.cert.Store(int64(f)) }

// SetCertDelay makes the certificate endpoints wait d before answering.
// A request whose context is done (or a server closed) while waiting gets
// no answer. Zero removes the delay.
func (s *Server) SetCertDelay(d time.Duration) { s.faults.certDelay.Store(int64(d)) }

// SetFault spoils every later response to routes registered with Handle
// as f says, until it is set back to FaultNone.
func (s *Server) SetFault(f Fault) { s.faults.response.Store(int64(f)) }

// FailRoute makes the next n calls of the built-in route pattern fail with
// f, after any failures already queued for it. pattern is one of the
// route patterns listed in the package documentation, such as
// "POST /v3/pay/transactions/{kind}" or "POST /v3/refund/domestic/refunds".
// It panics on a pattern that is not a built-in route or an unknown f.
func (s *Server) FailRoute(pattern string, f RouteFault, n int) { s.faults.queue(pattern, f, n) }
