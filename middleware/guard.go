package middleware

import (
	"context"
	"fmt"

	lru "github.com/hashicorp/golang-lru/v2"
)

// A DuplicateGuard remembers which notifications arrived, so that the
// middleware can mark re-deliveries (Notification.Duplicate).
// Implementations must be safe for concurrent use.
//
// The key is the merchant ID and the notification ID joined by a colon.
// The middleware calls Seen before the handler runs and Forget after a
// handler that did not answer 2xx, so that WeChat Pay's retry of a
// notification that failed is not taken for a duplicate. A notification
// delivered twice in parallel is still marked Duplicate on the second
// delivery while the first one runs: treat Duplicate as a hint and keep
// handlers idempotent.
//
// MemoryGuard remembers within one process. Servers behind a load
// balancer need a shared implementation, for example Seen as Redis
// "SET key 1 NX EX 90000" (duplicate when the SET did not happen) and
// Forget as DEL; WeChat Pay retries for about 24 hours.
type DuplicateGuard interface {
	// Seen records key and reports whether it was recorded already.
	Seen(ctx context.Context, key string) (bool, error)
	// Forget removes key.
	Forget(ctx context.Context, key string) error
}

// MemoryGuard is a DuplicateGuard that remembers the most recent keys in
// memory, in a bounded LRU. It is safe for concurrent use.
type MemoryGuard struct {
	c *lru.Cache[string, struct{}]
}

var _ DuplicateGuard = (*MemoryGuard)(nil)

// NewMemoryGuard returns a MemoryGuard that remembers the last size
// notifications. It panics if size is not positive.
func NewMemoryGuard(size int) *MemoryGuard {
	c, err := lru.New[string, struct{}](size)
	if err != nil {
		panic(fmt.Sprintf("wechatpay/middleware: NewMemoryGuard(%d): %v", size, err))
	}
	return &MemoryGuard{c: c}
}

// Seen records key and reports whether it was already recorded. It never
// fails.
func (g *MemoryGuard) Seen(_ context.Context, key string) (bool, error) {
	found, _ := g.c.ContainsOrAdd(key, struct{}{})
	return found, nil
}

// Forget removes key. It never fails.
func (g *MemoryGuard) Forget(_ context.Context, key string) error {
	g.c.Remove(key)
	return nil
}
