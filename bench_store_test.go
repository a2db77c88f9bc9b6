package wechatpay

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// BenchmarkStoreHitParallel is BenchmarkStoreHit from every goroutine at
// once: run with -cpu 1,2 and compare ns/op to see how hits scale with
// cores.
func BenchmarkStoreHitParallel(b *testing.B) {
	f := newFake(b)
	s := newTestStore(b, StoreOptions{}, f, "1900000001")
	defer s.Close()
	serial := wire.CertSerial(f.certs[0].cert)
	ctx := context.Background()
	if _, err := s.PublicKey(ctx, "1900000001", serial); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.PublicKey(ctx, "1900000001", serial); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkStoreHeapPerMerchant reports the heap a Store holds per
// registered merchant with its certificate set loaded (B/merchant), at
// 1k, 10k and 100k merchants. The merchants share the fake's APIv3 key,
// as the sub-merchants of a service provider do.
func BenchmarkStoreHeapPerMerchant(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				f := newFake(b)
				serial := wire.CertSerial(f.certs[0].cert)
				base := &replayBase{next: f}
				signer := cheapSigner{testKey(0)}
				ids := make([]string, n)
				for i := range ids {
					ids[i] = fmt.Sprintf("19%08d", i)
				}
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				s, err := NewStore(StoreOptions{Size: n})
				if err != nil {
					b.Fatal(err)
				}
				for _, id := range ids {
					cfg := testConfig(id, f)
					cfg.Base = base
					cfg.PrivateKey = signer
					if err := s.Register(cfg); err != nil {
						b.Fatal(err)
					}
					if _, err := s.PublicKey(context.Background(), id, serial); err != nil {
						b.Fatal(err)
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "B/merchant")
				runtime.KeepAlive(s)
				runtime.KeepAlive(ids)
				s.Close()
			}
		})
	}
}

// replayBase answers requests with a response of next, fetched again each
// minute (its signature's timestamp must stay within the skew): one
// certificate download serves every merchant of the benchmark (they share
// the APIv3 key, and the download's signature does not name the merchant).
type replayBase struct {
	next    http.RoundTripper
	mu      sync.Mutex
	fetched time.Time
	header  http.Header
	body    []byte
}

func (r *replayBase) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.fetched) > time.Minute {
		resp, err := r.next.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if r.body, err = io.ReadAll(resp.Body); err != nil {
			return nil, err
		}
		r.header, r.fetched = resp.Header, time.Now()
	}
	return &http.Response{StatusCode: 200, Header: r.header.Clone(), Body: io.NopCloser(bytes.NewReader(r.body)), ContentLength: int64(len(r.body)), Request: req}, nil
}

// cheapSigner signs nothing: replayBase does not check the Authorization, and
// RSA signing would make loading 100k merchants take minutes.
type cheapSigner struct{ crypto.Signer }

func (cheapSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return make([]byte, 256), nil
}
