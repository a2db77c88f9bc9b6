package wechatpay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

func newTestStore(t testing.TB, opts StoreOptions, f *fakeWeChat, ids ...string) *Store {
	t.Helper()
	s, err := NewStore(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if err := s.Register(testConfig(id, f)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestStoreRefreshAhead(t *testing.T) {
	testKey(0)
	synctest.Test(t, func(t *testing.T) {
		f := newFake(t)
		s := newTestStore(t, StoreOptions{RefreshInterval: time.Hour}, f, "1900000001")
		defer s.Close()
		serial := wire.CertSerial(f.certs[0].cert)
		ctx := context.Background()
		if _, err := s.PublicKey(ctx, "1900000001", serial); err != nil {
			t.Fatal(err)
		}
		if got := f.downloads.Load(); got != 1 {
			t.Fatalf("downloads after first lookup = %d; want 1", got)
		}
		// A new certificate is listed ahead of use.
		now := time.Now()
		f.mu.Lock()
		f.certs = append(f.certs, fakeCert{newTestCert(t, testKey(2), 2, now.Add(-time.Minute), now.Add(6*365*24*time.Hour)), testKey(2)})
		f.mu.Unlock()
		next := wire.CertSerial(f.certs[1].cert)

		time.Sleep(2 * time.Hour)
		// Stale: the cached key is served at once, and one refresh runs.
		for range 100 {
			if _, err := s.PublicKey(ctx, "1900000001", serial); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if got := f.downloads.Load(); got != 2 {
			t.Fatalf("downloads after 100 stale hits = %d; want 2", got)
		}
		// The certificate listed ahead is now known without a download.
		if _, err := s.PublicKey(ctx, "1900000001", next); err != nil {
			t.Fatalf("PublicKey(next) = %v", err)
		}
		if got := f.downloads.Load(); got != 2 {
			t.Errorf("downloads after rotation = %d; want 2", got)
		}
		c, err := s.Newest(ctx, "1900000001")
		if err != nil || wire.CertSerial(c) != next {
			t.Errorf("Newest = %v, %v; want %s", c, err, next)
		}
	})
}

func TestStoreMinRefreshInterval(t *testing.T) {
	testKey(0)
	synctest.Test(t, func(t *testing.T) {
		f := newFake(t)
		s := newTestStore(t, StoreOptions{}, f, "1900000001")
		defer s.Close()
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(1, 2))
		forged := func() string { return fmt.Sprintf("%040X", rng.Uint64()) }
		for i := range 10000 {
			_, err := s.PublicKey(ctx, "1900000001", forged())
			if !errors.Is(err, ErrUnknownSerial) {
				t.Fatalf("lookup %d of a forged serial: %v; want ErrUnknownSerial", i, err)
			}
		}
		if got := f.downloads.Load(); got != 1 {
			t.Fatalf("downloads for 10,000 forged serials in one interval = %d; want 1", got)
		}
		time.Sleep(DefaultMinRefreshInterval + time.Second)
		for range 1000 {
			s.PublicKey(ctx, "1900000001", forged())
		}
		if got := f.downloads.Load(); got != 2 {
			t.Fatalf("downloads after the interval = %d; want 2", got)
		}
		// A failed download also counts: no second try within the interval.
		time.Sleep(DefaultMinRefreshInterval + time.Second)
		f.mu.Lock()
		f.status = 500
		f.mu.Unlock()
		_, err := s.PublicKey(ctx, "1900000001", forged())
		if !errors.Is(err, ErrCertificateDownload) {
			t.Fatalf("lookup with a failing endpoint: %v; want ErrCertificateDownload", err)
		}
		for range 100 {
			s.PublicKey(ctx, "1900000001", forged())
		}
		// Within the interval the last failure is reported, not retried.
		_, err = s.PublicKey(ctx, "1900000001", forged())
		if !errors.Is(err, ErrUnknownSerial) || !errors.Is(err, ErrCertificateDownload) || !strings.Contains(err.Error(), "HTTP 500") {
			t.Errorf("lookup after a failed download: %v; want ErrUnknownSerial carrying the last failure", err)
		}
		if got := f.downloads.Load(); got != 3 {
			t.Fatalf("downloads after a failure = %d; want 3", got)
		}
		// The cached certificate survived the failing endpoint.
		if _, err := s.PublicKey(ctx, "1900000001", wire.CertSerial(f.certs[0].cert)); err != nil {
			t.Errorf("cached certificate after failures: %v", err)
		}
	})
}

func TestStoreFetchTimeoutAndCancel(t *testing.T) {
	testKey(0)
	synctest.Test(t, func(t *testing.T) {
		f := newFake(t)
		f.hang = true
		s := newTestStore(t, StoreOptions{FetchTimeout: 3 * time.Second}, f, "1900000001")
		defer s.Close()
		serial := wire.CertSerial(f.certs[0].cert)

		var wg sync.WaitGroup
		errs := make([]error, 10)
		cctx, cancel := context.WithCancel(context.Background())
		start := time.Now()
		for i := range errs {
			ctx := context.Background()
			if i == 0 {
				ctx = cctx
			}
			wg.Go(func() { _, errs[i] = s.PublicKey(ctx, "1900000001", serial) })
		}
		time.Sleep(time.Second)
		cancel()
		wg.Wait()
		if !errors.Is(errs[0], context.Canceled) {
			t.Errorf("cancelled waiter: %v; want context.Canceled", errs[0])
		}
		for i, err := range errs[1:] {
			if !errors.Is(err, ErrCertificateDownload) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("waiter %d: %v; want a download error wrapping context.DeadlineExceeded", i+1, err)
			}
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("waiters gave up after %s; want the 3s FetchTimeout", d)
		}
		if got := f.downloads.Load(); got != 1 {
			t.Errorf("downloads = %d; want 1", got)
		}
	})
}

func TestStoreWaiterCancelDoesNotFailOthers(t *testing.T) {
	testKey(0)
	synctest.Test(t, func(t *testing.T) {
		f := newFake(t)
		f.hang = true
		s := newTestStore(t, StoreOptions{}, f, "1900000001")
		defer s.Close()
		serial := wire.CertSerial(f.certs[0].cert)
		cctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var errCancelled, errOther error
		wg.Go(func() { _, errCancelled = s.PublicKey(cctx, "1900000001", serial) })
		synctest.Wait() // the first caller's download is hanging
		wg.Go(func() { _, errOther = s.PublicKey(context.Background(), "1900000001", serial) })
		synctest.Wait()
		cancel()
		synctest.Wait()
		wg.Wait()
		if !errors.Is(errCancelled, context.Canceled) {
			t.Errorf("cancelled caller: %v; want context.Canceled", errCancelled)
		}
		// The other waiter shares the hanging download, which ends at the
		// fetch timeout, not at the first caller's cancellation.
		if !errors.Is(errOther, context.DeadlineExceeded) {
			t.Errorf("other caller: %v; want the shared download's own timeout", errOther)
		}
		if got := f.downloads.Load(); got != 1 {
			t.Errorf("downloads = %d; want 1", got)
		}
	})
}

func TestStoreExpiredCertificateNeverUsed(t *testing.T) {
	testKey(0)
	synctest.Test(t, func(t *testing.T) {
		now := time.Now()
		f := newFake(t)
		f.certs = []fakeCert{{newTestCert(t, testKey(1), 7, now.Add(-time.Hour), now.Add(time.Hour)), testKey(1)}}
		s := newTestStore(t, StoreOptions{}, f, "1900000001")
		defer s.Close()
		serial := wire.CertSerial(f.certs[0].cert)
		if _, err := s.PublicKey(context.Background(), "1900000001", serial); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Hour)
		k, err := s.PublicKey(context.Background(), "1900000001", serial)
		if k != nil || err == nil {
			t.Fatalf("PublicKey of an expired certificate = %v, %v; want an error", k, err)
		}
		if _, err := s.Newest(context.Background(), "1900000001"); err == nil {
			t.Error("Newest with only an expired certificate succeeded")
		}
	})
}

func TestStoreOptionsChecked(t *testing.T) {
	for _, opts := range []StoreOptions{
		{RefreshInterval: 12 * time.Hour},
		{RefreshInterval: -time.Second},
		{Size: -1},
		{MinRefreshInterval: -1},
		{FetchTimeout: -1},
	} {
		if _, err := NewStore(opts); err == nil {
			t.Errorf("NewStore(%+v) succeeded; want an error", opts)
		}
	}
}

func TestRegisterNamesEveryProblem(t *testing.T) {
	s, _ := NewStore(StoreOptions{})
	err := s.Register(Config{APIv3Key: "short", BaseURL: "ftp://x", PublicKeyID: "KEY"})
	if err == nil {
		t.Fatal("Register of an empty config succeeded")
	}
	for _, want := range []string{"MerchantID", "CertificateSerial", "PrivateKey", "32 bytes", "BaseURL", "PublicKeyID and PublicKey"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Register error %q does not mention %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "short") {
		t.Errorf("Register error %q contains the APIv3 key", err)
	}
}
