// Package redisstore shares the state of a fleet of WeChat Pay servers
// through Redis: a certificate cache with a download lock for
// wechatpay.Store, and a duplicate guard for the callback middleware.
//
// Behind a load balancer, each instance would otherwise download every
// merchant's platform certificates by itself, again after every restart,
// and two instances would run the same notification at once (WeChat Pay
// sends it twice, about a second apart, on two network paths). With
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis:6379", ContextTimeoutEnabled: true})
//	store, err := wechatpay.NewStore(wechatpay.StoreOptions{Cache: &redisstore.Cache{Client: rdb}})
//	...
//	mw := middleware.Notifications(middleware.Config{..., Guard: &redisstore.Guard{Client: rdb}})
//
// a fleet downloads a merchant's certificates about once per refresh
// interval and processes each notification once.
//
// # Trust and failure
//
// Redis is storage, never a source of trust: the Store runs every check of
// a fresh download (AEAD with the APIv3 key, the download's signature,
// the certificate checks, validity now) on what it reads from the Cache,
// so whoever can write to Redis without the APIv3 key cannot plant a
// certificate. When Redis is down, slow or answers garbage, the Store
// downloads for itself and the middleware lets notifications through to
// the handler (which must therefore stay idempotent); both report the
// failure to their error hooks (StoreOptions.CacheErrorHandler,
// middleware.Config.ErrorHandler). The Store bounds each Redis call by
// 500 ms and leaves Redis alone for a second after a failure. Create the
// client with ContextTimeoutEnabled, so that a slow Redis is abandoned
// when that bound ends rather than after the client's ReadTimeout, and
// with a small DialerRetries, so that a Redis that is down fails fast.
//
// # Keys
//
// Every key starts with Prefix ("wechatpay:" by default) and the merchant
// ID in braces, so that all of a merchant's keys share a Redis Cluster
// hash slot:
//
//	wechatpay:{1900000001}:certificates          the cached download (Cache)
//	wechatpay:{1900000001}:download-lock         the download lock (Cache.TryLock)
//	wechatpay:{1900000001}:notification:<id>     a notification's claim or done mark (Guard)
//
// In the merchant ID, '%', '{', '}' and ':' are percent-encoded (a merchant
// ID of digits, as WeChat Pay assigns, is unchanged), so that whatever a
// merchant ID holds, the braces around it are the hash tag Redis Cluster
// sees and no merchant ID reaches another's keys. Keep Prefix free of
// braces. Keys written before this encoding by merchant IDs that needed it
// are simply no longer read, and expire.
package redisstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/middleware"
)

// Defaults.
const (
	// DefaultPrefix starts every key.
	DefaultPrefix = "wechatpay:"
	// DefaultLockTTL is how long a download lock lasts if its holder does
	// not release it: longer than a download (wechatpay.DefaultFetchTimeout
	// is 10 s), short enough that a holder that died delays nobody for
	// long.
	DefaultLockTTL = 30 * time.Second
	// DefaultDoneTTL is how long Guard remembers a processed notification:
	// WeChat Pay's 24 h 4 m of retries and an hour's margin.
	DefaultDoneTTL = 25 * time.Hour
	// DefaultTimeout bounds the Redis commands that run without a
	// caller's context: releasing a lock.
	DefaultTimeout = time.Second
)

// maxEntry bounds a cache entry read from Redis; a certificate download
// is a few KiB (the Store refuses larger entries too).
const maxEntry = 2 << 20

// ErrNoClient is returned by every method of a Cache, Locker or Guard
// whose Client is nil.
var ErrNoClient = errors.New("redisstore: Client is nil")

func prefixOr(p string) string {
	if p == "" {
		return DefaultPrefix
	}
	return p
}

// merchantKey returns prefix + "{" + escaped merchantID + "}:" + suffix.
func merchantKey(prefix, merchantID, suffix string) string {
	return prefixOr(prefix) + "{" + escapeKeyPart(merchantID) + "}:" + suffix
}

