package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/redisstore"
)

func entry(expires time.Time, body string) []byte {
	return fmt.Appendf(nil, "expires %d\n%s", expires.Unix(), body)
}

func TestCache(t *testing.T) {
	r := startRedis(t)
	rdb := r.Client()
	c := &redisstore.Cache{Client: rdb}
	ctx := context.Background()

	if _, err := c.Get(ctx, "1900000001"); !errors.Is(err, wechatpay.ErrCacheMiss) {
		t.Fatalf("Get of a missing entry = %v; want ErrCacheMiss", err)
	}
	data := entry(time.Now().Add(time.Hour), `{"format":1}`)
	if err := c.Put(ctx, "1900000001", data); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, "1900000001")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get = %q, %v; want %q", got, err, data)
	}
	// Scoped by merchant, in the documented key, with the entry's expiry.
	if _, err := c.Get(ctx, "1900000002"); !errors.Is(err, wechatpay.ErrCacheMiss) {
		t.Errorf("another merchant's Get = %v; want ErrCacheMiss", err)
	}
	ttl, err := rdb.PTTL(ctx, "wechatpay:{1900000001}:certificates").Result()
	if err != nil || ttl < 59*time.Minute || ttl > time.Hour {
		t.Errorf("PTTL = %s, %v; want about the hour the expiry line gives", ttl, err)
	}
	// A Prefix separates namespaces.
	other := &redisstore.Cache{Client: rdb, Prefix: "staging:"}
	if _, err := other.Get(ctx, "1900000001"); !errors.Is(err, wechatpay.ErrCacheMiss) {
		t.Errorf("Get with another Prefix = %v; want ErrCacheMiss", err)
	}

	if err := c.Delete(ctx, "1900000001"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "1900000001"); !errors.Is(err, wechatpay.ErrCacheMiss) {
		t.Errorf("Get after Delete = %v; want ErrCacheMiss", err)
	}
	if err := c.Delete(ctx, "1900000001"); err != nil {
		t.Errorf("Delete of a missing entry = %v; want nil", err)
	}

	// No expiry line: refused. Expired already: not stored.
	if err := c.Put(ctx, "1900000001", []byte(`{"format":1}`)); err == nil {
		t.Error("Put without an expiry line succeeded")
	}
	if err := c.Put(ctx, "1900000001", entry(time.Now().Add(-time.Second), "{}")); err != nil {
		t.Errorf("Put of an expired entry = %v; want nil (not stored)", err)
	}
	if n, _ := rdb.Exists(ctx, "wechatpay:{1900000001}:certificates").Result(); n != 0 {
		t.Error("an expired entry was stored")
	}

	// Redis sends at most the bound, whatever is stored.
	rdb.Set(ctx, "wechatpay:{big}:certificates", strings.Repeat("x", 3<<20), 0)
	if got, err := c.Get(ctx, "big"); err != nil || len(got) > 2<<20+1 {
		t.Errorf("Get of a 3 MiB value = %d bytes, %v; want at most 2 MiB + 1", len(got), err)
	}
	// A value of another type is an error, not a miss.
	rdb.HSet(ctx, "wechatpay:{hash}:certificates", "a", "b")
	if _, err := c.Get(ctx, "hash"); err == nil || errors.Is(err, wechatpay.ErrCacheMiss) {
		t.Errorf("Get of a hash = %v; want a Redis error", err)
	}
	if _, err := c.Get(ctx, "hash"); !errors.Is(err, wechatpay.ErrCacheMiss) {
		t.Errorf("second Get of the hash = %v; want ErrCacheMiss (the garbage deleted)", err)
	}
}

func TestCacheLock(t *testing.T) {
	r := startRedis(t)
	rdb := r.Client()
	ctx := context.Background()
	// TTLs are a second: short for the test, long enough that a loaded
	// machine does not expire a lock between two steps.
	a := &redisstore.Cache{Client: rdb, LockTTL: time.Second}
	b := &redisstore.Cache{Client: r.Client(), LockTTL: time.Second}

	unlockA, ok, err := a.TryLock(ctx, "1900000001")
	if !ok || err != nil {
		t.Fatalf("first TryLock = %t, %v; want the lock", ok, err)
	}
	if _, ok, err := b.TryLock(ctx, "1900000001"); ok || err != nil {
		t.Fatalf("second TryLock = %t, %v; want false, nil", ok, err)
	}
	if _, ok, _ := b.TryLock(ctx, "1900000002"); !ok {
		t.Error("another merchant's lock is taken")
	}
	if err := unlockA(); err != nil {
		t.Fatal(err)
	}
	unlockB, ok, err := b.TryLock(ctx, "1900000001")
	if !ok || err != nil {
		t.Fatalf("TryLock after unlock = %t, %v; want the lock", ok, err)
	}

	// A holder that dies (never unlocks) frees the lock by its TTL; its
	// late unlock does not release the next holder's lock.
	time.Sleep(1100 * time.Millisecond)
	unlockA2, ok, err := a.TryLock(ctx, "1900000001")
	if !ok || err != nil {
		t.Fatalf("TryLock after the holder's TTL = %t, %v; want the lock", ok, err)
	}
	if err := unlockB(); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := b.TryLock(ctx, "1900000001"); ok {
		t.Error("a stale holder's unlock released the current holder's lock")
	}
	unlockA2()

	// Many contenders at once: exactly one wins.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if _, ok, err := b.TryLock(ctx, "1900000003"); ok && err == nil {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d of 32 concurrent TryLocks won; want 1", wins.Load())
	}
}

