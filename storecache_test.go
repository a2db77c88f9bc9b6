package wechatpay

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// cacheErrs collects what a Store reports to CacheErrorHandler.
type cacheErrs struct {
	mu   sync.Mutex
	errs []error
}

func (c *cacheErrs) handle(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs = append(c.errs, err)
}

func (c *cacheErrs) list() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]error(nil), c.errs...)
}

// countingCache counts the calls to a Cache.
type countingCache struct {
	Cache
	gets, puts atomic.Int32
}

func (c *countingCache) Get(ctx context.Context, key string) ([]byte, error) {
	c.gets.Add(1)
	return c.Cache.Get(ctx, key)
}

func (c *countingCache) Put(ctx context.Context, key string, data []byte) error {
	c.puts.Add(1)
	return c.Cache.Put(ctx, key, data)
}

const cacheMerchant = "1900000001"

func cachedStore(t *testing.T, f *fakeWeChat, c Cache, errs *cacheErrs) *Store {
	t.Helper()
	s := newTestStore(t, StoreOptions{Cache: c, CacheErrorHandler: errs.handle}, f, cacheMerchant)
	t.Cleanup(func() { s.Close() })
	return s
}

func lookup(t *testing.T, s *Store, f *fakeWeChat) *rsa.PublicKey {
	t.Helper()
	k, err := s.PublicKey(context.Background(), cacheMerchant, wire.CertSerial(f.certs[0].cert))
	if err != nil {
		t.Fatalf("PublicKey: %v", err)
	}
	return k
}

// TestDirCacheRestart: a Store started again over the same directory reads
// the certificates back without a download; lookups of cached keys never
// touch the cache.
func TestDirCacheRestart(t *testing.T) {
	f := newFake(t)
	dir := DirCache(t.TempDir())
	var errs cacheErrs
	c := &countingCache{Cache: dir}
	s1 := cachedStore(t, f, c, &errs)
	k1 := lookup(t, s1, f)
	if n := f.downloads.Load(); n != 1 {
		t.Fatalf("%d downloads; want 1", n)
	}
	if c.puts.Load() != 1 {
		t.Fatalf("%d Puts; want 1", c.puts.Load())
	}
	gets := c.gets.Load()
	for range 100 {
		lookup(t, s1, f)
	}
	if c.gets.Load() != gets {
		t.Errorf("cache hits read the Cache %d times; want 0", c.gets.Load()-gets)
	}

	s2 := cachedStore(t, f, dir, &errs) // the restart
	if k2 := lookup(t, s2, f); !k2.Equal(k1) {
		t.Error("the restarted Store has another key")
	}
	if n := f.downloads.Load(); n != 1 {
		t.Errorf("%d downloads after the restart; want still 1", n)
	}
	if e := errs.list(); len(e) != 0 || refused(s2) != 0 {
		t.Errorf("cache errors %v, %d refused; want none", e, refused(s2))
	}
}

// editEntry rewrites the JSON of the entry in dir.
func editEntry(t *testing.T, dir DirCache, edit func(m map[string]any)) {
	t.Helper()
	name := filepath.Join(string(dir), cacheMerchant)
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	line, js, _ := bytes.Cut(data, []byte("\n"))
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	js, err = json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, append(append(line, '\n'), js...), 0o600); err != nil {
		t.Fatal(err)
	}
}

