package redisstore_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/redisstore"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// fleet is a sandbox with many merchants and the instances (Stores) of a
// merchant platform, each with its own Redis connection.
type fleet struct {
	srv       *wechatpaytest.Server
	merchants []string
	serials   map[string]string // merchant → the serial its responses carry
}

func newFleet(t testing.TB, merchants int) *fleet {
	srv := wechatpaytest.NewServer()
	t.Cleanup(srv.Close)
	f := &fleet{srv: srv, serials: map[string]string{}}
	for i := range merchants {
		id := srv.Merchant().ID
		if i > 0 {
			id = srv.AddMerchant().ID
		}
		f.merchants = append(f.merchants, id)
		f.serials[id] = srv.SigningSerial(id)
	}
	return f
}

// instance is one server of the platform.
type instance struct {
	store     *wechatpay.Store
	errs      *errList
	downloads atomic.Int64 // certificate downloads this instance made
}

type errList struct {
	mu   sync.Mutex
	errs []error
}

func (e *errList) add(err error) {
	e.mu.Lock()
	e.errs = append(e.errs, err)
	e.mu.Unlock()
}

func (e *errList) list() []error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]error(nil), e.errs...)
}

// start makes an instance sharing r (nil: no Redis), with every merchant
// registered.
func (f *fleet) start(t testing.TB, r *redisServer, opts wechatpay.StoreOptions) *instance {
	in := &instance{errs: &errList{}}
	if r != nil {
		rdb := r.Client()
		if err := rdb.Ping(context.Background()).Err(); err != nil { // dial before measuring
			t.Fatal(err)
		}
		opts.Cache = &redisstore.Cache{Client: rdb}
	}
	opts.CacheErrorHandler = in.errs.add
	opts.Events = func(_ context.Context, ev wechatpay.Event) {
		if ev.Kind == wechatpay.EventCertificateDownload {
			in.downloads.Add(1)
		}
	}
	s, err := wechatpay.NewStore(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, id := range f.merchants {
		if err := s.Register(f.srv.MerchantConfig(id)); err != nil {
			t.Fatal(err)
		}
	}
	in.store = s
	return in
}

// verifyAll looks up every merchant's signing key on in, as the first
// verification of each merchant does, with 4 workers in a random order.
func (f *fleet) verifyAll(t testing.TB, in *instance, merchants []string) {
	f.verifyAllWith(t, in, merchants, 4)
}

func (f *fleet) verifyAllWith(t testing.TB, in *instance, merchants []string, workers int) {
	order := append([]string(nil), merchants...)
	rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	work := make(chan string)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for id := range work {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				_, err := in.store.PublicKey(ctx, id, f.serials[id])
				cancel()
				if err != nil {
					t.Errorf("merchant %s: %v", id, err)
				}
			}
		})
	}
	for _, id := range order {
		work <- id
	}
	close(work)
	wg.Wait()
}

// TestFleetColdStart: 20 instances sharing one Redis start at once and
// each verifies a response of each of 1,000 merchants. The fleet
// downloads each merchant's certificates about once, not once per
// instance; a restarted fleet downloads nothing.
func TestFleetColdStart(t *testing.T) {
	const instances, merchants = 20, 1000
	r := startRedis(t)
	f := newFleet(t, merchants)

	run := func() (downloads int, fleet []*instance) {
		before := f.srv.CertificateDownloads()
		fleet = make([]*instance, instances)
		for i := range fleet {
			fleet[i] = f.start(t, r, wechatpay.StoreOptions{Size: merchants})
		}
		var wg sync.WaitGroup
		for _, in := range fleet {
			// One worker per instance: 20 lookups at a time over 2 cores
			// (more would starve the Redis client's goroutines past its
			// 500 ms bound under the race detector).
			wg.Go(func() { f.verifyAllWith(t, in, f.merchants, 1) })
		}
		wg.Wait()
		for _, in := range fleet {
			for _, st := range in.store.Status() {
				if len(st.Keys) == 0 {
					t.Errorf("merchant %s has no keys", st.MerchantID)
				}
			}
		}
		return f.srv.CertificateDownloads() - before, fleet
	}

	start := time.Now()
	cold, fleet := run()
	t.Logf("cold start: %d instances × %d merchants: %d certificate downloads (%s)", instances, merchants, cold, time.Since(start).Round(time.Millisecond))
	// Each merchant at least once; far fewer than once per instance. (An
	// instance also downloads by itself when its cache calls fail or the
	// lock's holder takes over 2 s, which a loaded machine can cause, so
	// the bound is loose; the warm restart below is exact.)
	if cold < merchants || cold > instances*merchants/4 {
		t.Errorf("cold start caused %d downloads; want at least %d and far fewer than %d (one per instance)", cold, merchants, instances*merchants)
	}
	checkErrs(t, fleetErrs(fleet))

	start = time.Now()
	warm, fleet := run() // the whole fleet restarted: new Stores, the same Redis
	t.Logf("warm restart: %d certificate downloads (%s)", warm, time.Since(start).Round(time.Millisecond))
	// Every merchant's download is in Redis: an instance downloads only
	// after a Redis call of its own failed (over its 500 ms bound on a
	// loaded machine), which it reports and which makes it leave Redis
	// alone for a second. An instance with no cache error downloads
	// nothing, however loaded the machine.
	for i, in := range fleet {
		if n, errs := in.downloads.Load(), in.errs.list(); n > 0 && len(errs) == 0 {
			t.Errorf("warm restart: instance %d made %d downloads with no cache error; want 0 (the cache has every merchant)", i, n)
		}
	}
	checkErrs(t, fleetErrs(fleet))
}

