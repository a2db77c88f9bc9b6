package wechatpaytest

import (
	"context"
	"sync"
)

// lifecycle owns the server's background goroutines (callback deliveries,
// refunds settling) and tells request handlers that hang on purpose
// (CertHang, RouteTimeout, SetCertDelay) when the server closes.
type lifecycle struct {
	ctx    context.Context // cancelled by stop
	cancel context.CancelFunc
	wg     sync.WaitGroup // the goroutines started by goOwned

	mu      sync.Mutex
	stopped bool // guarded by mu; goOwned starts nothing once set
}

func newLifecycle() *lifecycle {
	l := &lifecycle{}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	return l
}

// goOwned runs f on a goroutine the server owns: Close cancels ctx and
// waits for f to return. After Close, goOwned does nothing.
func (l *lifecycle) goOwned(f func(ctx context.Context)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f(l.ctx)
	}()
}

// closing is closed when the server starts closing.
func (l *lifecycle) closing() <-chan struct{} { return l.ctx.Done() }

// stop cancels the goroutines and waits for them. It may be called more
// than once.
func (l *lifecycle) stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	l.cancel()
	l.wg.Wait()
}

// idle waits until no owned goroutine runs, without stopping them; a
// test calls it to know that a delivery has ended on its own. Call it
// only when no request can start new work meanwhile.
func (l *lifecycle) idle() { l.wg.Wait() }
