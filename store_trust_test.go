package wechatpay

// Attacks on the Store's download budget and on what it trusts: expired
// and forged serials, eviction, failures, re-registration races, panics in
// user code, clock steps, voided and early-retired certificates.

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// testClock is the Store's clock in these tests: a wall clock that can be
// stepped on its own, and a monotonic one that only moves forward.
type testClock struct {
	mu   sync.Mutex
	wall time.Time
	mono time.Duration
}

func newTestClock(s *Store, f *fakeWeChat) *testClock {
	c := &testClock{wall: time.Now()}
	s.now, s.mono = c.Now, c.Mono
	if f != nil {
		f.mu.Lock()
		f.now = c.Now
		f.mu.Unlock()
	}
	return c
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wall
}

func (c *testClock) Mono() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mono
}

// advance moves both clocks.
func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.wall, c.mono = c.wall.Add(d), c.mono+d
	c.mu.Unlock()
}

// stepWall moves the wall clock alone, as an NTP correction does.
func (c *testClock) stepWall(d time.Duration) {
	c.mu.Lock()
	c.wall = c.wall.Add(d)
	c.mu.Unlock()
}

// fakeWithCerts returns a fake listing one certificate per validity window.
func fakeWithCerts(t *testing.T, windows ...[2]time.Time) *fakeWeChat {
	f := &fakeWeChat{apiv3Key: testAPIv3Key, body: []byte(`{"ok":true}`)}
	for i, w := range windows {
		f.certs = append(f.certs, fakeCert{newTestCert(t, testKey(i+1), int64(i+1), w[0], w[1]), testKey(i + 1)})
	}
	return f
}

func TestStoreExpiredOnlyCertificateDoesNotLoop(t *testing.T) {
	now := time.Now()
	f := fakeWithCerts(t, [2]time.Time{now.Add(-time.Hour), now.Add(time.Hour)})
	s := newTestStore(t, StoreOptions{}, f, "1900000001")
	defer s.Close()
	clock := newTestClock(s, f)
	serial := wire.CertSerial(f.certs[0].cert)
	if _, err := s.PublicKey(context.Background(), "1900000001", serial); err != nil {
		t.Fatal(err)
	}
	clock.advance(2 * time.Hour) // past the only certificate's NotAfter
	for i := range 20 {
		_, err := s.PublicKey(context.Background(), "1900000001", serial)
		if err == nil {
			t.Fatalf("lookup %d of an expired serial succeeded", i)
		}
		clock.advance(50 * time.Millisecond)
	}
	if got := f.downloads.Load(); got != 2 {
		t.Errorf("20 lookups of an expired serial in one second: %d downloads in all; want 2 (the first, and one for the expiry)", got)
	}
}

func TestStoreSetsCachedAsUnits(t *testing.T) {
	// Two merchants, each with two listed certificates (a rotation
	// overlap), in a Store that holds two sets: no lookup pattern evicts a
	// sibling certificate and forces downloads.
	now := time.Now()
	f := fakeWithCerts(t, [2]time.Time{now.Add(-time.Hour), now.Add(time.Hour * 24 * 365)}, [2]time.Time{now.Add(-time.Minute), now.Add(time.Hour * 24 * 400)})
	s := newTestStore(t, StoreOptions{Size: 2}, f, "1900000001", "1900000002")
	defer s.Close()
	newTestClock(s, f)
	serials := []string{wire.CertSerial(f.certs[0].cert), wire.CertSerial(f.certs[1].cert)}
	for i := range 100 {
		for _, id := range []string{"1900000001", "1900000002"} {
			if _, err := s.PublicKey(context.Background(), id, serials[i%2]); err != nil {
				t.Fatalf("lookup %d for %s: %v", i, id, err)
			}
			if _, err := s.Newest(context.Background(), id); err != nil {
				t.Fatalf("Newest %d for %s: %v", i, id, err)
			}
		}
	}
	if got := f.downloads.Load(); got != 2 {
		t.Errorf("downloads = %d; want 2, one per merchant", got)
	}
	if got := s.Len(); got != 4 {
		t.Errorf("Len = %d; want 4 certificates", got)
	}
}