// escapeKeyPart percent-encodes the bytes that could end a hash tag or a
// key part early ('{', '}', ':') and '%' itself, so that the encoding is
// one-to-one.
func escapeKeyPart(s string) string {
	if !strings.ContainsAny(s, "%{}:") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%', '{', '}', ':':
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Cache is a wechatpay.Cache on Redis, for the certificate downloads of a
// wechatpay.Store, with the fleet's download lock (TryLock). The Store's
// key (a merchant ID) is scoped as described in the package
// documentation; each entry expires when the Store's expiry line says it
// becomes useless. A Cache is safe for concurrent use; do not change its
// fields after first use.
type Cache struct {
	// Client is the Redis client. Required.
	Client redis.UniversalClient
	// Prefix starts every key. Empty means DefaultPrefix.
	Prefix string
	// LockTTL bounds how long a download lock is held. Zero means
	// DefaultLockTTL (30 s); keep it above the Store's FetchTimeout.
	LockTTL time.Duration
}

var (
	_ wechatpay.Cache = (*Cache)(nil)
	// The optional lock method the Store looks for (see wechatpay.Cache).
	_ interface {
		TryLock(ctx context.Context, key string) (unlock func() error, ok bool, err error)
	} = (*Cache)(nil)
)

func (c *Cache) key(key string) string { return merchantKey(c.Prefix, key, "certificates") }

// Get returns the entry of key, at most 2 MiB of it (a larger entry is
// returned truncated, and the Store's size check refuses it). A missing
// entry is wechatpay.ErrCacheMiss. A value of another type than a string
// under the key is garbage: Get deletes it and returns an error.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, error) {
	if c.Client == nil {
		return nil, ErrNoClient
	}
	// GETRANGE bounds what Redis sends; a missing key reads as empty.
	b, err := c.Client.GetRange(ctx, c.key(key), 0, maxEntry).Bytes()
	if err != nil {
		if strings.HasPrefix(err.Error(), "WRONGTYPE") {
			// Nothing the Store wrote; left there, it would fail every
			// read, and the Store does not write while its cache fails.
			c.Client.Del(ctx, c.key(key))
		}
		return nil, fmt.Errorf("redisstore: cache get %s: %w", key, err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: %s", wechatpay.ErrCacheMiss, key)
	}
	return b, nil
}

// Put stores data under key until the expiry its first line gives
// ("expires <unix seconds>", as the Store writes it). Data without that
// line is refused; data already expired is not stored.
func (c *Cache) Put(ctx context.Context, key string, data []byte) error {
	if c.Client == nil {
		return ErrNoClient
	}
	expires, err := entryExpiry(data)
	if err != nil {
		return fmt.Errorf("redisstore: cache put %s: %w", key, err)
	}
	ttl := time.Until(expires)
	if ttl <= 0 {
		return nil
	}
	if err := c.Client.Set(ctx, c.key(key), data, ttl).Err(); err != nil {
		return fmt.Errorf("redisstore: cache put %s: %w", key, err)
	}
	return nil
}

// Delete removes key's entry.
func (c *Cache) Delete(ctx context.Context, key string) error {
	if c.Client == nil {
		return ErrNoClient
	}
	if err := c.Client.Del(ctx, c.key(key)).Err(); err != nil {
		return fmt.Errorf("redisstore: cache delete %s: %w", key, err)
	}
	return nil
}

// entryExpiry reads the expiry line the Store starts an entry with.
func entryExpiry(data []byte) (time.Time, error) {
	line, _, ok := bytes.Cut(data, []byte{'\n'})
	rest, found := strings.CutPrefix(string(line), "expires ")
	if !ok || !found {
		return time.Time{}, errors.New(`entry does not start with an "expires <unix seconds>" line`)
	}
	sec, err := strconv.ParseInt(rest, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("entry's expiry line: %w", err)
	}
	return time.Unix(sec, 0), nil
}

// unlockScript deletes KEYS[1] only if it still holds ARGV[1].
var unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// TryLock takes the download lock of key (a merchant ID) without waiting,
// as the Store does before downloading: SET key token NX PX LockTTL with a
// random token. The unlock function releases it, within DefaultTimeout,
// with a compare-and-delete script, only if the token is still there; a
// holder that dies (or whose unlock fails) frees the lock when LockTTL
// runs out.
func (c *Cache) TryLock(ctx context.Context, key string) (unlock func() error, ok bool, err error) {
	if c.Client == nil {
		return nil, false, ErrNoClient
	}
	ttl := c.LockTTL
	if ttl <= 0 {
		ttl = DefaultLockTTL
	}
	k := merchantKey(c.Prefix, key, "download-lock")
	token := rand.Text()
	ok, err = c.Client.SetNX(ctx, k, token, ttl).Result()
	if err != nil {
		return nil, false, fmt.Errorf("redisstore: lock %s: %w", key, err)
	}
	if !ok {
		return nil, false, nil
	}
	return func() error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultTimeout)
		defer cancel()
		if err := unlockScript.Run(ctx, c.Client, []string{k}, token).Err(); err != nil {
			return fmt.Errorf("redisstore: unlock %s: %w", key, err)
		}
		return nil
	}, true, nil
}

