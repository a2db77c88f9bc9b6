package wechatpaytest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/wxpaykit/wechatpay/internal/sm3"
)

// Uploads whose meta is not {filename, sha256} (docs/protocol.md §19):
// the fapiao file upload, whose meta carries an SM3 digest. Like every
// upload, the request is signed over its meta JSON (signedPart).

const fapiaoUploadPath = "/v3/new-tax-control-fapiao/fapiao-applications/upload-fapiao-file"

// isMetaUploadPath reports whether p is an upload route of this file or
// of the complaints part, whose signature covers the meta JSON.
func isMetaUploadPath(p string) bool {
	return p == fapiaoUploadPath || p == complaintUploadPath
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// fapiaoUploads is the fapiao file upload endpoint; it keeps nothing.
type fapiaoUploads struct{}

func (fapiaoUploads) routes() []route {
	return []route{{"POST " + fapiaoUploadPath, multipartBody, serveFapiaoUpload}}
}

// serveFapiaoUpload checks a fapiao file upload as WeChat Pay documents
// it: meta {sub_mchid?, file_type PDF or OFD, digest_alogrithm "SM3"
// (sic), digest: the lower-case hex SM3 of the file}, at most 2 MB, and
// answers {"fapiao_media_id":...}.
func serveFapiaoUpload(w http.ResponseWriter, r *http.Request) {
	u, err := parseUpload(r, bodyOf(r))
	if err != nil {
		WriteError(w, http.StatusBadRequest, "PARAM_ERROR", err.Error())
		return
	}
	var meta struct {
		SubMchID  string `json:"sub_mchid"`
		FileType  string `json:"file_type"`
		Algorithm string `json:"digest_alogrithm"`
		Digest    string `json:"digest"`
	}
	if err := json.Unmarshal(u.meta, &meta); err != nil {
		WriteError(w, http.StatusBadRequest, "PARAM_ERROR", "meta应为JSON对象")
		return
	}
	if !slices.Contains([]string{"PDF", "OFD"}, meta.FileType) {
		WriteError(w, http.StatusBadRequest, "PARAM_ERROR", "file_type应为PDF或OFD")
		return
	}
	if meta.Algorithm != "SM3" {
		WriteError(w, http.StatusBadRequest, "PARAM_ERROR", "digest_alogrithm应为SM3")
		return
	}
	sum := sm3.Sum(u.file)
	if !strings.EqualFold(meta.Digest, hex.EncodeToString(sum[:])) {
		WriteError(w, http.StatusBadRequest, "PARAM_ERROR", "文件摘要与meta中的digest不一致")
		return
	}
	if len(u.file) > maxImage {
		WriteError(w, http.StatusBadRequest, "PARAM_ERROR", "文件大小不能超过2M")
		return
	}
	writeJSON(w, map[string]string{"fapiao_media_id": randomText(32)})
}
