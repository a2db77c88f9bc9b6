package redisstore_test

import (
	"context"
	"testing"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/redisstore"
)

// benchCold measures the first lookup of a merchant's key by a new Store:
// with cache, read from Redis and every check; without, a download from
// the sandbox over loopback and every check.
func benchCold(b *testing.B, cache bool) {
	r := startRedis(b)
	f := newFleet(b, 1)
	id := f.merchants[0]
	rdb := r.Client()
	var opts wechatpay.StoreOptions
	if cache {
		opts.Cache = &redisstore.Cache{Client: rdb}
	}
	warm := f.start(b, r, wechatpay.StoreOptions{}) // puts the entry
	f.verifyAll(b, warm, f.merchants)
	cfg := f.srv.MerchantConfig(id)
	ctx := context.Background()
	before := f.srv.CertificateDownloads()
	b.ReportAllocs()
	for b.Loop() {
		s, err := wechatpay.NewStore(opts)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Register(cfg); err != nil {
			b.Fatal(err)
		}
		if _, err := s.PublicKey(ctx, id, f.serials[id]); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
	downloads := f.srv.CertificateDownloads() - before
	if cache && downloads != 0 {
		b.Errorf("%d downloads with the cache; want 0", downloads)
	}
	if !cache && downloads != b.N {
		b.Errorf("%d downloads for %d lookups", downloads, b.N)
	}
}

// BenchmarkColdFromRedis: a new instance's first lookup, from Redis.
func BenchmarkColdFromRedis(b *testing.B) { benchCold(b, true) }

// BenchmarkColdDownload: the same with a download from the sandbox.
func BenchmarkColdDownload(b *testing.B) { benchCold(b, false) }