// Guard is a middleware.DuplicateGuard on Redis, shared by every server
// of a fleet. A claim is "claim:<token>" set with NX for ClaimTTL; done is
// "done" for DoneTTL; release deletes the claim only if it holds the
// caller's token. Claim and release are Lua scripts, so each is atomic. A
// value that is neither (garbage) makes Claim fail, which the middleware
// treats as "no guard": the notification goes to the handler. A Guard is
// safe for concurrent use; do not change its fields after first use.
type Guard struct {
	// Client is the Redis client. Required.
	Client redis.UniversalClient
	// Prefix starts every key. Empty means DefaultPrefix.
	Prefix string
	// ClaimTTL is how long a claim lasts if neither done nor released,
	// after which another delivery may run the notification. Zero means
	// middleware.DefaultClaimTTL (1 minute); keep it above the handler's
	// running time.
	ClaimTTL time.Duration
	// DoneTTL is how long a processed notification is remembered. Zero
	// means DefaultDoneTTL (25 h); less than middleware.MinDoneTTL (24 h
	// 4 m) is raised to it.
	DoneTTL time.Duration
}

var _ middleware.DuplicateGuard = (*Guard)(nil)

// key maps the middleware's GuardKey(merchantID, notificationID), whose
// first colon ends the (encoded) merchant ID.
func (g *Guard) key(key string) string {
	merchantID, id, ok := strings.Cut(key, ":")
	if !ok {
		return prefixOr(g.Prefix) + "notification:" + key
	}
	return merchantKey(g.Prefix, merchantID, "notification:"+id)
}

// claimScript: 0 claimed, 1 in progress, 2 processed, 3 garbage.
var claimScript = redis.NewScript(`
local v = redis.call("GET", KEYS[1])
if not v then
	redis.call("SET", KEYS[1], "claim:" .. ARGV[1], "PX", ARGV[2])
	return 0
end
if v == "done" then return 2 end
if string.sub(v, 1, 6) == "claim:" then return 1 end
return 3`)

// releaseScript deletes KEYS[1] only if it holds the claim of ARGV[1].
var releaseScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == "claim:" .. ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// Claim claims key for token unless it is claimed or done already.
func (g *Guard) Claim(ctx context.Context, key, token string) (middleware.ClaimState, error) {
	if g.Client == nil {
		return middleware.Claimed, ErrNoClient
	}
	ttl := g.ClaimTTL
	if ttl <= 0 {
		ttl = middleware.DefaultClaimTTL
	}
	r, err := claimScript.Run(ctx, g.Client, []string{g.key(key)}, token, ttl.Milliseconds()).Int64()
	if err != nil {
		return middleware.Claimed, fmt.Errorf("redisstore: claim: %w", err)
	}
	switch r {
	case 0:
		return middleware.Claimed, nil
	case 1:
		return middleware.InProgress, nil
	case 2:
		return middleware.Processed, nil
	}
	return middleware.Claimed, fmt.Errorf("redisstore: claim: key %s holds neither a claim nor a done mark", g.key(key))
}

// Done marks key processed for DoneTTL, whatever claim it holds.
func (g *Guard) Done(ctx context.Context, key string) error {
	if g.Client == nil {
		return ErrNoClient
	}
	ttl := g.DoneTTL
	if ttl == 0 {
		ttl = DefaultDoneTTL
	}
	ttl = max(ttl, middleware.MinDoneTTL)
	if err := g.Client.Set(ctx, g.key(key), "done", ttl).Err(); err != nil {
		return fmt.Errorf("redisstore: done: %w", err)
	}
	return nil
}

// Release deletes token's claim on key; a claim that expired, or was
// taken over or marked done since, is left alone.
func (g *Guard) Release(ctx context.Context, key, token string) error {
	if g.Client == nil {
		return ErrNoClient
	}
	if err := releaseScript.Run(ctx, g.Client, []string{g.key(key)}, token).Err(); err != nil {
		return fmt.Errorf("redisstore: release: %w", err)
	}
	return nil
}
