package wechatpay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// Defaults of Retry.
const (
	defaultMaxAttempts = 3
	defaultBaseDelay   = 200 * time.Millisecond
	defaultMaxDelay    = 5 * time.Second
)

// Retry is an [http.RoundTripper] that makes a call again when it failed
// in a way that is safe to repeat, and never otherwise. It goes outside
// the signing Transport (Base is a *Transport, or a *Failover over one),
// so every attempt is signed afresh, and every attempt sends the same
// bytes: the same out_trade_no or out_refund_no, which WeChat Pay
// de-duplicates.
//
// An attempt is made again when its error is Retryable (the connection
// could not be made) or its answer is a 429 or a 5xx, or another error
// answer whose code Retryable accepts (FREQUENCY_LIMITED). It is never
// made again when the outcome is unknown: an *OutcomeUnknownError, or an
// error after which ClassifyError calls a state-changing request's
// outcome unknown (a timeout after sending, a reset connection); nor for
// a *VerifyError, nor for any other 4xx. The last attempt's answer or
// error is returned as it is, except that an error of unknown outcome is
// returned as the *OutcomeUnknownError ClassifyError makes of it.
//
// Before attempt n+1 it waits a random time between zero and
// min(MaxDelay, BaseDelay·2ⁿ⁻¹) (exponential backoff with full jitter),
// or what a 429's Retry-After asks, capped at MaxDelay. It does not start
// a wait that would end after the request context's deadline, and stops
// waiting when the context is done.
//
// A Retry is safe for concurrent use; do not change its fields after the
// first call to RoundTrip.
type Retry struct {
	// Base sends each attempt: a *Transport, or a *Failover over one.
	// Required.
	Base http.RoundTripper
	// MaxAttempts is the number of attempts at most, the first included.
	// Zero means 3.
	MaxAttempts int
	// BaseDelay is the bound of the first wait; each next one doubles.
	// Zero means 200 ms.
	BaseDelay time.Duration
	// MaxDelay caps every wait, a Retry-After included. Zero means 5 s.
	MaxDelay time.Duration
	// Events, if set, receives an EventRetryAttempt after each attempt,
	// with its number (Attempt), the answer's Status or the Err, and
	// how long it took.
	Events EventHook

	// Test hooks; nil means the real ones.
	sleep  func(ctx context.Context, d time.Duration) error
	now    func() time.Time
	jitter func(max time.Duration) time.Duration // uniform in [0, max]
}

var _ http.RoundTripper = (*Retry)(nil)

// RoundTrip sends req through Base, again as the type's documentation
// says. It never modifies req and closes its body.
func (r *Retry) RoundTrip(req *http.Request) (*http.Response, error) {
	if r.Base == nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errors.New("wechatpay: Retry has no Base")
	}
	body, err := wire.ReadRequestBody(req, r.maxBody())
	if err != nil {
		return nil, notSentError{err}
	}
	ctx := req.Context()
	for attempt := 1; ; attempt++ {
		start := r.clock()
		resp, err := r.Base.RoundTrip(replay(req, body))
		err = ClassifyError(req, err)
		r.emit(ctx, req, attempt, resp, err, r.clock().Sub(start))
		wait, again := r.decide(req, attempt, resp, err)
		if !again || !r.fits(ctx, wait) {
			return resp, err
		}
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
			resp.Body.Close()
		}
		if serr := r.wait(ctx, wait); serr != nil {
			if err == nil {
				err = fmt.Errorf("HTTP %d", resp.StatusCode)
			}
			return nil, fmt.Errorf("wechatpay: %s %s: gave up waiting to retry after attempt %d (%v): %w", methodOf(req), req.URL.Path, attempt, err, serr)
		}
	}
}

// decide tells whether the attempt's outcome is to be tried again, and
// after how long.
func (r *Retry) decide(req *http.Request, attempt int, resp *http.Response, err error) (time.Duration, bool) {
	if attempt >= r.maxAttempts() || req.Context().Err() != nil {
		return 0, false
	}
	if err != nil {
		var unknown *OutcomeUnknownError
		if errors.As(err, &unknown) || !Retryable(err) {
			return 0, false
		}
		return r.backoff(attempt), true
	}
	switch {
	case resp.StatusCode < 400:
		return 0, false
	case resp.StatusCode == http.StatusTooManyRequests:
		if d, ok := retryAfter(resp.Header.Get("Retry-After"), r.clock()); ok {
			return min(d, r.maxDelay()), true
		}
		return r.backoff(attempt), true
	case resp.StatusCode >= 500:
		return r.backoff(attempt), true
	}
	// Another error answer: its code decides (CheckResponse leaves the
	// body readable for the caller).
	if !Retryable(CheckResponse(resp)) {
		return 0, false
	}
	return r.backoff(attempt), true
}

// backoff is the wait after attempt n: full jitter over
// min(MaxDelay, BaseDelay·2ⁿ⁻¹).
func (r *Retry) backoff(n int) time.Duration {
	d := r.maxDelay()
	if shift := n - 1; shift < 32 {
		if b := r.baseDelay() << shift; b > 0 && b < d {
			d = b
		}
	}
	if r.jitter != nil {
		return r.jitter(d)
	}
	return rand.N(d + 1)
}

// fits reports whether a wait of d ends before ctx's deadline.
func (r *Retry) fits(ctx context.Context, d time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return !ok || r.clock().Add(d).Before(deadline)
}

func (r *Retry) wait(ctx context.Context, d time.Duration) error {
	if r.sleep != nil {
		return r.sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (r *Retry) emit(ctx context.Context, req *http.Request, attempt int, resp *http.Response, err error, d time.Duration) {
	if r.Events == nil {
		return
	}
	ev := Event{Kind: EventRetryAttempt, Attempt: attempt, Host: req.URL.Host, Duration: d, Err: err, RequestID: requestIDOf(resp)}
	if resp != nil {
		ev.Status = resp.StatusCode
	}
	if t := r.transport(); t != nil && t.Verifier != nil {
		ev.MerchantID = t.Verifier.MerchantID
	}
	emit(ctx, r.Events, ev)
}

// replay returns a copy of req reading body from the start.
func replay(req *http.Request, body []byte) *http.Request {
	r := req.Clone(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		wire.SetBody(r, body, nil)
	}
	return r
}

// retryAfter parses a Retry-After of seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// transport is the Transport beneath, if Base is one or a Failover.
func (r *Retry) transport() *Transport {
	switch b := r.Base.(type) {
	case *Transport:
		return b
	case *Failover:
		return b.Transport
	}
	return nil
}

func (r *Retry) maxBody() int64 {
	if t := r.transport(); t != nil {
		return t.maxBody()
	}
	return DefaultMaxBodySize
}

func (r *Retry) clock() time.Time {
	if r.now != nil {
		return r.now()
	}
	return time.Now()
}

func (r *Retry) maxAttempts() int {
	if r.MaxAttempts > 0 {
		return r.MaxAttempts
	}
	return defaultMaxAttempts
}

func (r *Retry) baseDelay() time.Duration {
	if r.BaseDelay > 0 {
		return r.BaseDelay
	}
	return defaultBaseDelay
}

func (r *Retry) maxDelay() time.Duration {
	if r.MaxDelay > 0 {
		return r.MaxDelay
	}
	return defaultMaxDelay
}
