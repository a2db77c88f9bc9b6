package wechatpay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wxpaykit/wechatpay/internal/atomicfile"
	"github.com/wxpaykit/wechatpay/internal/wire"
)

// A Cache stores certificate downloads for a Store beyond its own memory:
// across restarts (DirCache) or across the instances of a fleet (package
// redisstore). Implementations must be safe for concurrent use.
//
// A cache is storage, never a source of trust: the Store keeps each
// download as WeChat Pay sent it (the encrypted certificates with the
// response's signature headers) and runs every check of a fresh download
// on what it reads back, with the merchant's APIv3 key. Whoever can write
// the cache but does not hold the APIv3 key cannot plant a certificate;
// an entry that fails the checks is deleted and replaced by a download.
//
// A cache can only make a Store trust less than WeChat Pay says, never
// more. A download read back is used only if WeChat Pay signed it less
// than a day ago and after the last RESOURCE_NOT_EXISTS answer known to
// the Store or recorded in the cache. Deleting entries costs downloads;
// writing them cannot make a Store trust anything WeChat Pay does not
// vouch for now.
//
// The Store uses the merchant ID as the key of the merchant's last
// download. When WeChat Pay answers RESOURCE_NOT_EXISTS (the merchant
// moved to its public key), the Store deletes that entry and puts, under
// the merchant ID + "/void", a record of when; from then on no Store
// sharing the cache uses a download signed before it (one that lists
// certificates again replaces it in effect). Each entry the Store puts
// begins with a line "expires <unix seconds>\n" telling when the entry
// becomes useless; a Cache may drop the entry from then on, as package
// redisstore does.
//
// The Store bounds every call itself (500 ms, see
// StoreOptions.CacheErrorHandler): a Cache should honour its context, but
// one that does not delays a download by at most the bound, after which
// the Store carries on as if it had no cache. A call that never returns
// is left running; past four of them the Store stops calling the Cache.
//
// A Cache shared by a fleet may also have the method
//
//	TryLock(ctx context.Context, key string) (unlock func() error, ok bool, err error)
//
// a lock shared by the fleet that a Store takes before downloading a
// merchant's certificates, so that the fleet downloads about once instead
// of once per instance. TryLock takes the lock named key without waiting:
// ok is false when another holder has it; unlock releases it if it is
// still this holder's (it may be called after the lock expired). A lock
// must free itself after a while if its holder dies. A Store that does not
// get the lock waits a moment (up to 2 s) for the holder's download to
// appear in the Cache, then downloads by itself rather than fail.
// redisstore.Cache has it.
type Cache interface {
	// Get returns the data stored under key, or an error wrapping
	// ErrCacheMiss if there is none.
	Get(ctx context.Context, key string) ([]byte, error)
	// Put stores data under key, replacing what was there.
	Put(ctx context.Context, key string, data []byte) error
	// Delete removes key. Deleting a key that is not there is not an
	// error.
	Delete(ctx context.Context, key string) error
}

// cacheLocker is a Cache with a fleet-wide download lock (see Cache).
type cacheLocker interface {
	TryLock(ctx context.Context, key string) (unlock func() error, ok bool, err error)
}

// DirCache is a Cache that keeps each entry in a file of the directory it
// names, for one machine across restarts. Files are written atomically
// (a temporary file renamed into place) with mode 0600; the directory is
// created with mode 0700 when missing. Keys are escaped into file names
// that cannot leave the directory.
type DirCache string

var _ Cache = DirCache("")

// maxCacheEntry bounds an entry read back from a cache: a download body
// (maxCertResponse) in base64, its headers and some JSON.
const maxCacheEntry = maxCertResponse*4/3 + 64<<10