func TestStoreOneDownloadPerIntervalWhateverTheInput(t *testing.T) {
	now := time.Now()
	f := fakeWithCerts(t, [2]time.Time{now.Add(-time.Hour), now.Add(time.Hour)})
	ids := []string{"1900000001", "1900000002", "1900000003"}
	s := newTestStore(t, StoreOptions{Size: 1, MinRefreshInterval: time.Minute}, f, ids...)
	defer s.Close()
	clock := newTestClock(s, f)
	genuine := wire.CertSerial(f.certs[0].cert)
	ctx := context.Background()
	for _, id := range ids {
		s.PublicKey(ctx, id, genuine) // first downloads: free
	}
	first := f.downloads.Load()
	// For ten intervals, mix every pattern: forged serials, genuine ones
	// on evicted sets (Size 1, three merchants), Newest, an expired
	// certificate, and a failing endpoint.
	for step := range 600 {
		id := ids[step%len(ids)]
		switch step % 5 {
		case 0:
			s.PublicKey(ctx, id, fmt.Sprintf("%040X", step))
		case 1:
			s.PublicKey(ctx, id, genuine)
		case 2:
			s.Newest(ctx, id)
		case 3:
			f.mu.Lock()
			f.status = map[bool]int{true: 500, false: 0}[step%2 == 0]
			f.mu.Unlock()
			s.PublicKey(ctx, id, genuine)
		case 4:
			if step == 304 {
				clock.stepWall(2 * time.Hour) // the certificate expires
			}
			s.PublicKey(ctx, id, genuine)
		}
		clock.advance(time.Second)
	}
	// 600 s = 10 intervals: at most one download per interval per merchant.
	got, limit := f.downloads.Load()-first, int32(10*len(ids)+len(ids))
	t.Logf("%d downloads after the first %d", got, first)
	if got > limit {
		t.Errorf("downloads after the first = %d over 10 intervals for %d merchants; want at most %d", got, len(ids), limit)
	}
}

func TestStoreFailingDownloadRateLimited(t *testing.T) {
	f := newFake(t)
	f.status = 503
	s := newTestStore(t, StoreOptions{}, f, "1900000001")
	defer s.Close()
	clock := newTestClock(s, f)
	for range 30 {
		if _, err := s.PublicKey(context.Background(), "1900000001", wire.CertSerial(f.certs[0].cert)); err == nil {
			t.Fatal("lookup succeeded against a failing endpoint")
		}
		clock.advance(time.Second)
	}
	if got := f.downloads.Load(); got != 1 {
		t.Errorf("30 lookups in 30 s against a failing endpoint: %d downloads; want 1", got)
	}
	clock.advance(time.Minute)
	f.mu.Lock()
	f.status = 0
	f.mu.Unlock()
	if _, err := s.PublicKey(context.Background(), "1900000001", wire.CertSerial(f.certs[0].cert)); err != nil {
		t.Errorf("after the interval, with the endpoint back: %v", err)
	}
}

func TestStoreIntervalsUseMonotonicClock(t *testing.T) {
	now := time.Now()
	f := fakeWithCerts(t, [2]time.Time{now.Add(-48 * time.Hour), now.Add(time.Hour * 24 * 365)})
	s := newTestStore(t, StoreOptions{RefreshInterval: time.Hour}, f, "1900000001")
	defer s.Close()
	clock := newTestClock(s, f)
	ctx := context.Background()
	old := wire.CertSerial(f.certs[0].cert)
	if _, err := s.PublicKey(ctx, "1900000001", old); err != nil {
		t.Fatal(err)
	}
	// WeChat Pay rotates; the machine's clock is stepped back two hours
	// while two minutes pass.
	f.mu.Lock()
	f.certs = append(f.certs, fakeCert{newTestCert(t, testKey(2), 2, now.Add(-24*time.Hour), now.Add(time.Hour*24*400)), testKey(2)})
	f.mu.Unlock()
	clock.stepWall(-2 * time.Hour)
	clock.advance(2 * time.Minute)
	if _, err := s.PublicKey(ctx, "1900000001", wire.CertSerial(f.certs[1].cert)); err != nil {
		t.Fatalf("rotated serial after a clock step back: %v", err)
	}
	// Refresh-ahead still runs after RefreshInterval of monotonic time,
	// though the wall clock says less.
	before := f.downloads.Load()
	clock.stepWall(-2 * time.Hour)
	clock.advance(61 * time.Minute)
	if _, err := s.PublicKey(ctx, "1900000001", old); err != nil {
		t.Fatal(err)
	}
	s.Close() // waits for the background refresh
	if got := f.downloads.Load(); got != before+1 {
		t.Errorf("refresh-ahead after the clock stepped back: downloads %d; want %d", got, before+1)
	}
}

