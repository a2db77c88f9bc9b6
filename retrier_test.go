package wechatpay_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// retryRig is a Retry over a real Transport and the sandbox, with a
// clock that only its sleeps advance, so no test waits for real time.
type retryRig struct {
	srv    *wechatpaytest.Server
	retry  *wechatpay.Retry
	client *http.Client

	mu      sync.Mutex
	now     time.Time
	sleeps  []time.Duration
	onSleep func(n int) // called with the number of sleeps so far
	events  []wechatpay.Event
	bodies  []string // bodies the route received
	auths   []string // their Authorization headers
}

// newRetryRig serves route on the sandbox with answer, which gets the
// attempt's number from 1.
func newRetryRig(t *testing.T, r *wechatpay.Retry, route string, answer func(n int, w http.ResponseWriter, req *http.Request)) *retryRig {
	t.Helper()
	rig := &retryRig{srv: newSandbox(t), retry: r, now: time.Unix(1_800_000_000, 0)}
	rig.srv.Handle(route, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		rig.mu.Lock()
		rig.bodies = append(rig.bodies, string(b))
		rig.auths = append(rig.auths, req.Header.Get("Authorization"))
		n := len(rig.bodies)
		rig.mu.Unlock()
		answer(n, w, req)
	}))
	client, _ := newClient(t, rig.srv.Config(), wechatpay.StoreOptions{})
	if r.Base == nil {
		r.Base = client.Transport
	}
	r.Events = func(_ context.Context, ev wechatpay.Event) {
		rig.mu.Lock()
		defer rig.mu.Unlock()
		rig.events = append(rig.events, ev)
	}
	wechatpay.SetRetryHooks(r, rig.clock, rig.sleep, func(max time.Duration) time.Duration { return max })
	rig.client = &http.Client{Transport: r}
	return rig
}

func (rig *retryRig) clock() time.Time {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	return rig.now
}

func (rig *retryRig) sleep(_ context.Context, d time.Duration) error {
	rig.mu.Lock()
	rig.sleeps = append(rig.sleeps, d)
	rig.now = rig.now.Add(d)
	n, f := len(rig.sleeps), rig.onSleep
	rig.mu.Unlock()
	if f != nil {
		f(n)
	}
	return nil
}

// attempts returns the attempt events' (number, status) as text.
func (rig *retryRig) attempts() []string {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	var s []string
	for _, ev := range rig.events {
		if ev.Kind == wechatpay.EventRetryAttempt {
			s = append(s, fmt.Sprintf("%d:%d", ev.Attempt, ev.Status))
		}
	}
	return s
}

func (rig *retryRig) post(t *testing.T, ctx context.Context, path, body string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "POST", rig.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return rig.client.Do(req)
}

func busy(status int) func(n int, w http.ResponseWriter, r *http.Request) {
	return func(n int, w http.ResponseWriter, r *http.Request) {
		wechatpaytest.WriteError(w, status, "SYSTEM_ERROR", "busy")
	}
}

// TestRetrySchedule: exponential backoff capped at MaxDelay, a bounded
// number of attempts, an event per attempt, and the last answer returned.
func TestRetrySchedule(t *testing.T) {
	rig := newRetryRig(t, &wechatpay.Retry{MaxAttempts: 5, BaseDelay: 100 * time.Millisecond, MaxDelay: 300 * time.Millisecond},
		"POST /v3/busy", busy(http.StatusServiceUnavailable))
	resp, err := rig.post(t, context.Background(), "/v3/busy", `{"out_trade_no":"T1"}`)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("status = %d; want the last attempt's 503", resp.StatusCode)
	}
	if e, ok := wechatpay.CheckResponse(resp).(*wechatpay.APIError); !ok || e.Code != "SYSTEM_ERROR" {
		t.Errorf("CheckResponse = %v; want the last answer's SYSTEM_ERROR, readable", e)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond}
	if !slices.Equal(rig.sleeps, want) {
		t.Errorf("waits = %v; want %v", rig.sleeps, want)
	}
	if got := rig.attempts(); !slices.Equal(got, []string{"1:503", "2:503", "3:503", "4:503", "5:503"}) {
		t.Errorf("attempt events = %v; want five 503s", got)
	}
}

// TestRetryJitter: each wait is drawn from [0, bound], and the draws
// differ (full jitter), with the default source.
func TestRetryJitter(t *testing.T) {
	rig := newRetryRig(t, &wechatpay.Retry{MaxAttempts: 40, BaseDelay: time.Second, MaxDelay: time.Second},
		"POST /v3/busy", busy(http.StatusInternalServerError))
	wechatpay.SetRetryHooks(rig.retry, rig.clock, rig.sleep, nil)
	resp, err := rig.post(t, context.Background(), "/v3/busy", `{}`)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	distinct := map[time.Duration]bool{}
	for _, d := range rig.sleeps {
		if d < 0 || d > time.Second {
			t.Errorf("wait %s outside [0, 1s]", d)
		}
		distinct[d] = true
	}
	if len(rig.sleeps) != 39 || len(distinct) < 30 {
		t.Errorf("%d waits, %d distinct; want 39 drawn at random", len(rig.sleeps), len(distinct))
	}
}

