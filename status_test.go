package wechatpay

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

func TestStoreStatus(t *testing.T) {
	f := newFake(t)
	s := newTestStore(t, StoreOptions{RefreshInterval: time.Hour}, f, "1900000001")
	defer s.Close()
	clock := newTestClock(s, f)
	ctx := context.Background()
	serial := wire.CertSerial(f.certs[0].cert)
	if _, err := s.PublicKey(ctx, "1900000001", serial); err != nil {
		t.Fatal(err)
	}
	st := s.Status("1900000001")
	if len(st) != 1 {
		t.Fatalf("Status = %d entries; want 1", len(st))
	}
	got := st[0]
	if len(got.Keys) != 1 || got.Keys[0].Serial != serial || got.Keys[0].Source != "download" || got.Keys[0].PublicKey ||
		!got.Keys[0].NotAfter.Equal(f.certs[0].cert.NotAfter) || got.Downloads != 1 || got.LastError != nil ||
		got.LastSuccess.IsZero() || !got.NextRefresh.Equal(got.LastSuccess.Add(time.Hour)) {
		t.Errorf("after a download: %+v", got)
	}

	// A background refresh fails: the error is recorded, the old key serves.
	f.mu.Lock()
	f.status = 500
	f.mu.Unlock()
	clock.advance(2 * time.Hour)
	if _, err := s.PublicKey(ctx, "1900000001", serial); err != nil {
		t.Fatalf("stale key while refreshing: %v", err)
	}
	s.Close() // waits for the refresh
	got = s.Status("1900000001")[0]
	if got.LastError == nil || !errors.Is(got.LastError, ErrCertificateDownload) || got.Downloads != 2 || len(got.Keys) != 1 {
		t.Errorf("after a failed refresh: %+v", got)
	}
	if _, err := s.PublicKey(ctx, "1900000001", serial); err != nil {
		t.Errorf("the old key stopped serving after a failed refresh: %v", err)
	}
	// Rate-limited lookups are counted.
	s.PublicKey(ctx, "1900000001", strings.Repeat("AB", 20))
	s.PublicKey(ctx, "1900000001", strings.Repeat("CD", 20))
	if got := s.Status("1900000001")[0]; got.RateLimited != 2 {
		t.Errorf("RateLimited = %d; want 2", got.RateLimited)
	}
}

func TestStoreStatusPublicKeyOnly(t *testing.T) {
	f := newFake(t)
	f.status, f.errBody = 404, []byte(`{"code":"RESOURCE_NOT_EXISTS","message":"无可用的平台证书"}`)
	cfg := testConfig("1900000002", f)
	cfg.PublicKeyID, cfg.PublicKey = "PUB_KEY_ID_0000000000000024101100397200000006", &testKey(3).PublicKey
	s, err := NewStore(StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Register(cfg); err != nil {
		t.Fatal(err)
	}
	s.PublicKey(context.Background(), "1900000002", strings.Repeat("AB", 20))
	all := s.Status()
	if len(all) != 1 {
		t.Fatalf("Status() = %d merchants; want 1", len(all))
	}
	got := all[0]
	if !got.PublicKeyOnly || len(got.Keys) != 1 || !got.Keys[0].PublicKey || got.Keys[0].Serial != cfg.PublicKeyID || got.Keys[0].Source != "config" {
		t.Errorf("public-key merchant: %+v", got)
	}
	if strings.Contains(strings.ToLower(got.LastError.Error()), "private") {
		t.Errorf("status error mentions key material: %v", got.LastError)
	}
}
