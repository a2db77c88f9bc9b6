package wechatpay

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

type eventLog struct {
	mu  sync.Mutex
	evs []Event
}

func (l *eventLog) hook(_ context.Context, ev Event) {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
}

// take returns the events so far, and forgets them.
func (l *eventLog) take() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	evs := l.evs
	l.evs = nil
	return evs
}

func kinds(evs []Event) string {
	var k []string
	for _, ev := range evs {
		k = append(k, ev.Kind)
	}
	return strings.Join(k, ",")
}

// TestStoreAndVerifierEvents: each occurrence reaches the hook exactly
// once, as its own class, with what an operator needs and nothing secret.
func TestStoreAndVerifierEvents(t *testing.T) {
	var log eventLog
	f := newFake(t)
	s := newTestStore(t, StoreOptions{RefreshInterval: time.Hour, Events: log.hook}, f, "1900000001")
	defer s.Close()
	clock := newTestClock(s, f)
	v := &Verifier{MerchantID: "1900000001", Keys: s, Events: log.hook, now: clock.Now}
	ctx := context.Background()
	serial := wire.CertSerial(f.certs[0].cert)
	body := []byte(`{"trade_state":"SUCCESS"}`)
	signed := func() ([]byte, map[string][]string) {
		return body, signedHeader(f.certs[0].key, serial, clock.Now(), body)
	}

	steps := []struct {
		name string
		do   func()
		want string
	}{
		{"first verification downloads once", func() {
			b, h := signed()
			if err := v.Verify(ctx, h, b); err != nil {
				t.Fatal(err)
			}
		}, EventCertificateDownload},
		{"a cached verification is silent", func() {
			b, h := signed()
			if err := v.Verify(ctx, h, b); err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"bad signature", func() {
			_, h := signed()
			v.Verify(ctx, h, []byte(`{"trade_state":"REFUND"}`))
		}, EventBadSignature},
		{"clock skew", func() {
			h := signedHeader(f.certs[0].key, serial, clock.Now().Add(-10*time.Minute), body)
			v.Verify(ctx, h, body)
		}, EventClockSkew},
		{"probe", func() {
			_, h := signed()
			h["Wechatpay-Signature"] = []string{"WECHATPAY/SIGNTEST/abc"}
			v.Verify(ctx, h, body)
		}, EventSignatureProbe},
		{"unknown serial, refused a download by the interval", func() {
			h := signedHeader(f.certs[0].key, strings.Repeat("AB", 20), clock.Now(), body)
			v.Verify(ctx, h, body)
		}, EventRateLimited + "," + EventUnknownSerial},
		{"missing headers", func() {
			v.Verify(ctx, map[string][]string{}, body)
		}, EventVerifyFailed},
		{"failed background refresh", func() {
			f.mu.Lock()
			f.status = 500
			f.mu.Unlock()
			clock.advance(2 * time.Hour)
			b, h := signed()
			if err := v.Verify(ctx, h, b); err != nil {
				t.Fatalf("a stale key stopped serving: %v", err)
			}
			s.Close() // waits for the refresh
		}, EventCertificateDownload + "," + EventRefreshFailed},
	}
	for _, st := range steps {
		st.do()
		evs := log.take()
		if got := kinds(evs); got != st.want {
			t.Errorf("%s: events %q; want %q", st.name, got, st.want)
		}
		for _, ev := range evs {
			if ev.Time.IsZero() || ev.MerchantID != "1900000001" {
				t.Errorf("%s: event %+v lacks its time or merchant", st.name, ev)
			}
			if ev.Err != nil && strings.Contains(ev.Err.Error(), testAPIv3Key) {
				t.Errorf("%s: event shows the APIv3 key", st.name)
			}
		}
		if st.name == "first verification downloads once" && len(evs) == 1 {
			if ev := evs[0]; ev.Err != nil || len(ev.Serials) != 1 || ev.Serials[0] != serial || ev.Host != "api.mch.weixin.qq.com" {
				t.Errorf("download event = %+v; want success, serial %s, host", ev, serial)
			}
		}
		if st.name == "failed background refresh" && len(evs) == 2 {
			if !errors.Is(evs[0].Err, ErrCertificateDownload) || !errors.Is(evs[1].Err, ErrCertificateDownload) {
				t.Errorf("refresh events carry %v and %v; want download errors", evs[0].Err, evs[1].Err)
			}
		}
	}
}
