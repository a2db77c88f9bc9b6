package wechatpay

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

func TestDirCacheRoundTrip(t *testing.T) {
	parent := t.TempDir()
	d := DirCache(filepath.Join(parent, "certs"))
	ctx := context.Background()

	if _, err := d.Get(ctx, "1900000001"); !errors.Is(err, ErrCacheMiss) {
		t.Fatalf("Get on a missing directory = %v; want ErrCacheMiss", err)
	}
	if err := d.Delete(ctx, "1900000001"); err != nil {
		t.Fatalf("Delete of a missing key = %v; want nil", err)
	}
	if err := d.Put(ctx, "1900000001", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "1900000001", []byte("two")); err != nil {
		t.Fatal(err)
	}
	got, err := d.Get(ctx, "1900000001")
	if err != nil || string(got) != "two" {
		t.Fatalf("Get = %q, %v; want \"two\"", got, err)
	}

	fi, err := os.Stat(string(d))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("directory mode = %v; want 0700", perm)
	}
	entries, err := os.ReadDir(string(d))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "1900000001" {
		t.Fatalf("directory holds %v; want only the entry (no temporary files)", entries)
	}
	info, _ := entries[0].Info()
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode = %v; want 0600", perm)
	}

	if err := d.Delete(ctx, "1900000001"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Get(ctx, "1900000001"); !errors.Is(err, ErrCacheMiss) {
		t.Errorf("Get after Delete = %v; want ErrCacheMiss", err)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := d.Put(cancelled, "k", []byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a cancelled context = %v; want context.Canceled", err)
	}
	if err := DirCache("").Put(ctx, "k", []byte("x")); err == nil {
		t.Error("Put on an empty DirCache succeeded; want an error")
	}
}

// TestDirCacheHostileKeys plays keys chosen to escape the directory: every
// one either fails or lands in a plain file directly inside it, and
// nothing appears anywhere else.
func TestDirCacheHostileKeys(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "cache")
	d := DirCache(dir)
	ctx := context.Background()
	keys := []string{
		"../escape", "../../etc/passwd", "/etc/passwd", "a/b", `a\b`, `..\..\x`, ".", "..",
		".hidden", ".tmp-123", "x\x00y", "C:", "C:\\Windows", "~", "%2e%2e", "%2F", "a b\nc",
		"中文", strings.Repeat("a", 200), strings.Repeat(".", 300), "",
	}
	stored := map[string]string{}
	for i, k := range keys {
		data := []byte{byte(i)}
		if err := d.Put(ctx, k, data); err != nil {
			continue // refusing is fine
		}
		stored[k] = string(data)
	}
	if len(stored) == 0 {
		t.Fatal("no key was stored at all")
	}
	// Nothing outside the directory.
	top, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(top) != 1 || top[0].Name() != "cache" {
		t.Errorf("parent directory holds %v; want only the cache directory", top)
	}
	// Only plain files, directly inside, none hidden, one per stored key.
	err = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		if e.IsDir() || !e.Type().IsRegular() {
			t.Errorf("%s is not a plain file", p)
		}
		if filepath.Dir(p) != dir {
			t.Errorf("%s is not directly inside the cache directory", p)
		}
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("%s is a hidden file", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	files, _ := os.ReadDir(dir)
	if len(files) != len(stored) {
		t.Errorf("%d files for %d stored keys: two keys share a file", len(files), len(stored))
	}
	for k, want := range stored {
		got, err := d.Get(ctx, k)
		if err != nil || string(got) != want {
			t.Errorf("Get(%q) = %q, %v; want %q", k, got, err, want)
		}
	}
	for _, k := range []string{"", strings.Repeat("/", 100)} {
		if err := d.Put(ctx, k, []byte("x")); err == nil {
			t.Errorf("Put(%q) succeeded; want an error", k)
		}
	}
}

// TestDirCacheAtomic has readers race writers: a reader sees one whole
// entry or the other, never a mix or a part.
func TestDirCacheAtomic(t *testing.T) {
	d := DirCache(t.TempDir())
	ctx := context.Background()
	a := bytes.Repeat([]byte("a"), 256<<10)
	b := bytes.Repeat([]byte("b"), 200<<10)
	if err := d.Put(ctx, "k", a); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				data := a
				if (i+w)%2 == 0 {
					data = b
				}
				if err := d.Put(ctx, "k", data); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 200 {
		got, err := d.Get(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, a) && !bytes.Equal(got, b) {
			t.Fatalf("Get returned %d bytes that are neither entry", len(got))
		}
	}
	close(stop)
	wg.Wait()
	files, _ := os.ReadDir(string(d))
	if len(files) != 1 {
		t.Errorf("directory holds %d files after the writers; want 1 (temporary files left behind)", len(files))
	}
}

func TestDirCacheOversized(t *testing.T) {
	d := DirCache(t.TempDir())
	if err := os.WriteFile(filepath.Join(string(d), "k"), make([]byte, maxCacheEntry+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Get(context.Background(), "k"); err == nil || errors.Is(err, ErrCacheMiss) {
		t.Errorf("Get of an oversized file = %v; want a size error", err)
	}
}

func testCachedDownload() *cachedDownload {
	h := http.Header{}
	h.Set(wire.HeaderTimestamp, "1700000000")
	h.Set(wire.HeaderNonce, "n0nce")
	h.Set(wire.HeaderSignature, "c2ln")
	h.Set(wire.HeaderSerial, "ABCDEF")
	h.Set(wire.HeaderSignatureType, wire.SchemeRSA)
	h.Set(wire.HeaderRequestID, "08F1A2B3C4D5")
	return newCachedDownload("1900000001", "https://api.mch.weixin.qq.com/v3/certificates", time.Unix(1700000001, 0), h, []byte("{\"data\": [ ]}\n\xff"))
}

func TestCachedDownloadRoundTrip(t *testing.T) {
	c := testCachedDownload()
	data, err := c.encode(time.Unix(1800000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("expires 1800000000\n{")) {
		t.Errorf("entry starts %q; want the expiry line then JSON", data[:min(len(data), 30)])
	}
	got, err := decodeCachedDownload(data)
	if err != nil {
		t.Fatal(err)
	}
	// The body survives byte for byte, whitespace and invalid UTF-8 included:
	// the signature covers it.
	if !bytes.Equal(got.Body, c.Body) || got.Header != c.Header || got.MerchantID != c.MerchantID || got.URL != c.URL || !got.Fetched.Equal(c.Fetched) {
		t.Errorf("decoded %+v; want %+v", got, c)
	}
	h := got.header()
	for _, k := range []string{wire.HeaderTimestamp, wire.HeaderNonce, wire.HeaderSignature, wire.HeaderSerial, wire.HeaderSignatureType, wire.HeaderRequestID} {
		if h.Get(k) == "" {
			t.Errorf("header() lacks %s", k)
		}
	}
}

func TestCachedDownloadGarbage(t *testing.T) {
	good, err := testCachedDownload().encode(time.Unix(1800000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	_, js, _ := bytes.Cut(good, []byte("\n"))
	replace := func(old, new string) []byte { return bytes.Replace(good, []byte(old), []byte(new), 1) }
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"no expiry line", js},
		{"bad expiry", append([]byte("expires soon\n"), js...)},
		{"not JSON", []byte("expires 1\n<xml/>")},
		{"unknown field", replace(`"format":1`, `"format":1,"certificate":"x"`)},
		{"trailing data", append(append([]byte{}, good...), []byte(`{}`)...)},
		{"wrong format", replace(`"format":1`, `"format":2`)},
		{"no signature", replace(`"wechatpay_signature":"c2ln"`, `"wechatpay_signature":""`)},
		{"no merchant", replace(`"merchant_id":"1900000001"`, `"merchant_id":""`)},
		{"body not base64", replace(`"body":"`, `"body":"!!`)},
		{"oversized", append(append([]byte{}, good...), bytes.Repeat([]byte(" "), maxCacheEntry)...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := decodeCachedDownload(tc.data); err == nil {
				t.Errorf("decodeCachedDownload = %+v, nil; want an error", c)
			}
		})
	}
}