// TestRetryBodyReplayed: every attempt carries the exact bytes of the
// first, each signed afresh, and the call succeeds once WeChat Pay does.
func TestRetryBodyReplayed(t *testing.T) {
	rig := newRetryRig(t, &wechatpay.Retry{}, "POST /v3/flaky", func(n int, w http.ResponseWriter, r *http.Request) {
		if n < 3 {
			wechatpaytest.WriteError(w, http.StatusInternalServerError, "SYSTEM_ERROR", "系统异常，请用相同参数重新调用")
			return
		}
		w.Write([]byte(`{"ok":true}`))
	})
	const body = `{"out_trade_no":"1217752501201407033233368018","amount":{"total":100,"currency":"CNY"},"description":"Image形象店-深圳腾大-QQ公仔"}`
	resp, err := rig.post(t, context.Background(), "/v3/flaky", body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !wechatpay.IsVerified(resp) {
		t.Fatalf("status = %d, verified %v; want a verified 200 on the third attempt", resp.StatusCode, wechatpay.IsVerified(resp))
	}
	if len(rig.bodies) != 3 {
		t.Fatalf("attempts received = %d; want 3", len(rig.bodies))
	}
	for i, b := range rig.bodies {
		if b != body {
			t.Errorf("attempt %d sent %q; want the original bytes", i+1, b)
		}
	}
	if rig.auths[0] == rig.auths[1] || rig.auths[1] == rig.auths[2] {
		t.Errorf("attempts share an Authorization: not signed afresh")
	}
}

// TestRetryAfter: a 429's Retry-After sets the wait, capped at MaxDelay,
// in seconds or as a date.
func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   time.Duration
	}{
		{"2", 2 * time.Second},
		{"3600", 5 * time.Second}, // capped
		{time.Unix(1_800_000_003, 0).UTC().Format(http.TimeFormat), 3 * time.Second},
		{"", 200 * time.Millisecond}, // none: the backoff
	} {
		rig := newRetryRig(t, &wechatpay.Retry{MaxAttempts: 2}, "POST /v3/limited", func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 1 {
				if tc.header != "" {
					w.Header().Set("Retry-After", tc.header)
				}
				wechatpaytest.WriteError(w, http.StatusTooManyRequests, "FREQUENCY_LIMITED", "频率超限")
				return
			}
			w.Write([]byte(`{}`))
		})
		resp, err := rig.post(t, context.Background(), "/v3/limited", `{}`)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !slices.Equal(rig.sleeps, []time.Duration{tc.want}) {
			t.Errorf("Retry-After %q: status %d after waits %v; want 200 after %s", tc.header, resp.StatusCode, rig.sleeps, tc.want)
		}
	}
}

