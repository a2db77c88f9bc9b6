package wechatpaytest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
)

// UploadedMedia describes a file the sandbox accepted on a media upload
// endpoint.
type UploadedMedia struct {
	MerchantID string
	Filename   string
	SHA256     string // lower-case hex
	Size       int
	Path       string // the endpoint
}

// mediaStore serves the media upload endpoints and keeps what they
// accepted.
type mediaStore struct {
	mu       sync.Mutex
	uploaded map[string]UploadedMedia // guarded by mu; by media_id or media_url
}

// Paths of the media upload endpoints.
const (
	mediaUploadPath    = "/v3/merchant/media/upload"
	videoUploadPath    = "/v3/merchant/media/video_upload"
	marketingImagePath = "/v3/marketing/favor/media/image-upload"
)

// routes are the upload endpoints.
func (ms *mediaStore) routes() []route {
	return []route{
		{"POST " + mediaUploadPath, multipartBody, ms.serveUpload},
		{"POST " + videoUploadPath, multipartBody, ms.serveUpload},
		{"POST " + marketingImagePath, multipartBody, ms.serveUpload},
	}
}

// lookup returns the file accepted under id.
func (ms *mediaStore) lookup(id string) (UploadedMedia, bool) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	u, ok := ms.uploaded[id]
	return u, ok
}

func isMediaPath(p string) bool {
	return p == mediaUploadPath || p == videoUploadPath || p == marketingImagePath
}

// Limits and formats of the upload endpoints, as WeChat Pay documents
// them for merchant images and videos.
var (
	imageExts = []string{".jpg", ".jpeg", ".bmp", ".png"}
	videoExts = []string{".avi", ".wmv", ".mpeg", ".mp4", ".mov", ".mkv", ".flv", ".f4v", ".m4v", ".rmvb"}
)

const (
	maxImage = 2 << 20
	maxVideo = 5 << 20
)

// upload is a parsed multipart media upload.
type upload struct {
	meta     []byte // the meta part, exactly as sent
	file     []byte
	filename string // of the file part
}

// parseUpload reads the multipart body of a media upload: one "meta" part
// and one "file" part.
func parseUpload(r *http.Request, body []byte) (*upload, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, errors.New("Content-Type应为multipart/form-data")
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	u := &upload{}
	var haveMeta, haveFile bool
	for {
		p, err := mr.NextRawPart() // no transfer decoding: the bytes as signed
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errors.New("multipart报文格式错误")
		}
		b, err := io.ReadAll(p)
		if err != nil {
			return nil, errors.New("multipart报文格式错误")
		}
		switch p.FormName() {
		case "meta":
			if haveMeta {
				return nil, errors.New("meta重复")
			}
			u.meta, haveMeta = b, true
		case "file":
			if haveFile {
				return nil, errors.New("file重复")
			}
			u.file, u.filename, haveFile = b, p.FileName(), true
		}
	}
	if !haveMeta || !haveFile {
		return nil, errors.New("缺少meta或file")
	}
	return u, nil
}

// signedPart returns the bytes a request's signature covers: the meta
// JSON for media uploads (docs/protocol.md §1.4), otherwise the body.
func signedPart(r *http.Request, body []byte) []byte {
	if !isMediaPath(r.URL.Path) && !isMetaUploadPath(r.URL.Path) || r.Method != http.MethodPost {
		return body
	}
	u, err := parseUpload(r, body)
	if err != nil {
		return body // fails the signature check, as it should
	}
	return u.meta
}

// serveMediaUpload checks a media upload, whose signature over the meta
// JSON was checked already: the meta names the file and its SHA-256,
// which must match the file part, and the format and size fit the
// endpoint. It answers {"media_id":...} ({"media_url":...} for marketing
// images).
func (ms *mediaStore) serveUpload(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	u, err := parseUpload(r, body)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "PARAM_ERROR", err.Error())
		return
	}
	var meta struct {
		Filename string `json:"filename"`
		SHA256   string `json:"sha256"`
	}
	if err := json.Unmarshal(u.meta, &meta); err != nil || meta.Filename == "" || meta.SHA256 == "" {
		WriteError(w, http.StatusBadRequest, "PARAM_ERROR", "meta应为包含filename和sha256的JSON")
		return
	}
	sum := sha256.Sum256(u.file)
	if meta.SHA256 != hex.EncodeToString(sum[:]) {
		WriteError(w, http.StatusBadRequest, "PARAM_ERROR", "文件的sha256与meta中的sha256不一致")
		return
	}
	exts, limit := imageExts, maxImage
	if r.URL.Path == videoUploadPath {
		exts, limit = videoExts, maxVideo
	}
	if !slices.Contains(exts, strings.ToLower(path.Ext(meta.Filename))) {
		WriteError(w, http.StatusBadRequest, "PARAM_ERROR", "不支持的文件格式")
		return
	}
	if len(u.file) > limit {
		WriteError(w, http.StatusBadRequest, "PARAM_ERROR", "文件大小超过限制")
		return
	}
	id := randomText(40)
	key, answer := id, map[string]string{"media_id": id}
	if r.URL.Path == marketingImagePath {
		key = "https://wxpaylogo.qpic.cn/wxpaylogo/sandbox/" + strings.ToLower(id)
		answer = map[string]string{"media_url": key}
	}
	ms.mu.Lock()
	if ms.uploaded == nil {
		ms.uploaded = make(map[string]UploadedMedia)
	}
	ms.uploaded[key] = UploadedMedia{MerchantID: MerchantIDFrom(r.Context()), Filename: meta.Filename, SHA256: meta.SHA256, Size: len(u.file), Path: r.URL.Path}
	ms.mu.Unlock()
	writeJSON(w, answer)
}

// UploadedMedia returns the file accepted under id, the media_id (or, for
// /v3/marketing/favor/media/image-upload, the media_url) the sandbox
// answered.
func (s *Server) UploadedMedia(id string) (UploadedMedia, bool) { return s.media.lookup(id) }