func fleetErrs(fleet []*instance) []error {
	var errs []error
	for _, in := range fleet {
		errs = append(errs, in.errs.list()...)
	}
	return errs
}

// TestFleetRedisStops: Redis killed mid-run, then slow (stopped), then
// back: verification goes on with direct downloads throughout, and
// sharing resumes when Redis is back.
func TestFleetRedisStops(t *testing.T) {
	r := startRedis(t)
	f := newFleet(t, 40)
	a, b, c := f.start(t, r, wechatpay.StoreOptions{}), f.start(t, r, wechatpay.StoreOptions{}), f.start(t, r, wechatpay.StoreOptions{})
	part := func(i int) []string { return f.merchants[i*10 : (i+1)*10] }
	downloads := func(step func()) int {
		before := f.srv.CertificateDownloads()
		step()
		return f.srv.CertificateDownloads() - before
	}

	if n := downloads(func() { f.verifyAll(t, a, part(0)); f.verifyAll(t, b, part(0)) }); n != 10 {
		t.Errorf("Redis up: %d downloads for 10 merchants on 2 instances; want 10", n)
	}
	checkErrs(t, append(a.errs.list(), b.errs.list()...))

	r.Kill()
	if n := downloads(func() { f.verifyAll(t, c, part(0)); f.verifyAll(t, a, part(1)) }); n != 20 {
		t.Errorf("Redis down: %d downloads; want 20 (each instance for itself)", n)
	}
	if len(c.errs.list()) == 0 || len(a.errs.list()) == 0 {
		t.Error("Redis down: no cache errors reported")
	}
	for _, err := range c.errs.list() {
		if errors.Is(err, wechatpay.ErrCertificateDownload) {
			t.Errorf("Redis down reported as a refused entry: %v", err)
		}
	}

	// Slow: a server that accepts connections but never answers.
	r.Restart()
	r.Stop()
	// Each lookup returns (the Store bounds every Redis call; the test
	// would hang otherwise) with a download of its own.
	if n := downloads(func() { f.verifyAll(t, b, part(2)) }); n != 10 {
		t.Errorf("Redis hanging: %d downloads; want 10", n)
	}
	r.Continue()
	// Back (the restarted server is empty): once the Stores' one-second
	// backoff after a failure has passed, sharing resumes.
	time.Sleep(1100 * time.Millisecond)
	if n := downloads(func() { f.verifyAll(t, a, part(3)); f.verifyAll(t, b, part(3)); f.verifyAll(t, c, part(3)) }); n != 10 {
		t.Errorf("Redis back: %d downloads for 10 merchants on 3 instances; want 10", n)
	}
}

// checkErrs fails on any cache entry refused (nothing but genuine
// downloads was ever written), and logs other cache errors (a Redis call
// over its 500 ms bound on a loaded machine), which only cost a download.
func checkErrs(t *testing.T, errs []error) {
	t.Helper()
	for _, err := range errs {
		if errors.Is(err, wechatpay.ErrCertificateDownload) {
			t.Errorf("a genuine entry was refused: %v", err)
		}
	}
	if len(errs) > 0 {
		t.Logf("%d cache errors (each cost at most a download), the first: %v", len(errs), errs[0])
	}
}

// TestFleetLockHolderDies: a Store that finds the download lock taken by
// an instance that died (it never puts a download nor unlocks) waits
// briefly for the cache, then downloads by itself rather than fail.
func TestFleetLockHolderDies(t *testing.T) {
	r := startRedis(t)
	f := newFleet(t, 1)
	id := f.merchants[0]
	dead := &redisstore.Cache{Client: r.Client()}
	if _, ok, err := dead.TryLock(context.Background(), id); !ok || err != nil {
		t.Fatalf("TryLock = %t, %v", ok, err)
	}
	// FetchTimeout 2 s makes the wait for the lock's holder 1 s.
	in := f.start(t, r, wechatpay.StoreOptions{FetchTimeout: 2 * time.Second})
	start := time.Now()
	f.verifyAll(t, in, f.merchants)
	took := time.Since(start)
	if n := f.srv.CertificateDownloads(); n != 1 {
		t.Errorf("%d downloads; want 1, by the waiting Store itself", n)
	}
	if took < time.Second { // a lower bound: load only makes it longer
		t.Errorf("the lookup took %s; want the 1 s wait for the lock's holder first", took.Round(time.Millisecond))
	}
	checkErrs(t, in.errs.list())
	// Its download is shared: another Store needs none.
	other := f.start(t, r, wechatpay.StoreOptions{})
	f.verifyAll(t, other, f.merchants)
	if n := f.srv.CertificateDownloads(); n != 1 {
		t.Errorf("%d downloads after a second instance; want still 1", n)
	}
}