// TestRetryRefusals: what must not be repeated is tried once, and comes
// back as it was (an unknown outcome as *OutcomeUnknownError).
func TestRetryRefusals(t *testing.T) {
	t.Run("non-retryable 4xx", func(t *testing.T) {
		rig := newRetryRig(t, &wechatpay.Retry{}, "POST /v3/bad", busy(http.StatusBadRequest))
		resp, err := rig.post(t, context.Background(), "/v3/bad", `{}`)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 400 || len(rig.bodies) != 1 || len(rig.sleeps) != 0 {
			t.Errorf("400: status %d after %d attempts; want 400 after 1", resp.StatusCode, len(rig.bodies))
		}
		if b, _ := io.ReadAll(resp.Body); !strings.Contains(string(b), "SYSTEM_ERROR") {
			t.Errorf("body of the returned 400 = %q; want it readable", b)
		}
	})
	t.Run("retryable code in a 4xx", func(t *testing.T) {
		rig := newRetryRig(t, &wechatpay.Retry{}, "POST /v3/freq", func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 1 {
				wechatpaytest.WriteError(w, http.StatusForbidden, "FREQUENCY_LIMITED", "频率超限")
				return
			}
			w.Write([]byte(`{}`))
		})
		resp, err := rig.post(t, context.Background(), "/v3/freq", `{}`)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || len(rig.bodies) != 2 {
			t.Errorf("403 FREQUENCY_LIMITED: status %d after %d attempts; want 200 after 2", resp.StatusCode, len(rig.bodies))
		}
	})
	t.Run("unknown outcome", func(t *testing.T) {
		// The connection breaks after WeChat Pay read the order.
		rig := newRetryRig(t, &wechatpay.Retry{}, "POST /v3/reset", func(n int, w http.ResponseWriter, r *http.Request) {
			panic(http.ErrAbortHandler)
		})
		_, err := rig.post(t, context.Background(), "/v3/reset", `{"out_trade_no":"T9"}`)
		var unknown *wechatpay.OutcomeUnknownError
		if !errors.As(err, &unknown) || unknown.Path != "/v3/reset" {
			t.Errorf("error = %v; want an *OutcomeUnknownError for /v3/reset", err)
		}
		if len(rig.bodies) != 1 || len(rig.sleeps) != 0 {
			t.Errorf("attempts = %d; want 1: an unknown outcome is never repeated", len(rig.bodies))
		}
		if got := rig.attempts(); len(got) != 1 {
			t.Errorf("attempt events = %v; want 1", got)
		}
	})
	t.Run("verification failure", func(t *testing.T) {
		rig := newRetryRig(t, &wechatpay.Retry{}, "POST /v3/forged", func(n int, w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{}`))
		})
		// Between the Transport and the sandbox, the answer is altered.
		tr := rig.retry.Base.(*wechatpay.Transport)
		inner := tr.Base
		tr.Base = roundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := inner.RoundTrip(r)
			if err == nil && r.URL.Path == "/v3/forged" {
				resp.Body = io.NopCloser(strings.NewReader(`{"paid":true}`))
				resp.ContentLength = -1
			}
			return resp, err
		})
		_, err := rig.post(t, context.Background(), "/v3/forged", `{}`)
		var verr *wechatpay.VerifyError
		if !errors.As(err, &verr) || !errors.Is(err, wechatpay.ErrBadSignature) {
			t.Errorf("error = %v; want a *VerifyError", err)
		}
		if len(rig.bodies) != 1 {
			t.Errorf("attempts = %d; want 1: a forged answer is not retried", len(rig.bodies))
		}
	})
	t.Run("deadline before the wait ends", func(t *testing.T) {
		rig := newRetryRig(t, &wechatpay.Retry{BaseDelay: time.Hour, MaxDelay: time.Hour}, "POST /v3/busy", busy(http.StatusServiceUnavailable))
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(time.Minute))
		defer cancel()
		resp, err := rig.post(t, ctx, "/v3/busy", `{}`)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 || len(rig.bodies) != 1 || len(rig.sleeps) != 0 {
			t.Errorf("status %d after %d attempts and waits %v; want the 503 at once", resp.StatusCode, len(rig.bodies), rig.sleeps)
		}
	})
	t.Run("no Base", func(t *testing.T) {
		closed := false
		req, _ := http.NewRequest("POST", "https://api.mch.weixin.qq.com/v3/x", io.NopCloser(strings.NewReader("{}")))
		req.Body = closerBody{closed: &closed}
		if _, err := (&wechatpay.Retry{}).RoundTrip(req); err == nil || !closed {
			t.Errorf("RoundTrip without Base = %v, body closed %v; want an error and the body closed", err, closed)
		}
	})
}

type closerBody struct{ closed *bool }

func (closerBody) Read([]byte) (int, error) { return 0, io.EOF }
func (b closerBody) Close() error           { *b.closed = true; return nil }

// TestRetryOverFailover: a Retry over a Failover over a Transport. The
// Failover moves each attempt to the backup host; the Retry waits and
// tries again when both hosts failed, with the same bytes, and never
// repeats what may have reached WeChat Pay.
func TestRetryOverFailover(t *testing.T) {
	r := newFailoverRig(t, &wechatpay.Failover{FailAfter: 10})
	r.main.mode.Store(hostDown)
	r.backup.mode.Store(host503)
	var retryEvents atomic.Int32
	var sleeps []time.Duration
	retry := &wechatpay.Retry{Base: r.failover, Events: func(_ context.Context, ev wechatpay.Event) {
		if ev.Kind == wechatpay.EventRetryAttempt {
			retryEvents.Add(1)
		}
	}}
	wechatpay.SetRetryHooks(retry, time.Now, func(_ context.Context, d time.Duration) error {
		sleeps = append(sleeps, d)
		r.backup.mode.Store(hostUp) // the backup recovers while we wait
		return nil
	}, func(max time.Duration) time.Duration { return max })
	r.client = &http.Client{Transport: retry}

	status, body, err := r.do(context.Background(), "POST", "/v3/echo/pay", `{"out_trade_no":"T7"}`)
	if err != nil || status != 200 || body != `{"out_trade_no":"T7"}` {
		t.Fatalf("POST = %d %q, %v; want 200 with the same body after a retry", status, body, err)
	}
	if m, b := r.counts(); m != 0 || b != 2 {
		t.Errorf("main, backup got %d, %d requests; want 0, 2 (main refused connections)", m, b)
	}
	if retryEvents.Load() != 2 || len(sleeps) != 1 {
		t.Errorf("%d attempts, waits %v; want 2 attempts, 1 wait", retryEvents.Load(), sleeps)
	}
	wantEvents(t, r.takeEvents(), "failover→"+backupHost, "failover→"+backupHost)

	// The backup hangs after reading the order: the Failover says the
	// outcome is unknown, and the Retry does not repeat it.
	r.backup.mode.Store(hostHangs)
	r.failover.AttemptTimeout = time.Second
	retryEvents.Store(0)
	_, _, err = r.do(context.Background(), "POST", "/v3/echo/pay", `{"out_trade_no":"T8"}`)
	var unknown *wechatpay.OutcomeUnknownError
	if !errors.As(err, &unknown) {
		t.Fatalf("POST to a hanging backup = %v; want an *OutcomeUnknownError", err)
	}
	if retryEvents.Load() != 1 {
		t.Errorf("attempts = %d; want 1", retryEvents.Load())
	}
}
