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
// The Store uses the merchant ID as the key. Each entry it puts begins with
// a line "expires <unix seconds>\n" telling when the entry becomes useless
// (its last certificate expires); a Cache may drop the entry from then on,
// as package redisstore does.
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
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrCacheMiss, filepath.Base(name))
	}
	if err != nil {
		return nil, fmt.Errorf("wechatpay: dir cache: %w", err)
	}
	defer f.Close()
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