// attackerDownload is what someone who can write the cache but lacks the
// APIv3 key can make: a download listing a certificate of their own,
// encrypted with a key of theirs, signed with their certificate's key.
func attackerDownload(t *testing.T) (body []byte, h map[string]any, serial string) {
	t.Helper()
	key := testKey(3)
	cert := newTestCert(t, key, 99, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	aead, _ := wire.NewAEAD("attackerattackerattackerattacker")
	nonce := "0123456789ab"
	ct, err := wire.Seal(aead, nonce, "certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	if err != nil {
		t.Fatal(err)
	}
	serial = wire.CertSerial(cert)
	body, _ = json.Marshal(wire.CertificatesResponse{Data: []wire.CertificateData{{
		SerialNo:           serial,
		EncryptCertificate: wire.EncryptedResource{Algorithm: wire.AlgorithmAESGCM, Nonce: nonce, AssociatedData: "certificate", Ciphertext: ct},
	}}})
	sh := signedHeader(key, serial, time.Now(), body)
	h = map[string]any{
		"wechatpay_timestamp": sh.Get(wire.HeaderTimestamp),
		"wechatpay_nonce":     sh.Get(wire.HeaderNonce),
		"wechatpay_signature": sh.Get(wire.HeaderSignature),
		"wechatpay_serial":    serial,
	}
	return body, h, serial
}

// TestDirCacheEditedFile: an entry edited on disk is refused, counted,
// reported, deleted and replaced by a download; nothing of it is used.
func TestDirCacheEditedFile(t *testing.T) {
	tests := []struct {
		name string
		edit func(t *testing.T, dir DirCache, f *fakeWeChat) (forgedSerial string)
	}{
		{"attacker's certificate", func(t *testing.T, dir DirCache, f *fakeWeChat) string {
			body, h, serial := attackerDownload(t)
			editEntry(t, dir, func(m map[string]any) { m["body"], m["header"] = body, h })
			return serial
		}},
		{"body changed", func(t *testing.T, dir DirCache, f *fakeWeChat) string {
			editEntry(t, dir, func(m map[string]any) {
				b, _ := json.Marshal(m["body"]) // a base64 string
				var raw []byte
				json.Unmarshal(b, &raw)
				m["body"] = bytes.Replace(raw, []byte(`"data"`), []byte(` "data"`), 1)
			})
			return ""
		}},
		{"signature of another response", func(t *testing.T, dir DirCache, f *fakeWeChat) string {
			other := signedHeader(f.certs[0].key, wire.CertSerial(f.certs[0].cert), time.Now(), []byte(`{}`))
			editEntry(t, dir, func(m map[string]any) {
				h := m["header"].(map[string]any)
				h["wechatpay_signature"] = other.Get(wire.HeaderSignature)
				h["wechatpay_nonce"] = other.Get(wire.HeaderNonce)
			})
			return ""
		}},
		{"another merchant's entry", func(t *testing.T, dir DirCache, f *fakeWeChat) string {
			editEntry(t, dir, func(m map[string]any) { m["merchant_id"] = "1900000002" })
			return ""
		}},
		{"garbage", func(t *testing.T, dir DirCache, f *fakeWeChat) string {
			os.WriteFile(filepath.Join(string(dir), cacheMerchant), []byte("expires 99999999999\n\x00\x01garbage"), 0o600)
			return ""
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			dir := DirCache(t.TempDir())
			var errs cacheErrs
			lookup(t, cachedStore(t, f, dir, &errs), f)
			forged := tc.edit(t, dir, f)

			s := cachedStore(t, f, dir, &errs)
			lookup(t, s, f)
			if n := f.downloads.Load(); n != 2 {
				t.Errorf("%d downloads; want 2 (the edited entry replaced by a download)", n)
			}
			if n := refused(s); n != 1 {
				t.Errorf("%d entries refused; want 1", n)
			}
			e := errs.list()
			if len(e) != 1 || !errors.Is(e[0], ErrCertificateDownload) {
				t.Errorf("CacheErrorHandler got %v; want one refusal wrapping ErrCertificateDownload", e)
			}
			if forged != "" {
				if _, err := s.PublicKey(context.Background(), cacheMerchant, forged); !errors.Is(err, ErrUnknownSerial) {
					t.Errorf("the attacker's serial gave %v; want ErrUnknownSerial", err)
				}
				if !errors.Is(e[0], ErrDecrypt) {
					t.Errorf("refusal %v; want it to wrap ErrDecrypt", e[0])
				}
			}
			// The file holds a genuine download again.
			s3 := cachedStore(t, f, dir, &errs)
			lookup(t, s3, f)
			if n := f.downloads.Load(); n != 2 || refused(s3) != 0 {
				t.Errorf("after the repair: %d downloads, %d refused; want 2 and 0", n, refused(s3))
			}
		})
	}
}

// TestCacheTooOld: a genuine entry older than a day is not used (a replay
// cannot bring back a retired certificate for longer), nor counted as an
// attack.
func TestCacheTooOld(t *testing.T) {
	testKey(0)
	synctest.Test(t, func(t *testing.T) {
		f := newFake(t)
		dir := DirCache(t.TempDir())
		var errs cacheErrs
		lookup(t, cachedStore(t, f, dir, &errs), f)
		time.Sleep(maxCachedAge - time.Minute)
		lookup(t, cachedStore(t, f, dir, &errs), f)
		if n := f.downloads.Load(); n != 1 {
			t.Errorf("%d downloads for an entry a minute short of the limit; want 1", n)
		}
		time.Sleep(2 * time.Minute)
		s := cachedStore(t, f, dir, &errs)
		lookup(t, s, f)
		if n := f.downloads.Load(); n != 2 {
			t.Errorf("%d downloads for an entry past the limit; want 2", n)
		}
		if e := errs.list(); len(e) != 0 || refused(s) != 0 {
			t.Errorf("cache errors %v; want none", e)
		}
	})
}

// TestCacheShareRefresh: a Store due for a refresh takes a newer download
// another instance put in the cache instead of downloading.
func TestCacheShareRefresh(t *testing.T) {
	testKey(0)
	synctest.Test(t, func(t *testing.T) {
		f := newFake(t)
		dir := DirCache(t.TempDir())
		var errs cacheErrs
		a := cachedStore(t, f, dir, &errs)
		b := cachedStore(t, f, dir, &errs)
		lookup(t, a, f)
		lookup(t, b, f)
		if n := f.downloads.Load(); n != 1 {
			t.Fatalf("%d downloads; want 1", n)
		}
		time.Sleep(DefaultRefreshInterval + time.Minute)
		lookup(t, a, f) // starts a's background refresh: a download
		synctest.Wait()
		lookup(t, b, f) // b's refresh finds a's newer download
		synctest.Wait()
		if n := f.downloads.Load(); n != 2 {
			t.Errorf("%d downloads after both refreshed; want 2", n)
		}
		if got, want := b.merchantLastSuccess(), a.merchantLastSuccess(); got.Unix() != want.Unix() {
			t.Errorf("b's certificates are from %s; want a's refresh, %s", got, want)
		}
	})
}

func (s *Store) merchantLastSuccess() time.Time {
	return s.Status(cacheMerchant)[0].LastSuccess
}

// refused is the merchant's count of cache entries refused.
func refused(s *Store) int64 { return s.Status(cacheMerchant)[0].CacheRefused }

// brokenCache fails every call, as a cache that is down does, and counts
// the calls.
type brokenCache struct{ calls atomic.Int32 }

func (c *brokenCache) Get(context.Context, string) ([]byte, error) {
	c.calls.Add(1)
	return nil, errors.New("cache down")
}

func (c *brokenCache) Put(context.Context, string, []byte) error {
	c.calls.Add(1)
	return errors.New("cache down")
}

func (c *brokenCache) Delete(context.Context, string) error {
	c.calls.Add(1)
	return errors.New("cache down")
}

// TestBrokenCacheDoesNotStopVerification: a failing cache is reported,
// then left alone for cacheBackoff, and lookups go on with downloads.
func TestBrokenCacheDoesNotStopVerification(t *testing.T) {
	testKey(0)
	synctest.Test(t, func(t *testing.T) {
		f := newFake(t)
		var errs cacheErrs
		c := &brokenCache{}
		s := newTestStore(t, StoreOptions{Cache: c, CacheErrorHandler: errs.handle}, f, cacheMerchant, "1900000002")
		defer s.Close()
		lookup(t, s, f)
		if e := errs.list(); len(e) != 1 || errors.Is(e[0], ErrCertificateDownload) || c.calls.Load() != 1 {
			t.Errorf("CacheErrorHandler got %v after %d calls; want the Get failure alone (no Put while backing off)", e, c.calls.Load())
		}
		// Within the backoff another merchant downloads without the cache.
		if _, err := s.PublicKey(context.Background(), "1900000002", wire.CertSerial(f.certs[0].cert)); err != nil {
			t.Fatal(err)
		}
		if c.calls.Load() != 1 || f.downloads.Load() != 2 {
			t.Errorf("%d cache calls, %d downloads; want 1 and 2", c.calls.Load(), f.downloads.Load())
		}
		// After it, the cache is tried again.
		time.Sleep(cacheBackoff)
		if err := s.Refresh(context.Background(), "1900000002"); err != nil {
			t.Fatal(err)
		}
		if c.calls.Load() != 2 {
			t.Errorf("%d cache calls after the backoff; want 2", c.calls.Load())
		}
	})
}

// BenchmarkStoreHitWithCache is BenchmarkStoreHit with a Cache that has
// a lock: the hit path never touches it.
func BenchmarkStoreHitWithCache(b *testing.B) {
	f := newFake(b)
	c := &countingCache{Cache: DirCache(b.TempDir())}
	s := newTestStore(b, StoreOptions{Cache: lockingCache{c}}, f, cacheMerchant)
	defer s.Close()
	serial := wire.CertSerial(f.certs[0].cert)
	ctx := context.Background()
	if _, err := s.PublicKey(ctx, cacheMerchant, serial); err != nil {
		b.Fatal(err)
	}
	gets := c.gets.Load()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.PublicKey(ctx, cacheMerchant, serial); err != nil {
			b.Fatal(err)
		}
	}
	if c.gets.Load() != gets {
		b.Errorf("hits read the cache %d times", c.gets.Load()-gets)
	}
}

