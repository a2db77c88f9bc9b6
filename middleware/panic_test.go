package middleware_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// TestPanicAfter200ReleasesClaim plays issue 16's attack 4 over a real
// server: a handler that sets 200 and then panics. The panic reaches
// net/http (which logs it and aborts the answer), the claim is released
// whatever status was set, and WeChat Pay's re-delivery runs the handler
// again instead of being acknowledged unprocessed.
func TestPanicAfter200ReleasesClaim(t *testing.T) {
	var panicky atomic.Bool
	panicky.Store(true)
	b := newBodyServer(t, func(c *middleware.Config) { c.Guard = middleware.NewMemoryGuard(16) }, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		if panicky.Load() {
			panic("handler bug after 200")
		}
	})
	deliver := func() (int, error) {
		resp, err := b.srv.Notify(context.Background(), b.ts.URL, "", nil, wechatpaytest.NotifyID("EV-panic-200"))
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if status, err := deliver(); err == nil {
		t.Fatalf("a delivery whose handler panicked was answered %d; want the connection aborted", status)
	}
	if log := b.serverLog.String(); !strings.Contains(log, "handler bug after 200") {
		t.Errorf("net/http's log = %q; want the handler's panic", log)
	}
	panicky.Store(false)
	if status, err := deliver(); err != nil || status != http.StatusOK {
		t.Fatalf("re-delivery after the panic: %d, %v; want the handler's 200", status, err)
	}
	if n := len(b.ran); n != 2 {
		t.Errorf("handler ran %d times; want 2 (the panic released the claim)", n)
	}
	// Now it is done: a third delivery is acknowledged without the handler.
	if status, err := deliver(); err != nil || status != http.StatusNoContent || len(b.ran) != 2 {
		t.Errorf("third delivery: %d, %v, handler runs %d; want 204 and still 2", status, err, len(b.ran))
	}
}
