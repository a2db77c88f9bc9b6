package wechatpay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// Defaults of Failover.
const (
	defaultFailAfter    = 3
	defaultRecheckEvery = 30 * time.Second
)

// Failover is an [http.RoundTripper] that sends a request for WeChat Pay's
// main host to the backup host when the main host fails, stays on the
// backup after repeated failures, and goes back to the main host when it
// answers again. The two hosts are those the Transport signs for: its
// BaseURL's host and WeChat Pay's other documented host of that region
// (docs/protocol.md §11: api.mch.weixin.qq.com and its backup
// api2.mch.weixin.qq.com; apihk.mch.weixin.qq.com and api.mch). A request
// for the other host fails over to the BaseURL's. Requests for any other
// host, and all requests of a Transport whose BaseURL is a custom host (a
// sandbox, a proxy), pass through to the Transport unchanged.
//
// It wraps a Transport, so every attempt is signed afresh. A failure is a
// connection that could not be made (refused, DNS, a TLS certificate
// that does not verify), an error sending or receiving, or a 5xx
// answer; a response that fails verification is not a host failure and is
// returned as it is. A request is sent again to the other host only when
// it certainly was not sent (the connection could not be made), or when it
// is a GET or HEAD, or when its context was marked by WithRepeatable. Any
// other request whose outcome is unknown is not repeated: its error says
// so, and the caller should query the order before trying again.
//
// After FailAfter consecutive failures of the main host, requests go to the
// backup first. While there, a GET, HEAD or repeatable request goes to the
// main host once per RecheckEvery, falling back to the backup if the main
// host still fails; the first success switches back. Other requests are
// never used to test the main host.
//
// A Failover is safe for concurrent use; do not change its fields after
// the first call to RoundTrip.
type Failover struct {
	// Transport signs, sends and verifies each attempt. Required.
	Transport *Transport
	// FailAfter is the number of consecutive main-host failures after
	// which requests go to the backup first. Zero means 3.
	FailAfter int
	// RecheckEvery is how often, while on the backup, the main host is
	// tried again. Zero means 30 seconds.
	RecheckEvery time.Duration
	// AttemptTimeout, if positive, bounds each attempt, so that a host
	// that hangs leaves time for the other within the caller's deadline.
	AttemptTimeout time.Duration
	// Events, if set, receives EventFailover for each request sent to the
	// other host because the first failed, and EventFailback when
	// requests return to the main host.
	Events EventHook

	now func() time.Time // the clock; nil means time.Now

	mu    sync.Mutex
	hosts map[string]*failoverState // by main host
}

var _ http.RoundTripper = (*Failover)(nil)

// failoverState is what a Failover knows of one main host.
type failoverState struct {
	fails     int       // consecutive failures
	onBackup  bool      // requests go to the backup first
	nextCheck time.Time // when the main host may be tried again
}

type repeatableKey struct{}

// WithRepeatable marks a request as safe to send twice, for Failover: a
// state-changing request WeChat Pay de-duplicates (an order placed again
// with the same out_trade_no and parameters, a refund with the same
// out_refund_no). Failover then sends it to the other host also when the
// first may have received it.
func WithRepeatable(ctx context.Context) context.Context {
	return context.WithValue(ctx, repeatableKey{}, true)
}

func repeatable(req *http.Request) bool {
	if req.Method == "" || req.Method == http.MethodGet || req.Method == http.MethodHead {
		return true
	}
	v, _ := req.Context().Value(repeatableKey{}).(bool)
	return v
}

// alternate returns the host that stands in for u's host when it fails,
// or "" when there is none: the other of the two hosts the Transport signs
// for (its BaseURL's host and WeChat Pay's documented other host of that
// region, docs/protocol.md §11), never a host the Transport would refuse. A
// custom BaseURL (a sandbox, a proxy) has no other host.
func (f *Failover) alternate(u *url.URL) string {
	h, err := f.Transport.apiHosts()
	if err != nil || len(h.hosts) < 2 {
		return "" // the Transport reports a bad BaseURL itself
	}
	var other string
	switch wire.NormalHost(u.Scheme, u.Host) {
	case h.hosts[0]:
		other = h.hosts[1]
	case h.hosts[1]:
		other = h.hosts[0]
	default:
		return ""
	}
	if h.check(&url.URL{Scheme: u.Scheme, Host: other}) != nil {
		return ""
	}
	return other
}

func (f *Failover) clock() time.Time {
	if f.now != nil {
		return f.now()
	}
	return time.Now()
}

func (f *Failover) failAfter() int {
	if f.FailAfter > 0 {
		return f.FailAfter
	}
	return defaultFailAfter
}

func (f *Failover) recheckEvery() time.Duration {
	if f.RecheckEvery > 0 {
		return f.RecheckEvery
	}
	return defaultRecheckEvery
}

func (f *Failover) state(main string) *failoverState {
	if f.hosts == nil {
		f.hosts = make(map[string]*failoverState)
	}
	s := f.hosts[main]
	if s == nil {
		s = &failoverState{}
		f.hosts[main] = s
	}
	return s
}