func TestStoreUnregisterDiscardsDownloadInFlight(t *testing.T) {
	f := newFake(t)
	f.gate = make(chan struct{})
	s := newTestStore(t, StoreOptions{}, f, "1900000001")
	defer s.Close()
	serial := wire.CertSerial(f.certs[0].cert)
	done := make(chan error, 1)
	go func() {
		_, err := s.PublicKey(context.Background(), "1900000001", serial)
		done <- err
	}()
	for f.downloads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	s.Unregister("1900000001")
	close(f.gate)
	if err := <-done; err == nil {
		t.Error("the lookup that started before Unregister succeeded")
	}
	if _, err := s.PublicKey(context.Background(), "1900000001", serial); !errors.Is(err, ErrUnknownMerchant) {
		t.Errorf("after Unregister: %v; want ErrUnknownMerchant", err)
	}
	if got := s.Len(); got != 0 {
		t.Errorf("after Unregister the store holds %d certificates", got)
	}
}

func TestStoreReRegisterDuringDownload(t *testing.T) {
	f := newFake(t)
	f.gate = make(chan struct{})
	s := newTestStore(t, StoreOptions{}, f, "1900000001")
	defer s.Close()
	serial := wire.CertSerial(f.certs[0].cert)
	done := make(chan error, 1)
	go func() {
		_, err := s.PublicKey(context.Background(), "1900000001", serial)
		done <- err
	}()
	for f.downloads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	// Re-registered with another APIv3 key: the old download, decrypted
	// with the old key, must not serve the new registration.
	cfg := testConfig("1900000001", f)
	cfg.APIv3Key = "ffffffffffffffffffffffffffffffff"
	if err := s.Register(cfg); err != nil {
		t.Fatal(err)
	}
	close(f.gate)
	<-done
	if got := s.Len(); got != 0 {
		t.Errorf("a download for the superseded registration left %d certificates", got)
	}
	// The new registration downloads for itself, and its key is wrong.
	if _, err := s.PublicKey(context.Background(), "1900000001", serial); err == nil {
		t.Error("a certificate verified for a registration whose APIv3 key cannot decrypt it")
	}
}

