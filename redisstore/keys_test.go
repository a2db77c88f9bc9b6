package redisstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/redisstore"
)

// hashTag is the part of key Redis Cluster hashes: between the first '{'
// and the first '}' after it, if that is not empty; else the whole key.
func hashTag(key string) string {
	_, rest, ok := strings.Cut(key, "{")
	if !ok {
		return key
	}
	tag, _, ok := strings.Cut(rest, "}")
	if !ok || tag == "" {
		return key
	}
	return tag
}

// TestMerchantIDsCannotReachOthersKeys plays issue 16's attack 7 against a
// real redis-server: merchant IDs holding ':', '{' and '}' each get their
// own entry, lock and notification marks, in a hash slot of their own,
// including merchants whose keys would collide if the ID were embedded
// unescaped.
func TestMerchantIDsCannotReachOthersKeys(t *testing.T) {
	r := startRedis(t)
	rdb := r.Client()
	ctx := context.Background()
	c := &redisstore.Cache{Client: rdb}
	g := &redisstore.Guard{Client: rdb}
	merchants := []string{"1900000001", "x", "x}", "{x}", "x}:certificates", "a:b", "a", "a%3Ab", "}", "{", ":", "%"}

	// Cache entries and locks: each merchant reads back its own.
	for _, m := range merchants {
		if err := c.Put(ctx, m, entry(time.Now().Add(time.Hour), "entry of "+m)); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := c.TryLock(ctx, m); err != nil || !ok {
			t.Errorf("TryLock(%q) = %t, %v; want the lock (no other merchant holds it)", m, ok, err)
		}
	}
	for _, m := range merchants {
		got, err := c.Get(ctx, m)
		if err != nil || !strings.HasSuffix(string(got), "\nentry of "+m) {
			t.Errorf("Get(%q) = %q, %v; want its own entry", m, got, err)
		}
	}
	// Every key's Redis Cluster hash tag belongs to exactly one merchant.
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	owner := map[string]string{} // hash tag → merchant
	for _, k := range keys {
		tag := hashTag(k)
		val, _ := rdb.Get(ctx, k).Result()
		m, isEntry := strings.CutPrefix(val[strings.IndexByte(val, '\n')+1:], "entry of ")
		if !isEntry {
			continue // a lock token
		}
		if prev, dup := owner[tag]; dup && prev != m {
			t.Errorf("hash tag %q holds the keys of merchants %q and %q", tag, prev, m)
		}
		owner[tag] = m
		if strings.ContainsAny(tag, "{}:") {
			t.Errorf("key %q: hash tag %q holds an unescaped brace or colon", k, tag)
		}
	}
	if len(owner) != len(merchants) {
		t.Errorf("%d hash tags for %d merchants: %v", len(owner), len(merchants), owner)
	}
	for _, k := range keys {
		if strings.HasSuffix(k, ":download-lock") {
			if _, ok := owner[hashTag(k)]; !ok {
				t.Errorf("lock key %q is in no merchant's hash slot", k)
			}
		}
	}

	// Notifications: merchant "a:b"'s "c" and merchant "a"'s "b:c" are one
	// key when joined naively; each is its own claim.
	if naive1, naive2 := "a:b"+":"+"c", "a"+":"+"b:c"; naive1 != naive2 {
		t.Fatalf("premise: naive keys %q and %q differ", naive1, naive2)
	}
	k1, k2 := middleware.GuardKey("a:b", "c"), middleware.GuardKey("a", "b:c")
	if st, err := g.Claim(ctx, k1, "token1"); err != nil || st != middleware.Claimed {
		t.Fatalf("Claim(%q) = %v, %v; want claimed", k1, st, err)
	}
	if err := g.Done(ctx, k1); err != nil {
		t.Fatal(err)
	}
	if st, err := g.Claim(ctx, k2, "token2"); err != nil || st != middleware.Claimed {
		t.Errorf("Claim(%q) after merchant a:b's notification c was done = %v, %v; want claimed (another merchant's notification)", k2, st, err)
	}
	// Braces in a merchant ID do not move its notifications into another
	// merchant's slot either.
	for _, m := range []string{"x}", "{x}"} {
		if st, err := g.Claim(ctx, middleware.GuardKey(m, "EV-1"), "t"); err != nil || st != middleware.Claimed {
			t.Errorf("Claim for merchant %q = %v, %v; want claimed", m, st, err)
		}
	}
	if st, err := g.Claim(ctx, middleware.GuardKey("x", "EV-1"), "t"); err != nil || st != middleware.Claimed {
		t.Errorf("Claim for merchant x = %v, %v; want claimed", st, err)
	}
}

// TestOldKeyFormatMisses: an entry written under the unescaped key of a
// merchant whose ID needs escaping is not read back (a key-format change
// simply misses), while a merchant ID of digits keeps its key.
func TestOldKeyFormatMisses(t *testing.T) {
	r := startRedis(t)
	rdb := r.Client()
	ctx := context.Background()
	c := &redisstore.Cache{Client: rdb}
	rdb.Set(ctx, "wechatpay:{a}b}:certificates", entry(time.Now().Add(time.Hour), "old"), time.Hour)
	if _, err := c.Get(ctx, "a}b"); !errors.Is(err, wechatpay.ErrCacheMiss) {
		t.Errorf("Get of a merchant with an old-format entry = %v; want ErrCacheMiss", err)
	}
	rdb.Set(ctx, "wechatpay:{1900000001}:certificates", entry(time.Now().Add(time.Hour), "digits"), time.Hour)
	if got, err := c.Get(ctx, "1900000001"); err != nil || !strings.HasSuffix(string(got), "digits") {
		t.Errorf("Get(1900000001) = %q, %v; want the entry under the unchanged key", got, err)
	}
}
