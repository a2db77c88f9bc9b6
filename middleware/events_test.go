package middleware_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

type eventRecorder struct {
	mu     sync.Mutex
	events []wechatpay.Event
}

func (r *eventRecorder) hook(_ context.Context, ev wechatpay.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *eventRecorder) take() []wechatpay.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	evs := r.events
	r.events = nil
	return evs
}

// TestRefusedCallbackEvents checks that each refused callback produces
// exactly one EventCallbackRefused with its status, merchant and reason,
// preceded, when verification failed, by exactly one verification event of
// the failure's class; that an accepted one produces none; and that no
// event shows the APIv3 key, the decrypted payload or an unbounded sender
// header.
func TestRefusedCallbackEvents(t *testing.T) {
	var rec eventRecorder
	f := newFixture(t, fixtureOptions{warm: true, config: func(c *middleware.Config) { c.Events = rec.hook }})
	long := "PUB_KEY_ID_" + strings.Repeat("9", 500)
	tests := []struct {
		name   string
		opts   []wechatpaytest.NotifyOption
		status int
		want   error
		verify string // the verification event's kind, if verification failed
	}{
		{"accepted", nil, http.StatusNoContent, nil, ""},
		{"bad signature", []wechatpaytest.NotifyOption{wechatpaytest.NotifyTamperBody()}, 401, wechatpay.ErrBadSignature, wechatpay.EventBadSignature},
		{"probe", []wechatpaytest.NotifyOption{wechatpaytest.NotifyProbe()}, 401, wechatpay.ErrSignatureProbe, wechatpay.EventSignatureProbe},
		{"skew", []wechatpaytest.NotifyOption{wechatpaytest.NotifyTimestampOffset(6 * time.Minute)}, 401, wechatpay.ErrClockSkew, wechatpay.EventClockSkew},
		{"unknown serial", []wechatpaytest.NotifyOption{wechatpaytest.NotifySerial(long)}, 401, wechatpay.ErrUnknownSerial, wechatpay.EventUnknownSerial},
		{"wrong APIv3 key", []wechatpaytest.NotifyOption{wechatpaytest.NotifyAPIv3Key(strings.Repeat("K", 32))}, 400, wechatpay.ErrDecrypt, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec.take()
			status, _ := f.notify(t, "", "", wechatpaytest.PaymentResource(f.m), tc.opts...)
			if status != tc.status {
				t.Fatalf("status = %d; want %d", status, tc.status)
			}
			evs := rec.take()
			if tc.want == nil {
				if len(evs) != 0 {
					t.Errorf("accepted callback produced events %+v", evs)
				}
				return
			}
			want := 1
			if tc.verify != "" {
				want = 2
			}
			if len(evs) != want {
				t.Fatalf("got %d events; want exactly %d: %+v", len(evs), want, evs)
			}
			if tc.verify != "" {
				if v := evs[0]; v.Kind != tc.verify || v.MerchantID != f.m.ID || !errors.Is(v.Err, tc.want) || len(v.Serial) > 80 {
					t.Errorf("verification event = %+v; want %s for merchant %s", v, tc.verify, f.m.ID)
				}
			}
			ev := evs[len(evs)-1]
			if ev.Kind != wechatpay.EventCallbackRefused || ev.Status != tc.status || ev.MerchantID != f.m.ID || !errors.Is(ev.Err, tc.want) || ev.Time.IsZero() {
				t.Errorf("event = %+v; want callback_refused, status %d, merchant %s, wrapping %v", ev, tc.status, f.m.ID, tc.want)
			}
			if len(ev.Serial) > 80 || len(ev.RequestID) > 80 {
				t.Errorf("event carries an unbounded header: serial %d bytes, request ID %d bytes", len(ev.Serial), len(ev.RequestID))
			}
			if s := ev.Err.Error(); strings.Contains(s, f.m.APIv3Key) || strings.Contains(s, "out_trade_no") {
				t.Errorf("event error shows a secret or the payload: %s", s)
			}
		})
	}
}

// TestSlowEventHookDoesNotDelayCallbacks checks that a hook that blocks,
// wrapped with Async, does not hold back the answer to a refused callback,
// and that the events still arrive, in order, once it unblocks.
func TestSlowEventHookDoesNotDelayCallbacks(t *testing.T) {
	release := make(chan struct{})
	var rec eventRecorder
	slow := wechatpay.EventHook(func(ctx context.Context, ev wechatpay.Event) {
		<-release
		rec.hook(ctx, ev)
	})
	f := newFixture(t, fixtureOptions{warm: true, config: func(c *middleware.Config) { c.Events = slow.Async(16) }})
	start := time.Now()
	for range 3 {
		status, _ := f.notify(t, "", "", nil, wechatpaytest.NotifyProbe())
		if status != 401 {
			t.Fatalf("status = %d; want 401", status)
		}
	}
	// The hook is blocked until release: a refusal that waited for it
	// would never end. The bound leaves room for any load.
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("three refusals took %s with a blocked hook", d)
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		rec.mu.Lock()
		n := len(rec.events)
		rec.mu.Unlock()
		if n == 6 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	evs := rec.take()
	if len(evs) != 6 {
		t.Fatalf("got %d events after release; want 6 (a probe and a refusal each)", len(evs))
	}
	for i, ev := range evs {
		kind := wechatpay.EventSignatureProbe
		if i%2 == 1 {
			kind = wechatpay.EventCallbackRefused
		}
		if ev.Kind != kind || !errors.Is(ev.Err, wechatpay.ErrSignatureProbe) {
			t.Errorf("event %d = %+v; want %s of a probe", i, ev, kind)
		}
	}
}
