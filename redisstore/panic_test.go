package redisstore_test

import (
	"bytes"
	"context"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/redisstore"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestGuardPanicAfter200 plays issue 16's attack 4 with the Redis Guard:
// a handler that sets 200 and then panics releases its claim in Redis,
// the panic reaches net/http, and the re-delivery runs the handler again.
func TestGuardPanicAfter200(t *testing.T) {
	r := startRedis(t)
	srv := wechatpaytest.NewServer()
	t.Cleanup(srv.Close)
	m := srv.Merchant()
	store, err := wechatpay.NewStore(wechatpay.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Register(srv.Config()); err != nil {
		t.Fatal(err)
	}
	var panicky atomic.Bool
	panicky.Store(true)
	var runs atomic.Int32
	mw := middleware.Notifications(middleware.Config{Keys: store, MerchantID: m.ID, APIv3Key: m.APIv3Key, Guard: &redisstore.Guard{Client: r.Client()}})
	ts := httptest.NewUnstartedServer(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runs.Add(1)
		w.WriteHeader(http.StatusOK)
		if panicky.Load() {
			panic("handler bug after 200")
		}
	})))
	var serverLog syncBuffer
	ts.Config.ErrorLog = log.New(&serverLog, "", 0)
	ts.Start()
	t.Cleanup(ts.Close)

	deliver := func() (int, error) {
		resp, err := srv.Notify(context.Background(), ts.URL, "", nil, wechatpaytest.NotifyID("EV-panic-200"))
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if status, err := deliver(); err == nil {
		t.Fatalf("a delivery whose handler panicked was answered %d; want the connection aborted", status)
	}
	if !strings.Contains(serverLog.String(), "handler bug after 200") {
		t.Errorf("net/http's log = %q; want the handler's panic", serverLog.String())
	}
	keys, err := r.Client().Keys(context.Background(), "*notification*").Result()
	if err != nil || len(keys) != 0 {
		t.Errorf("Redis notification keys after the panic = %v, %v; want none (the claim released)", keys, err)
	}
	panicky.Store(false)
	if status, err := deliver(); err != nil || status != http.StatusOK {
		t.Fatalf("re-delivery after the panic: %d, %v; want the handler's 200", status, err)
	}
	if status, err := deliver(); err != nil || status != http.StatusNoContent {
		t.Errorf("third delivery: %d, %v; want 204 (done)", status, err)
	}
	if n := runs.Load(); n != 2 {
		t.Errorf("handler ran %d times; want 2", n)
	}
}
