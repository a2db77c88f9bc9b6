package wechatpay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// mediaMeta is the "meta" part of a media upload: the file name and the
// lower-case hex SHA-256 of the file content.
type mediaMeta struct {
	Filename string `json:"filename"`
	SHA256   string `json:"sha256"`
}

// NewMediaUploadRequest returns a POST request for one of WeChat Pay's
// media upload endpoints, such as /v3/merchant/media/upload,
// /v3/merchant/media/video_upload or /v3/marketing/favor/media/image-upload
// (url is the full URL), carrying the file content under filename. The
// body is multipart/form-data with a "meta" part (Content-Type
// application/json, the JSON of mediaMeta) and a "file" part; the
// request's context marks the meta JSON as the bytes to sign (see
// wire.UploadRequest), so a Transport signs it as WeChat Pay requires. Send it
// through a client whose Transport is a *Transport; the body must fit in
// the Transport's MaxBodySize.
func NewMediaUploadRequest(ctx context.Context, url, filename string, content []byte) (*http.Request, error) {
	if filename == "" {
		return nil, errors.New("wechatpay: media upload: empty file name")
	}
	if len(content) == 0 {
		return nil, fmt.Errorf("wechatpay: media upload: file %q is empty", wire.Truncate(filename, 64))
	}
	sum := sha256.Sum256(content)
	meta, err := json.Marshal(mediaMeta{Filename: filename, SHA256: hex.EncodeToString(sum[:])})
	if err != nil {
		return nil, fmt.Errorf("wechatpay: media upload: %w", err)
	}

	req, err := wire.UploadRequest(ctx, url, meta, filename, content)
	if err != nil {
		return nil, fmt.Errorf("wechatpay: media upload: %w", err)
	}
	return req, nil
}