// RoundTrip sends req to its host or to the other one, as the type's
// documentation says. It never modifies req and closes its body.
func (f *Failover) RoundTrip(req *http.Request) (*http.Response, error) {
	if f.Transport == nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errors.New("wechatpay: Failover has no Transport")
	}
	if req.URL == nil {
		return f.Transport.RoundTrip(req)
	}
	main := wire.NormalHost(req.URL.Scheme, req.URL.Host)
	backup := f.alternate(req.URL)
	if backup == "" {
		return f.Transport.RoundTrip(req)
	}
	body, err := wire.ReadRequestBody(req, f.Transport.maxBody())
	if err != nil {
		return nil, err
	}
	again := repeatable(req)

	// Which host goes first.
	first, second := main, backup
	now := f.clock()
	f.mu.Lock()
	if st := f.state(main); st.onBackup {
		if again && !now.Before(st.nextCheck) {
			st.nextCheck = now.Add(f.recheckEvery()) // this request tests the main host
		} else {
			first, second = backup, main
		}
	}
	f.mu.Unlock()

	start := time.Now()
	resp, err := f.attempt(req, first, body)
	failed, notSent := hostFailed(resp, err)
	if err != nil && req.Context().Err() != nil {
		return nil, err // the caller gave up: no host is to blame, nothing is repeated
	}
	if first == main {
		f.record(req.Context(), main, !failed)
	}
	if !failed {
		return resp, err
	}
	if !notSent && !again {
		if err != nil {
			return nil, &OutcomeUnknownError{Method: methodOf(req), Path: req.URL.Path,
				Err: fmt.Errorf("%s failed after the request may have been sent, so it was not sent to %s (mark a request that is safe to send twice with WithRepeatable): %w", first, second, err)}
		}
		return resp, nil // a 5xx answer: the caller sees it as it is
	}
	if resp != nil {
		resp.Body.Close()
	}
	cause := err
	if cause == nil {
		cause = fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	emit(req.Context(), f.Events, Event{Kind: EventFailover, Host: second, MerchantID: f.merchantID(),
		RequestID: requestIDOf(resp), Duration: time.Since(start), Err: fmt.Errorf("%s: %w", first, cause)})
	resp2, err2 := f.attempt(req, second, body)
	if second == main {
		failed2, _ := hostFailed(resp2, err2)
		f.record(req.Context(), main, !failed2)
	}
	if err2 != nil {
		return nil, fmt.Errorf("wechatpay: %s %s failed on %s (%v) and on %s: %w", methodOf(req), req.URL.Path, first, cause, second, err2)
	}
	return resp2, nil
}

// attempt sends a copy of req to host, with a fresh body reader, through
// the Transport, bounded by AttemptTimeout.
func (f *Failover) attempt(req *http.Request, host string, body []byte) (*http.Response, error) {
	ctx := req.Context()
	cancel := context.CancelFunc(func() {})
	if f.AttemptTimeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, f.AttemptTimeout)
	}
	r := req.Clone(ctx)
	r.URL.Host = host
	r.Host = ""
	if req.Body != nil && req.Body != http.NoBody {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		r.ContentLength = int64(len(body))
	}
	resp, err := f.Transport.RoundTrip(r)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelBody releases an attempt's timeout when the body is closed (an
// unsigned download streams after RoundTrip returns).
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// record notes the outcome of an attempt on the main host.
func (f *Failover) record(ctx context.Context, main string, ok bool) {
	f.mu.Lock()
	st := f.state(main)
	back := false
	if ok {
		back = st.onBackup
		st.fails, st.onBackup = 0, false
	} else {
		st.fails++
		if !st.onBackup && st.fails >= f.failAfter() {
			st.onBackup = true
			st.nextCheck = f.clock().Add(f.recheckEvery())
		}
	}
	f.mu.Unlock()
	if back {
		emit(ctx, f.Events, Event{Kind: EventFailback, Host: main, MerchantID: f.merchantID()})
	}
}

func (f *Failover) merchantID() string {
	if v := f.Transport.Verifier; v != nil {
		return v.MerchantID
	}
	return ""
}

// hostFailed tells whether an attempt failed as a host failure (a 5xx, or
// an error other than a verification failure or the caller's own
// cancellation), and whether the request certainly was not sent.
func hostFailed(resp *http.Response, err error) (failed, certainlyNotSent bool) {
	if err == nil {
		return resp.StatusCode >= 500, false
	}
	var ve *VerifyError
	if errors.As(err, &ve) {
		return false, false // an answer came; it was not WeChat Pay's
	}
	if notSent(err) {
		return true, true
	}
	if errors.Is(err, context.Canceled) {
		return false, false
	}
	return true, false
}

func methodOf(req *http.Request) string {
	if req.Method == "" {
		return http.MethodGet
	}
	return req.Method
}

func requestIDOf(resp *http.Response) string {
	if resp == nil {
		return ""
	}
	return wire.Truncate(resp.Header.Get(wire.HeaderRequestID), 64)
}
