package wechatpay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestEmitWithoutHookAllocatesNothing is the "events cost nothing when no
// hook is set" promise, for an event carrying an error and serials.
func TestEmitWithoutHookAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	err := ErrBadSignature
	serials := []string{"A", "B"}
	var h EventHook
	n := testing.AllocsPerRun(1000, func() {
		emit(ctx, h, Event{Kind: EventCertificateDownload, MerchantID: "1900000001", Serials: serials, Duration: time.Second, Err: err})
	})
	if n != 0 {
		t.Errorf("emit with no hook allocates %v times per call; want 0", n)
	}
}

func BenchmarkEmitNoHook(b *testing.B) {
	ctx := context.Background()
	var h EventHook
	b.ReportAllocs()
	for b.Loop() {
		emit(ctx, h, Event{Kind: EventBadSignature, MerchantID: "1900000001", Serial: "5157F09EFDC096DE15EBE81A47057A7232F1B8E1", Err: ErrBadSignature})
	}
}

func BenchmarkEmitHook(b *testing.B) {
	ctx := context.Background()
	var n int
	h := EventHook(func(context.Context, Event) { n++ })
	b.ReportAllocs()
	for b.Loop() {
		emit(ctx, h, Event{Kind: EventBadSignature, MerchantID: "1900000001", Serial: "5157F09EFDC096DE15EBE81A47057A7232F1B8E1", Err: ErrBadSignature})
	}
}

func TestEmitStampsTime(t *testing.T) {
	var got Event
	emit(context.Background(), func(_ context.Context, ev Event) { got = ev }, Event{Kind: EventFailover})
	if got.Kind != EventFailover || time.Since(got.Time) > time.Minute || got.Time.IsZero() {
		t.Errorf("event = %+v; want failover stamped now", got)
	}
	fixed := time.Unix(1554208460, 0)
	emit(context.Background(), func(_ context.Context, ev Event) { got = ev }, Event{Kind: EventFailover, Time: fixed})
	if !got.Time.Equal(fixed) {
		t.Errorf("Time = %s; want the given %s kept", got.Time, fixed)
	}
}

func TestVerifyEventKind(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&VerifyError{Err: ErrBadSignature}, EventBadSignature},
		{&VerifyError{Err: fmt.Errorf("%w: 400s", ErrClockSkew)}, EventClockSkew},
		{&VerifyError{Err: ErrSignatureProbe}, EventSignatureProbe},
		{&VerifyError{Err: ErrUnknownSerial}, EventUnknownSerial},
		{&VerifyError{Err: ErrMissingSignature}, EventVerifyFailed},
		{&VerifyError{Err: ErrExpiredKey}, EventVerifyFailed},
		{context.DeadlineExceeded, EventVerifyFailed},
	}
	for _, tc := range tests {
		if got := verifyEventKind(tc.err); got != tc.want {
			t.Errorf("verifyEventKind(%v) = %s; want %s", tc.err, got, tc.want)
		}
	}
}

// TestAsyncHook checks that an Async hook never blocks its caller, even
// when the hook is stuck, delivers in order once it can, drops past its
// buffer and says how many it dropped, and that its goroutine ends when
// the queue is empty (the package's TestMain would catch it otherwise).
func TestAsyncHook(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 100)
	var mu sync.Mutex
	var got []Event
	done := make(chan struct{}, 100)
	slow := EventHook(func(_ context.Context, ev Event) {
		entered <- struct{}{}
		<-release
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
		done <- struct{}{}
	})
	h := slow.Async(4)
	ctx, cancel := context.WithCancel(context.Background())
	start := time.Now()
	for i := range 10 {
		emit(ctx, h, Event{Kind: EventFailover, Status: i})
		if i == 0 {
			<-entered // the hook is now stuck on the first event
		}
	}
	cancel()                                        // the hook gets the events with the caller's values, not its cancellation
	if d := time.Since(start); d > 30*time.Second { // a blocked emit would never return
		t.Fatalf("10 events took %s with a stuck hook; want no blocking", d)
	}
	emit(context.Background(), h, Event{Kind: EventFailback}) // dropped too: the queue is full
	close(release)
	wait := func(n int) {
		for range n {
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("events were not delivered after the hook unblocked")
			}
		}
	}
	wait(5) // the first event and the 4 queued; 6 were dropped
	emit(context.Background(), h, Event{Kind: EventFailback})
	wait(2) // the dropped report, then the failback
	mu.Lock()
	defer mu.Unlock()
	var kinds []string
	for _, ev := range got {
		kinds = append(kinds, fmt.Sprintf("%s/%d", ev.Kind, ev.Status))
	}
	want := "failover/0 failover/1 failover/2 failover/3 failover/4 events_dropped/0 failback/0"
	if s := strings.Join(kinds, " "); s != want {
		t.Fatalf("delivered %s; want %s", s, want)
	}
	if err := got[5].Err; err == nil || !strings.Contains(err.Error(), "6 events dropped") {
		t.Errorf("dropped report = %v; want 6 events dropped", err)
	}
	if EventHook(nil).Async(1) != nil {
		t.Error("nil.Async() is not nil")
	}
}

// TestSlogEvents checks the slog adapter: message, level by outcome, one
// attribute per field set, nothing else.
func TestSlogEvents(t *testing.T) {
	var buf bytes.Buffer
	h := SlogEvents(slog.New(slog.NewJSONHandler(&buf, nil)))
	when := time.Date(2026, 11, 23, 20, 0, 0, 0, time.UTC)
	h(context.Background(), Event{Kind: EventCertificateDownload, Time: when, MerchantID: "1900000001", Serials: []string{"AA", "BB"}, Host: "api.mch.weixin.qq.com", Duration: 120 * time.Millisecond})
	h(context.Background(), Event{Kind: EventFailover, Time: when, Host: "api2.mch.weixin.qq.com", Err: errors.New("dial tcp: connection refused")})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("logged %d lines; want 2:\n%s", len(lines), buf.String())
	}
	var a, b map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &b); err != nil {
		t.Fatal(err)
	}
	if a["msg"] != "wechatpay: certificate_download" || a["level"] != "INFO" || a["merchant"] != "1900000001" ||
		fmt.Sprint(a["serials"]) != "[AA BB]" || a["duration"] != float64(120*time.Millisecond) || a["time"] != "2026-11-23T20:00:00Z" {
		t.Errorf("download logged as %s", lines[0])
	}
	if _, ok := a["error"]; ok {
		t.Errorf("successful download logged an error: %s", lines[0])
	}
	if b["msg"] != "wechatpay: failover" || b["level"] != "WARN" || b["host"] != "api2.mch.weixin.qq.com" || b["error"] != "dial tcp: connection refused" {
		t.Errorf("failover logged as %s", lines[1])
	}
	if _, ok := b["merchant"]; ok {
		t.Errorf("empty field logged: %s", lines[1])
	}
	if SlogEvents(nil) != nil {
		t.Error("SlogEvents(nil) is not nil")
	}
	// A disabled level costs nothing.
	quiet := SlogEvents(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError})))
	buf.Reset()
	quiet(context.Background(), Event{Kind: EventFailover, Err: errors.New("x")})
	if buf.Len() != 0 {
		t.Errorf("a Warn event was logged by an Error-level logger: %s", buf.String())
	}
}