// Get reads the file of key. A missing file is ErrCacheMiss.
func (d DirCache) Get(ctx context.Context, key string) ([]byte, error) {
	name, err := d.file(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Only a regular file is an entry: a named pipe, a device or a
	// symbolic link put where an entry belongs would block the read or
	// lead elsewhere. Lstat refuses them without opening; O_NONBLOCK and
	// the second check catch one swapped in between.
	fi, err := os.Lstat(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrCacheMiss, filepath.Base(name))
	}
	if err != nil {
		return nil, fmt.Errorf("wechatpay: dir cache: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("wechatpay: dir cache: %s is not a regular file (%s)", name, fi.Mode().Type())
	}
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("wechatpay: dir cache: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("wechatpay: dir cache: %s is not a regular file", name)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxCacheEntry+1))
	if err != nil {
		return nil, fmt.Errorf("wechatpay: dir cache: %w", err)
	}
	if len(b) > maxCacheEntry {
		return nil, fmt.Errorf("wechatpay: dir cache: %s is larger than %d bytes", name, maxCacheEntry)
	}
	return b, nil
}

// Put writes data to a temporary file in the directory and renames it to
// the file of key, so that a reader sees the old entry or the new one,
// never a part.
func (d DirCache) Put(ctx context.Context, key string, data []byte) (err error) {
	name, err := d.file(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("wechatpay: dir cache: %w", err)
		}
	}()
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(name, data, 0o600)
}

// Delete removes the file of key.
func (d DirCache) Delete(ctx context.Context, key string) error {
	name, err := d.file(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("wechatpay: dir cache: %w", err)
	}
	return nil
}

// file returns the path of key's file. Every byte of key outside
// [A-Za-z0-9_-] is escaped as %XX, so that no key can name a path
// separator, "." or "..", a hidden or temporary file, or anything outside
// the directory.
func (d DirCache) file(key string) (string, error) {
	if d == "" {
		return "", errors.New("wechatpay: dir cache: no directory")
	}
	if key == "" {
		return "", errors.New("wechatpay: dir cache: empty key")
	}
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	if b.Len() > 200 {
		return "", fmt.Errorf("wechatpay: dir cache: key of %d bytes is too long", len(key))
	}
	return filepath.Join(string(d), b.String()), nil
}

// cachedDownload is a certificate download as WeChat Pay sent it, the
// entry a Store puts in its Cache: the body and the signature headers are
// byte for byte what the endpoint answered, so that everything checked on
// a fresh download can be checked again on what is read back.
type cachedDownload struct {
	Format     int           `json:"format"`      // cacheFormat
	MerchantID string        `json:"merchant_id"` // the merchant it was downloaded for
	URL        string        `json:"url"`         // the certificate endpoint
	Fetched    time.Time     `json:"fetched"`     // when, by the writer's clock; informative only
	Header     cachedHeaders `json:"header"`
	Body       []byte        `json:"body"` // the raw JSON body, base64 in the entry
}

// cachedHeaders are the response headers a download's signature needs.
type cachedHeaders struct {
	Timestamp     string `json:"wechatpay_timestamp"`
	Nonce         string `json:"wechatpay_nonce"`
	Signature     string `json:"wechatpay_signature"`
	Serial        string `json:"wechatpay_serial"`
	SignatureType string `json:"wechatpay_signature_type,omitempty"`
	RequestID     string `json:"request_id,omitempty"`
}

const (
	cacheFormat       = 1
	cacheExpiryPrefix = "expires "
)

// newCachedDownload records a download's response.
func newCachedDownload(merchantID, url string, fetched time.Time, h http.Header, body []byte) *cachedDownload {
	return &cachedDownload{
		Format:     cacheFormat,
		MerchantID: merchantID,
		URL:        url,
		Fetched:    fetched.UTC().Round(0),
		Header: cachedHeaders{
			Timestamp:     h.Get(wire.HeaderTimestamp),
			Nonce:         h.Get(wire.HeaderNonce),
			Signature:     h.Get(wire.HeaderSignature),
			Serial:        h.Get(wire.HeaderSerial),
			SignatureType: h.Get(wire.HeaderSignatureType),
			RequestID:     h.Get(wire.HeaderRequestID),
		},
		Body: body,
	}
}

// header returns the recorded headers as an http.Header.
func (c *cachedDownload) header() http.Header {
	h := http.Header{}
	set := func(k, v string) {
		if v != "" {
			h.Set(k, v)
		}
	}
	set(wire.HeaderTimestamp, c.Header.Timestamp)
	set(wire.HeaderNonce, c.Header.Nonce)
	set(wire.HeaderSignature, c.Header.Signature)
	set(wire.HeaderSerial, c.Header.Serial)
	set(wire.HeaderSignatureType, c.Header.SignatureType)
	set(wire.HeaderRequestID, c.Header.RequestID)
	return h
}

// encode returns the entry: the expiry line, then the JSON.
func (c *cachedDownload) encode(expires time.Time) ([]byte, error) {
	j, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(len(cacheExpiryPrefix) + 21 + len(j))
	b.WriteString(cacheExpiryPrefix)
	b.WriteString(strconv.FormatInt(expires.Unix(), 10))
	b.WriteByte('\n')
	b.Write(j)
	return b.Bytes(), nil
}

// errMalformedEntry marks an entry that is not a cachedDownload at all.
var errMalformedEntry = errors.New("malformed cache entry")

// decodeCachedDownload parses an entry strictly: bounded in size, the
// expiry line, then exactly one JSON object with known fields only and
// every required field set. It checks the form only; trust comes from the
// checks the Store runs on the result.
func decodeCachedDownload(data []byte) (*cachedDownload, error) {
	if len(data) > maxCacheEntry {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", errMalformedEntry, len(data), maxCacheEntry)
	}
	line, rest, ok := bytes.Cut(data, []byte{'\n'})
	if !ok || !bytes.HasPrefix(line, []byte(cacheExpiryPrefix)) {
		return nil, fmt.Errorf("%w: no expiry line", errMalformedEntry)
	}
	if _, err := strconv.ParseInt(string(line[len(cacheExpiryPrefix):]), 10, 64); err != nil {
		return nil, fmt.Errorf("%w: bad expiry line", errMalformedEntry)
	}
	dec := json.NewDecoder(bytes.NewReader(rest))
	dec.DisallowUnknownFields()
	var c cachedDownload
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformedEntry, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the JSON object", errMalformedEntry)
	}
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"merchant_id", c.MerchantID}, {"url", c.URL},
		{"header.wechatpay_timestamp", c.Header.Timestamp}, {"header.wechatpay_nonce", c.Header.Nonce},
		{"header.wechatpay_signature", c.Header.Signature}, {"header.wechatpay_serial", c.Header.Serial},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(c.Body) == 0 {
		missing = append(missing, "body")
	}
	switch {
	case c.Format != cacheFormat:
		return nil, fmt.Errorf("%w: format %d, want %d", errMalformedEntry, c.Format, cacheFormat)
	case len(missing) > 0:
		return nil, fmt.Errorf("%w: missing %s", errMalformedEntry, strings.Join(missing, ", "))
	}
	return &c, nil
}