func TestStoreTrustInputChangeDropsCertificates(t *testing.T) {
	prod, sandbox := newFake(t), newFake(t)
	sandbox.certs[0] = fakeCert{newTestCert(t, testKey(3), 9, time.Now().Add(-time.Hour), time.Now().Add(time.Hour*24*365)), testKey(3)}
	s := newTestStore(t, StoreOptions{}, sandbox, "1900000001")
	defer s.Close()
	ctx := context.Background()
	sandboxSerial := wire.CertSerial(sandbox.certs[0].cert)
	if _, err := s.PublicKey(ctx, "1900000001", sandboxSerial); err != nil {
		t.Fatal(err)
	}
	// Same trust inputs (a new signer only): the set is kept.
	cfg := testConfig("1900000001", sandbox)
	cfg.CertificateSerial = "0000000000000000000000000000000000000001"
	if err := s.Register(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PublicKey(ctx, "1900000001", sandboxSerial); err != nil || sandbox.downloads.Load() != 1 {
		t.Errorf("re-registering with the same trust inputs: %v, %d downloads; want the set kept", err, sandbox.downloads.Load())
	}
	for _, change := range []struct {
		name string
		mod  func(*Config)
	}{
		{"Base", func(c *Config) { c.Base = prod }},
		{"BaseURL", func(c *Config) { c.BaseURL = "https://api2.mch.weixin.qq.com" }},
		{"APIv3Key", func(c *Config) { c.APIv3Key = "ffffffffffffffffffffffffffffffff" }},
	} {
		// Back to the sandbox, its certificate cached...
		if err := s.Register(testConfig("1900000001", sandbox)); err != nil {
			t.Fatal(err)
		}
		if err := s.Refresh(ctx, "1900000001"); err != nil {
			t.Fatal(err)
		}
		// ...then pointed at production.
		cfg := testConfig("1900000001", sandbox)
		change.mod(&cfg)
		if err := s.Register(cfg); err != nil {
			t.Fatal(err)
		}
		if got := s.Certificates("1900000001"); len(got) != 0 {
			t.Errorf("after changing %s, %d sandbox certificates are still cached", change.name, len(got))
		}
	}
}

type panickingSigner struct{ crypto.Signer }

func (panickingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	panic("kms: connection pool exhausted")
}

func TestStorePanicInUserCodeBecomesError(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*fakeWeChat, *Config)
	}{
		{"Base", func(f *fakeWeChat, _ *Config) { f.panicWith = "base: nil map write" }},
		{"Signer", func(_ *fakeWeChat, c *Config) { c.PrivateKey = panickingSigner{testKey(0)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			cfg := testConfig("1900000001", f)
			tc.setup(f, &cfg)
			s, err := NewStore(StoreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Register(cfg); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for range 16 {
				wg.Go(func() {
					_, err := s.PublicKey(context.Background(), "1900000001", wire.CertSerial(f.certs[0].cert))
					errs <- err
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err == nil || !strings.Contains(err.Error(), "panic") || !errors.Is(err, ErrCertificateDownload) && !errors.Is(err, ErrUnknownSerial) {
					t.Errorf("waiter got %v; want an error that names the panic", err)
				}
				if err != nil && strings.Contains(err.Error(), "PRIVATE KEY") {
					t.Errorf("error leaks key material: %v", err)
				}
			}
		})
	}
}

func TestStoreResourceNotExistsDropsCertificates(t *testing.T) {
	f := newFake(t)
	s := newTestStore(t, StoreOptions{}, f, "1900000001")
	defer s.Close()
	serial := wire.CertSerial(f.certs[0].cert)
	ctx := context.Background()
	if _, err := s.PublicKey(ctx, "1900000001", serial); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.status, f.errBody = 404, []byte(`{"code":"RESOURCE_NOT_EXISTS","message":"无可用的平台证书"}`)
	f.mu.Unlock()
	if err := s.Refresh(ctx, "1900000001"); !errors.Is(err, ErrNoPlatformCertificates) {
		t.Fatalf("Refresh = %v; want ErrNoPlatformCertificates", err)
	}
	if _, err := s.PublicKey(ctx, "1900000001", serial); !errors.Is(err, ErrUnknownSerial) {
		t.Errorf("voided certificate after RESOURCE_NOT_EXISTS: %v; want ErrUnknownSerial", err)
	}
}

func TestStoreExpireTimeEndsValidity(t *testing.T) {
	for _, typo := range []bool{false, true} {
		now := time.Now()
		f := fakeWithCerts(t, [2]time.Time{now.Add(-time.Hour), now.Add(time.Hour * 24 * 365)}, [2]time.Time{now.Add(-time.Hour), now.Add(time.Hour * 24 * 300)})
		// WeChat Pay moved the first certificate's expiry up to an hour
		// from now ahead of a swap.
		f.expire = map[int]string{0: now.Add(time.Hour).Format(time.RFC3339)}
		f.typo = typo
		s := newTestStore(t, StoreOptions{}, f, "1900000001")
		clock := newTestClock(s, f)
		ctx := context.Background()
		first := wire.CertSerial(f.certs[0].cert)
		if _, err := s.PublicKey(ctx, "1900000001", first); err != nil {
			t.Fatal(err)
		}
		if c, _ := s.Newest(ctx, "1900000001"); c == nil || wire.CertSerial(c) != wire.CertSerial(f.certs[1].cert) {
			t.Errorf("typo=%v: Newest = %v; want the certificate that lasts longer by expire_time", typo, c)
		}
		clock.advance(2 * time.Hour)
		if _, err := s.PublicKey(ctx, "1900000001", first); err == nil {
			t.Errorf("typo=%v: certificate still trusted after its expire_time", typo)
		}
		s.Close()
	}
}

func TestStorePublicKeyMerchantSurvivesCertificateEndpoint(t *testing.T) {
	for _, status := range []int{403, 404, 500} {
		f := newFake(t)
		f.status = status
		f.errBody = []byte(`{"code":"NO_AUTH","message":"证书不存在"}`)
		cfg := testConfig("1900000001", f)
		cfg.PublicKeyID, cfg.PublicKey = "PUB_KEY_ID_0000000000000024101100397200000006", &testKey(3).PublicKey
		s, err := NewStore(StoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Register(cfg); err != nil {
			t.Fatal(err)
		}
		clock := newTestClock(s, f)
		v := &Verifier{MerchantID: "1900000001", Keys: s, now: clock.Now}
		body := []byte(`{"trade_state":"SUCCESS"}`)
		for range 50 {
			h := signedHeader(testKey(3), cfg.PublicKeyID, clock.Now(), body)
			if err := v.Verify(context.Background(), h, body); err != nil {
				t.Fatalf("HTTP %d from the certificate endpoint: public-key response: %v", status, err)
			}
			// Responses naming a platform certificate fail, without a loop.
			h = signedHeader(testKey(1), wire.CertSerial(f.certs[0].cert), clock.Now(), body)
			if err := v.Verify(context.Background(), h, body); err == nil {
				t.Fatal("a platform-certificate signature verified with no certificate")
			}
			clock.advance(time.Second)
		}
		if got := f.downloads.Load(); got != 1 {
			t.Errorf("HTTP %d: 50 s of lookups made %d downloads; want 1", status, got)
		}
		s.Close()
	}
}