func TestGuard(t *testing.T) {
	r := startRedis(t)
	rdb := r.Client()
	ctx := context.Background()
	g := &redisstore.Guard{Client: rdb, ClaimTTL: time.Minute}
	claim := func(key, token string, want middleware.ClaimState) {
		t.Helper()
		if got, err := g.Claim(ctx, key, token); got != want || err != nil {
			t.Fatalf("Claim(%q, %q) = %v, %v; want %v", key, token, got, err, want)
		}
	}
	claim("1900000001:EV-1", "a", middleware.Claimed)
	claim("1900000001:EV-1", "b", middleware.InProgress)
	claim("1900000002:EV-1", "c", middleware.Claimed) // scoped by merchant
	if v, _ := rdb.Get(ctx, "wechatpay:{1900000001}:notification:EV-1").Result(); v != "claim:a" {
		t.Errorf("claim value = %q; want claim:a", v)
	}

	g.Release(ctx, "1900000001:EV-1", "b") // not b's claim
	claim("1900000001:EV-1", "b", middleware.InProgress)
	g.Release(ctx, "1900000001:EV-1", "a")
	claim("1900000001:EV-1", "b", middleware.Claimed)
	if err := g.Done(ctx, "1900000001:EV-1"); err != nil {
		t.Fatal(err)
	}
	g.Release(ctx, "1900000001:EV-1", "b") // done is not released
	claim("1900000001:EV-1", "d", middleware.Processed)
	// Time passes between setting a TTL and reading it back, so the
	// checks leave an hour of slack: what they tell apart is 24 h 4 min
	// from 1 h.
	const slack = time.Hour
	ttl, _ := rdb.PTTL(ctx, "wechatpay:{1900000001}:notification:EV-1").Result()
	if ttl < middleware.MinDoneTTL-slack {
		t.Errorf("done mark lives %s; want at least %s", ttl, middleware.MinDoneTTL)
	}
	short := &redisstore.Guard{Client: rdb, DoneTTL: time.Hour}
	short.Done(ctx, "1900000001:EV-2")
	if ttl, _ := rdb.PTTL(ctx, "wechatpay:{1900000001}:notification:EV-2").Result(); ttl < middleware.MinDoneTTL-slack {
		t.Errorf("DoneTTL of 1 h gives %s; want it raised to %s", ttl, middleware.MinDoneTTL)
	}

	// A claimer that died: its claim expires.
	g = &redisstore.Guard{Client: rdb, ClaimTTL: time.Second}
	claim("1900000001:EV-crash", "e", middleware.Claimed)
	claim("1900000001:EV-crash", "f", middleware.InProgress)
	time.Sleep(1100 * time.Millisecond)
	claim("1900000001:EV-crash", "f", middleware.Claimed)

	// Garbage in the key: an error, which the middleware treats as "no
	// guard".
	rdb.Set(ctx, "wechatpay:{1900000001}:notification:EV-garbage", "???", time.Minute)
	if _, err := g.Claim(ctx, "1900000001:EV-garbage", "g"); err == nil {
		t.Error("Claim over a garbage value succeeded; want an error")
	}
}

// TestRedisDown: every operation returns an error promptly, never a
// false answer, when Redis is not there.
func TestRedisDown(t *testing.T) {
	r := startRedis(t)
	rdb := r.Client()
	r.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := &redisstore.Cache{Client: rdb}
	if _, err := c.Get(ctx, "1"); err == nil || errors.Is(err, wechatpay.ErrCacheMiss) {
		t.Errorf("Cache.Get = %v; want a connection error, not a miss", err)
	}
	if err := c.Put(ctx, "1", entry(time.Now().Add(time.Hour), "{}")); err == nil {
		t.Error("Cache.Put succeeded")
	}
	if _, ok, err := (&redisstore.Cache{Client: rdb}).TryLock(ctx, "1"); ok || err == nil {
		t.Errorf("TryLock = %t, %v; want false and an error", ok, err)
	}
	if _, err := (&redisstore.Guard{Client: rdb}).Claim(ctx, "1:EV", "t"); err == nil {
		t.Error("Claim succeeded")
	}
	if ctx.Err() != nil {
		t.Error("the calls took 5 s")
	}
	var nilClient redis.UniversalClient
	if _, err := (&redisstore.Cache{Client: nilClient}).Get(ctx, "1"); !errors.Is(err, redisstore.ErrNoClient) {
		t.Errorf("Get without a client = %v; want ErrNoClient", err)
	}
}
