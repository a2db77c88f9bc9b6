package redisstore_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/redisstore"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// callbackFleet is n servers, each with its own Store, Redis connection
// and Guard, running the middleware in front of one shared handler.
type callbackFleet struct {
	srv     *wechatpaytest.Server
	m       wechatpaytest.Merchant
	servers []*httptest.Server

	fail atomic.Bool // the handler answers 500
	slow atomic.Bool // the handler takes 100 ms

	mu   sync.Mutex
	runs map[string]int // notification ID → handler runs
	errs []error
}

func newCallbackFleet(t *testing.T, r *redisServer, n int) *callbackFleet {
	f := &callbackFleet{srv: wechatpaytest.NewServer(), runs: map[string]int{}}
	t.Cleanup(f.srv.Close)
	f.m = f.srv.Merchant()
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := middleware.NotificationFrom(r.Context())
		f.mu.Lock()
		f.runs[n.ID]++
		f.mu.Unlock()
		if f.slow.Load() {
			time.Sleep(100 * time.Millisecond)
		}
		if f.fail.Load() {
			middleware.Fail(w, http.StatusInternalServerError, "database down")
		}
	})
	for range n {
		store, err := wechatpay.NewStore(wechatpay.StoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		if err := store.Register(f.srv.Config()); err != nil {
			t.Fatal(err)
		}
		mw := middleware.Notifications(middleware.Config{
			Keys: store, MerchantID: f.m.ID, APIv3Key: f.m.APIv3Key,
			Guard: &redisstore.Guard{Client: r.Client()}, // claims last DefaultClaimTTL: no load expires them
			ErrorHandler: func(_ *http.Request, err error) {
				f.mu.Lock()
				f.errs = append(f.errs, err)
				f.mu.Unlock()
			},
		})
		ts := httptest.NewServer(mw(handler))
		t.Cleanup(ts.Close)
		f.servers = append(f.servers, ts)
	}
	return f
}

// deliver posts notification id to server i and returns the status.
func (f *callbackFleet) deliver(t *testing.T, i int, id string) int {
	t.Helper()
	resp, err := f.srv.Notify(context.Background(), f.servers[i].URL, "", nil, wechatpaytest.NotifyID(id))
	if err != nil {
		t.Error(err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (f *callbackFleet) runsOf(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.runs[id]
}

func TestFleetCallbacks(t *testing.T) {
	r := startRedis(t)
	f := newCallbackFleet(t, r, 10)
	for i := range f.servers { // warm every instance's certificates
		if s := f.deliver(t, i, "EV-warm-"+string(rune('a'+i))); s != http.StatusNoContent {
			t.Fatalf("warm-up delivery to server %d answered %d", i, s)
		}
	}

	t.Run("same notification to 10 instances at once", func(t *testing.T) {
		f.slow.Store(true)
		defer f.slow.Store(false)
		var wg sync.WaitGroup
		statuses := make([]int, len(f.servers))
		for i := range f.servers {
			wg.Go(func() { statuses[i] = f.deliver(t, i, "EV-parallel") })
		}
		wg.Wait()
		if n := f.runsOf("EV-parallel"); n != 1 {
			t.Errorf("handler ran %d times; want exactly 1", n)
		}
		acked := 0
		for _, s := range statuses {
			switch s {
			case http.StatusNoContent:
				acked++
			case http.StatusServiceUnavailable:
			default:
				t.Errorf("a delivery answered %d; want 204 or 503", s)
			}
		}
		if acked < 1 {
			t.Errorf("statuses %v: none acknowledged", statuses)
		}
		// Any later delivery, anywhere, is acknowledged without a run.
		if s := f.deliver(t, 7, "EV-parallel"); s != http.StatusNoContent || f.runsOf("EV-parallel") != 1 {
			t.Errorf("redelivery answered %d after %d runs; want 204 and 1 run", s, f.runsOf("EV-parallel"))
		}
	})

	t.Run("handler failure releases", func(t *testing.T) {
		f.fail.Store(true)
		if s := f.deliver(t, 0, "EV-fail"); s != http.StatusInternalServerError {
			t.Errorf("failing handler answered %d; want 500", s)
		}
		f.fail.Store(false)
		if s := f.deliver(t, 1, "EV-fail"); s != http.StatusNoContent {
			t.Errorf("redelivery answered %d; want 204", s)
		}
		if n := f.runsOf("EV-fail"); n != 2 {
			t.Errorf("handler ran %d times; want 2 (failure, then the redelivery)", n)
		}
	})

	t.Run("crash between claim and done", func(t *testing.T) {
		// What a server that died while handling leaves in Redis: its
		// claim, never done nor released.
		ctx := context.Background()
		dead := &redisstore.Guard{Client: r.Client()}
		if st, err := dead.Claim(ctx, middleware.GuardKey(f.m.ID, "EV-crash"), "token-of-the-dead"); st != middleware.Claimed || err != nil {
			t.Fatalf("Claim = %v, %v", st, err)
		}
		if s := f.deliver(t, 2, "EV-crash"); s != http.StatusServiceUnavailable {
			t.Errorf("delivery during the dead claim answered %d; want 503 (not acknowledged)", s)
		}
		// The claim expires by itself after ClaimTTL; rather than wait a
		// minute, bring its expiry forward and wait until Redis drops it.
		key := "wechatpay:{" + f.m.ID + "}:notification:EV-crash"
		if ttl, err := r.Client().PTTL(ctx, key).Result(); err != nil || ttl <= 0 || ttl > middleware.DefaultClaimTTL {
			t.Fatalf("PTTL of the dead claim = %s, %v; want (0, %s]", ttl, err, middleware.DefaultClaimTTL)
		}
		if err := r.Client().PExpire(ctx, key, time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
		for r.Client().Exists(ctx, key).Val() != 0 {
			time.Sleep(time.Millisecond)
		}
		if s := f.deliver(t, 3, "EV-crash"); s != http.StatusNoContent {
			t.Errorf("delivery after the claim expired answered %d; want 204", s)
		}
		if n := f.runsOf("EV-crash"); n != 1 {
			t.Errorf("handler ran %d times; want 1", n)
		}
	})

	t.Run("Redis down lets notifications through", func(t *testing.T) {
		r.Kill()
		for i := range 3 {
			if s := f.deliver(t, i, "EV-down"); s != http.StatusNoContent {
				t.Errorf("delivery with Redis down answered %d; want 204", s)
			}
		}
		if n := f.runsOf("EV-down"); n != 3 {
			t.Errorf("handler ran %d times; want 3 (no guard, every delivery runs)", n)
		}
		f.mu.Lock()
		last := f.errs[len(f.errs)-1]
		f.mu.Unlock()
		var me *middleware.Error
		if !errors.As(last, &me) || me.Status != 0 {
			t.Errorf("ErrorHandler's last error = %v; want the guard's failure, not a refusal", last)
		}
		// Redis returns (empty): de-duplication resumes.
		r.Restart()
		f.deliver(t, 4, "EV-back")
		if s := f.deliver(t, 5, "EV-back"); s != http.StatusNoContent || f.runsOf("EV-back") != 1 {
			t.Errorf("after Redis returned: answered %d with %d runs; want 204 and 1", s, f.runsOf("EV-back"))
		}
	})
}
