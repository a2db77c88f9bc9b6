// Package upload builds WeChat Pay's multipart uploads with any meta: the
// media uploads' {filename, sha256}, the fapiao file's {file_type,
// digest_alogrithm, digest}, or whatever an endpoint documents. WeChat Pay
// signs such a request over the JSON of its "meta" part, not over the
// multipart body (docs/protocol.md §1.4, §19); NewRequest marks exactly
// the meta bytes it sends as the bytes to sign, so a *wechatpay.Transport
// signs what the server will read, byte for byte.
//
// The digest helpers give the lower-case hex digests WeChat Pay's meta
// fields carry: SHA256 for media uploads, SM3 (GB/T 32905-2016) for the
// fapiao upload.
package upload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/wxpaykit/wechatpay/internal/sm3"
	"github.com/wxpaykit/wechatpay/internal/wire"
)

// SHA256 returns the lower-case hex SHA-256 of content, the "sha256" of a
// media upload's meta.
func SHA256(content []byte) string {
	s := sha256.Sum256(content)
	return hex.EncodeToString(s[:])
}

// SM3 returns the lower-case hex SM3 digest of content, the "digest" of
// the fapiao upload's meta (digest_alogrithm "SM3").
func SM3(content []byte) string {
	s := sm3.Sum(content)
	return hex.EncodeToString(s[:])
}

// NewRequest returns a POST request to url, a WeChat Pay upload endpoint,
// whose multipart/form-data body has a "meta" part holding meta exactly
// (Content-Type application/json) and a "file" part holding content under
// filename (its Content-Type from the name's extension). The request's
// context marks meta as the bytes the Transport signs; send it through an
// *http.Client whose Transport is a *wechatpay.Transport. meta must be a
// JSON object: build it with encoding/json from the endpoint's fields,
// with SHA256 or SM3 of content for its digest. The body must fit in the
// Transport's MaxBodySize.
func NewRequest(ctx context.Context, url string, meta []byte, filename string, content []byte) (*http.Request, error) {
	if t := bytes.TrimSpace(meta); len(t) == 0 || t[0] != '{' || !json.Valid(t) {
		return nil, errors.New("wechatpay/upload: meta is not a JSON object")
	}
	if filename == "" {
		return nil, errors.New("wechatpay/upload: empty file name")
	}
	if len(content) == 0 {
		return nil, fmt.Errorf("wechatpay/upload: file %q is empty", wire.Truncate(filename, 64))
	}
	req, err := wire.UploadRequest(ctx, url, meta, filename, content)
	if err != nil {
		return nil, fmt.Errorf("wechatpay/upload: %w", err)
	}
	return req, nil
}
