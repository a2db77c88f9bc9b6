package middleware

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// ClaimState is what DuplicateGuard.Claim found.
type ClaimState int

const (
	// Claimed: the notification is this delivery's to process. The zero
	// value, so that a guard that says nothing lets the notification
	// through.
	Claimed ClaimState = iota
	// InProgress: another delivery claimed the notification and has not
	// finished. The middleware answers 503 so that WeChat Pay delivers it
	// again later, when it is done or released.
	InProgress
	// Processed: a delivery processed the notification successfully. The
	// middleware answers 204 without running the handler.
	Processed
)

func (s ClaimState) String() string {
	switch s {
	case Claimed:
		return "claimed"
	case InProgress:
		return "in progress"
	case Processed:
		return "processed"
	}
	return fmt.Sprintf("ClaimState(%d)", int(s))
}

// DefaultClaimTTL is how long a claim lasts unless marked done or
// released: it must outlast the handler, and frees the notification of a
// process that died while handling it.
const DefaultClaimTTL = time.Minute

// MinDoneTTL is the least time a guard must remember a processed
// notification: WeChat Pay retries a notification for 24 h 4 m
// (docs/protocol.md §6).
const MinDoneTTL = 24*time.Hour + 4*time.Minute

// A DuplicateGuard makes sure a notification is processed once, however
// many times and on however many servers WeChat Pay delivers it (it
// delivers again until answered 2xx, retries for 24 h 4 m, and sometimes
// sends the same notification twice in parallel on two network paths).
// Implementations must be safe for concurrent use.
//
// The key is GuardKey(merchantID, notificationID): the merchant ID with
// '%' and ':' percent-encoded, a colon, and the notification ID, so that
// the first colon always ends the merchant ID and no two merchants share
// a key (the IDs of a platform's merchants come from its configuration or
// the request path, which it may not fully control).
// For each verified notification the middleware calls Claim with a fresh
// random token. On Claimed it runs the handler, then calls Done if the
// handler returned having answered 2xx, or Release otherwise (also when it
// panicked, whatever status it had set), so that WeChat Pay's next
// delivery is processed. A claim that is neither
// done nor released (its process died) must expire by itself, after about
// DefaultClaimTTL. Done must be remembered for at least MinDoneTTL.
//
// A guard that fails (returns an error) lets the notification through: the
// handler runs as if there were no guard, and the error goes to
// Config.ErrorHandler. Handlers must therefore stay idempotent.
//
// MemoryGuard works within one process; package
// github.com/wxpaykit/wechatpay/redisstore has a Guard for a fleet of
// servers sharing a Redis.
type DuplicateGuard interface {
	// Claim claims key for the delivery holding token, unless it is
	// claimed already or processed.
	Claim(ctx context.Context, key, token string) (ClaimState, error)
	// Done records key as processed.
	Done(ctx context.Context, key string) error
	// Release removes the claim on key if token still holds it.
	Release(ctx context.Context, key, token string) error
}

// GuardKey is the key of a notification in a DuplicateGuard: merchantID
// with '%' and ':' percent-encoded (a merchant ID of digits is unchanged),
// a colon, then notificationID as it is.
func GuardKey(merchantID, notificationID string) string {
	if !strings.ContainsAny(merchantID, "%:") {
		return merchantID + ":" + notificationID
	}
	var b strings.Builder
	for i := 0; i < len(merchantID); i++ {
		switch c := merchantID[i]; c {
		case '%':
			b.WriteString("%25")
		case ':':
			b.WriteString("%3A")
		default:
			b.WriteByte(c)
		}
	}
	return b.String() + ":" + notificationID
}

// MemoryGuard is a DuplicateGuard for one process: it remembers claims and
// processed notifications in a bounded LRU, processed ones for MinDoneTTL
// unless evicted. It is safe for concurrent use.
type MemoryGuard struct {
	mu sync.Mutex // makes Claim's check-and-set atomic
	c  *lru.Cache[string, guardEntry]

	now func() time.Time // test hook; nil means time.Now
}

type guardEntry struct {
	token   string // "" once done
	expires time.Time
}

var _ DuplicateGuard = (*MemoryGuard)(nil)

// NewMemoryGuard returns a MemoryGuard that remembers the last size
// notifications. It panics if size is not positive.
func NewMemoryGuard(size int) *MemoryGuard {
	c, err := lru.New[string, guardEntry](size)
	if err != nil {
		panic(fmt.Sprintf("wechatpay/middleware: NewMemoryGuard(%d): %v", size, err))
	}
	return &MemoryGuard{c: c}
}

func (g *MemoryGuard) clock() time.Time {
	if g.now != nil {
		return g.now()
	}
	return time.Now()
}

// Claim claims key for token unless a live claim or a done mark is there.
// It never fails.
func (g *MemoryGuard) Claim(_ context.Context, key, token string) (ClaimState, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.clock()
	if e, ok := g.c.Get(key); ok && now.Before(e.expires) {
		if e.token == "" {
			return Processed, nil
		}
		return InProgress, nil
	}
	g.c.Add(key, guardEntry{token: token, expires: now.Add(DefaultClaimTTL)})
	return Claimed, nil
}

// Done marks key processed for MinDoneTTL. It never fails.
func (g *MemoryGuard) Done(_ context.Context, key string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.c.Add(key, guardEntry{expires: g.clock().Add(MinDoneTTL)})
	return nil
}

// Release removes token's claim on key. It never fails.
func (g *MemoryGuard) Release(_ context.Context, key, token string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e, ok := g.c.Peek(key); ok && e.token != "" && e.token == token {
		g.c.Remove(key)
	}
	return nil
}