// voidRecord is what a Store puts under a merchant's void key (see
// Cache) when WeChat Pay answers RESOURCE_NOT_EXISTS for the merchant's
// certificates: from then on, no Store sharing the Cache uses a cached
// download signed before Voided. It can only lower trust: whoever writes
// one makes Stores refuse cached downloads and wait for WeChat Pay's own
// answer; whoever deletes one brings back at most what the age limit on
// cached downloads (a day) already allows a replay to bring back.
type voidRecord struct {
	Format     int       `json:"format"` // cacheFormat
	Kind       string    `json:"kind"`   // voidKind
	MerchantID string    `json:"merchant_id"`
	URL        string    `json:"url"`
	Voided     time.Time `json:"voided"` // when the answer came, by the writer's clock
}

const voidKind = "resource_not_exists"

// voidKey is the Cache key of merchantID's void record.
func voidKey(merchantID string) string { return merchantID + "/void" }

// encode returns the record with its expiry line: past maxCachedAge no
// cached download it could refuse is used anyway.
func (v *voidRecord) encode() ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	line := cacheExpiryPrefix + strconv.FormatInt(v.Voided.Add(maxCachedAge).Unix(), 10) + "\n"
	return append([]byte(line), j...), nil
}

// decodeVoidRecord parses a void record as strictly as a download.
func decodeVoidRecord(data []byte) (*voidRecord, error) {
	if len(data) > 4<<10 {
		return nil, fmt.Errorf("%w: void record of %d bytes", errMalformedEntry, len(data))
	}
	line, rest, ok := bytes.Cut(data, []byte{'\n'})
	if !ok || !bytes.HasPrefix(line, []byte(cacheExpiryPrefix)) {
		return nil, fmt.Errorf("%w: no expiry line", errMalformedEntry)
	}
	dec := json.NewDecoder(bytes.NewReader(rest))
	dec.DisallowUnknownFields()
	var v voidRecord
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformedEntry, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the JSON object", errMalformedEntry)
	}
	if v.Format != cacheFormat || v.Kind != voidKind || v.MerchantID == "" || v.URL == "" || v.Voided.IsZero() {
		return nil, fmt.Errorf("%w: not a void record", errMalformedEntry)
	}
	return &v, nil
}
