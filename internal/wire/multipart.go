package wire

import (
	"bytes"
	"context"
	"fmt"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"path"
	"strings"
)

// UploadRequest builds WeChat Pay's multipart upload (docs/protocol.md
// §1.4): a "meta" part holding meta, byte for byte, then a "file" part
// holding content, with a Content-Type guessed from filename's extension.
// The request is marked so that the Transport signs meta, which it
// refuses unless meta is in the body it sends. The callers check their
// own inputs; the errors here carry no prefix.
func UploadRequest(ctx context.Context, url string, meta []byte, filename string, content []byte) (*http.Request, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", `form-data; name="meta"`)
	h.Set("Content-Type", "application/json")
	pw, err := mw.CreatePart(h)
	if err != nil {
		return nil, err
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
		return nil, err
	}
	pw.Write(content)
	if err := mw.Close(); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(WithSignedBody(ctx, meta), http.MethodPost, url, bytes.NewReader(body.Bytes()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// quoteEscaper makes a file name safe inside a quoted header parameter:
// no line breaks, which would start another header.
var quoteEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\r", "", "\n", "")
