package upload_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/upload"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

const fapiaoPath = "/v3/new-tax-control-fapiao/fapiao-applications/upload-fapiao-file"

func client(t *testing.T) (*wechatpaytest.Server, *http.Client) {
	t.Helper()
	srv := wechatpaytest.NewServer()
	t.Cleanup(srv.Close)
	tr, err := wechatpay.NewTransport(srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	return srv, &http.Client{Transport: tr}
}

// TestFapiaoUploadSM3 uploads a fapiao file with its SM3 meta to the
// simulator, which checks the signature over the meta JSON and the digest.
func TestFapiaoUploadSM3(t *testing.T) {
	srv, hc := client(t)
	pdf := []byte("%PDF-1.7\n" + strings.Repeat("fapiao ", 200))
	// A meta in the endpoint's own field order and spelling (sic).
	meta := []byte(`{"file_type":"PDF","digest_alogrithm":"SM3","digest":"` + upload.SM3(pdf) + `"}`)
	req, err := upload.NewRequest(context.Background(), srv.URL+fapiaoPath, meta, "fapiao.pdf", pdf)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := wechatpay.CheckResponse(resp); err != nil {
		t.Fatal(err)
	}
	var out struct {
		ID string `json:"fapiao_media_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.ID == "" {
		t.Fatalf("answer: %+v, %v", out, err)
	}

	// A wrong digest is refused by the server, after a valid signature.
	bad := []byte(`{"file_type":"PDF","digest_alogrithm":"SM3","digest":"` + upload.SHA256(pdf) + `"}`)
	req, _ = upload.NewRequest(context.Background(), srv.URL+fapiaoPath, bad, "fapiao.pdf", pdf)
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var apiErr *wechatpay.APIError
	if err := wechatpay.CheckResponse(resp); !errors.As(err, &apiErr) || apiErr.Code != "PARAM_ERROR" || !strings.Contains(apiErr.Message, "摘要") {
		t.Fatalf("wrong digest: %v; want PARAM_ERROR about the digest", err)
	}
}

// TestSignedMetaIsSentMeta plays a body changed after the request was
// built: the meta the Transport signs must be in the body, else nothing
// is sent.
func TestSignedMetaIsSentMeta(t *testing.T) {
	srv, hc := client(t)
	meta := []byte(`{"filename":"a.png","sha256":"` + upload.SHA256([]byte("png")) + `"}`)
	req, err := upload.NewRequest(context.Background(), srv.URL+"/v3/merchant-service/images/upload", meta, "a.png", []byte("png"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(bytes.Replace(body, []byte(`"a.png","sha256"`), []byte(`"b.png","sha256"`), 1)))
	req.ContentLength = -1
	before := srv.PathRequests("/v3/merchant-service/images/upload")
	if resp, err := hc.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("a body whose meta differs from the signed meta was sent")
	}
	if n := srv.PathRequests("/v3/merchant-service/images/upload"); n != before {
		t.Fatalf("the server saw %d requests; want none", n-before)
	}
}

func TestNewRequestChecks(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, meta, file string
		content          []byte
	}{
		{"empty meta", "", "a.pdf", []byte("x")},
		{"meta not an object", `["x"]`, "a.pdf", []byte("x")},
		{"meta not JSON", `{"x":`, "a.pdf", []byte("x")},
		{"no file name", `{}`, "", []byte("x")},
		{"empty file", `{}`, "a.pdf", nil},
	} {
		if _, err := upload.NewRequest(ctx, "https://api.mch.weixin.qq.com/x", []byte(tc.meta), tc.file, tc.content); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if got := upload.SHA256([]byte("abc")); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("SHA256(abc) = %s", got)
	}
	if got := upload.SM3([]byte("abc")); got != "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0" {
		t.Errorf("SM3(abc) = %s", got)
	}
}