// lockingCache is a Cache with a lock that is always granted.
type lockingCache struct{ Cache }

func (lockingCache) TryLock(context.Context, string) (func() error, bool, error) {
	return func() error { return nil }, true, nil
}

// hangingCache is a Cache whose calls ignore their context and return
// only when the test releases them: a fault only a fake can produce (a
// DirCache refuses what would block it).
type hangingCache struct {
	release chan struct{}
	calls   atomic.Int32
}

func (c *hangingCache) hang() error {
	c.calls.Add(1)
	<-c.release
	return errors.New("released")
}
func (c *hangingCache) Get(context.Context, string) ([]byte, error) { return nil, c.hang() }
func (c *hangingCache) Put(context.Context, string, []byte) error   { return c.hang() }
func (c *hangingCache) Delete(context.Context, string) error        { return c.hang() }

// TestHangingCacheCostsTheBound: a Cache call that never returns costs a
// lookup cacheTimeout, after which the Store downloads as if it had no
// cache; calls left running are bounded, and Close returns.
func TestHangingCacheCostsTheBound(t *testing.T) {
	testKey(0)
	synctest.Test(t, func(t *testing.T) {
		f := newFake(t)
		c := &hangingCache{release: make(chan struct{})}
		var errs cacheErrs
		s := newTestStore(t, StoreOptions{Cache: c, CacheErrorHandler: errs.handle}, f, cacheMerchant)
		start := time.Now()
		lookup(t, s, f)
		if waited := time.Since(start); waited != cacheTimeout {
			t.Errorf("the lookup waited %s for the cache; want %s", waited, cacheTimeout)
		}
		if e := errs.list(); len(e) != 1 || !errors.Is(e[0], errCacheTimeout) {
			t.Errorf("CacheErrorHandler got %v; want one timeout", e)
		}
		// Each refresh after the backoff tries the cache again, until
		// maxStuckCacheCalls are left running; then the cache costs
		// nothing.
		for range 2 * maxStuckCacheCalls {
			time.Sleep(cacheBackoff)
			if err := s.Refresh(context.Background(), cacheMerchant); err != nil {
				t.Fatal(err)
			}
		}
		if got := c.calls.Load(); got != maxStuckCacheCalls {
			t.Errorf("%d cache calls started; want %d, the bound on stuck calls", got, maxStuckCacheCalls)
		}
		if got := f.downloads.Load(); got != 1+2*maxStuckCacheCalls {
			t.Errorf("%d downloads; want %d", got, 1+2*maxStuckCacheCalls)
		}
		start = time.Now()
		if err := s.Refresh(context.Background(), cacheMerchant); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Errorf("with the stuck calls at the bound, a refresh waited %s", waited)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		close(c.release)
		synctest.Wait()
		if n := s.cache.stuck.Load(); n != 0 {
			t.Errorf("%d cache calls counted as stuck after they returned", n)
		}
	})
}
