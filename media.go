package wechatpay

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"path"
	"strings"

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
// withSignedBody), so a Transport signs it as WeChat Pay requires. Send it
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

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", `form-data; name="meta"`)
	h.Set("Content-Type", "application/json")
	pw, err := mw.CreatePart(h)
	if err != nil {
		return nil, fmt.Errorf("wechatpay: media upload: %w", err)
	}
	pw.Write(meta)

	h = make(textproto.MIMEHeader)
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename="%s"`, quoteEscaper.Replace(filename)))
	ct := mime.TypeByExtension(strings.ToLower(path.Ext(filename)))
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	if pw, err = mw.CreatePart(h); err != nil {
		return nil, fmt.Errorf("wechatpay: media upload: %w", err)
	}
	pw.Write(content)
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("wechatpay: media upload: %w", err)
	}

	req, err := http.NewRequestWithContext(withSignedBody(ctx, meta), http.MethodPost, url, bytes.NewReader(body.Bytes()))
	if err != nil {
		return nil, fmt.Errorf("wechatpay: media upload: %w", err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Accept", "application/json")
	return req, nil
}

var quoteEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`)
