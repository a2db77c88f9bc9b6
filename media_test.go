package wechatpay_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/wxpaykit/wechatpay"
)

func TestMediaUpload(t *testing.T) {
	srv := newSandbox(t)
	m := srv.Merchant()
	client, _ := newClient(t, srv.Config(), wechatpay.StoreOptions{})
	ctx := context.Background()
	image := bytes.Repeat([]byte("\x89PNG fake image "), 4096)
	sum := sha256.Sum256(image)

	for _, tc := range []struct{ path, name, field string }{
		{"/v3/merchant/media/upload", `shop "front".png`, "media_id"},
		{"/v3/merchant/media/video_upload", "intro.mp4", "media_id"},
		{"/v3/marketing/favor/media/image-upload", "coupon.jpg", "media_url"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			req, err := wechatpay.NewMediaUploadRequest(ctx, srv.URL+tc.path, tc.name, image)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if err := wechatpay.CheckResponse(resp); err != nil {
				t.Fatal(err)
			}
			var answer map[string]string
			json.NewDecoder(resp.Body).Decode(&answer)
			up, ok := srv.UploadedMedia(answer[tc.field])
			if !ok || up.SHA256 != hex.EncodeToString(sum[:]) || up.Filename != tc.name || up.Size != len(image) || up.MerchantID != m.ID {
				t.Errorf("sandbox recorded %+v, %v for answer %v", up, ok, answer)
			}
		})
	}

	t.Run("file changed after hashing", func(t *testing.T) {
		req, err := wechatpay.NewMediaUploadRequest(ctx, srv.URL+"/v3/merchant/media/upload", "a.png", image)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(req.Body)
		i := bytes.Index(body, image)
		body[i+100] ^= 0x20 // the file part changes; meta and signature stay
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = nil
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var apiErr *wechatpay.APIError
		if err := wechatpay.CheckResponse(resp); !errors.As(err, &apiErr) || apiErr.Code != "PARAM_ERROR" || !strings.Contains(apiErr.Message, "sha256") {
			t.Errorf("changed file: %v; want 400 PARAM_ERROR about sha256", err)
		}
	})
	t.Run("whole body signed is a SIGN_ERROR", func(t *testing.T) {
		req, _ := wechatpay.NewMediaUploadRequest(ctx, srv.URL+"/v3/merchant/media/upload", "a.png", image)
		resp, err := client.Do(req.WithContext(context.Background())) // drops the meta marker
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var apiErr *wechatpay.APIError
		if err := wechatpay.CheckResponse(resp); !errors.As(err, &apiErr) || apiErr.Code != "SIGN_ERROR" {
			t.Errorf("multipart body signed: %v; want 401 SIGN_ERROR", err)
		}
	})
	t.Run("marked bytes must be in the body", func(t *testing.T) {
		before := srv.PathRequests("/v3/merchant/media/upload")
		req, err := wechatpay.NewMediaUploadRequest(ctx, srv.URL+"/v3/merchant/media/upload", "x.png", image)
		if err != nil {
			t.Fatal(err)
		}
		req.Body, req.GetBody, req.ContentLength = io.NopCloser(strings.NewReader("other")), nil, 5
		if _, err := client.Do(req); err == nil || !strings.Contains(err.Error(), "meta JSON of this upload is not part of the request body") {
			t.Errorf("got %v; want an error saying the signed meta is not in the body", err)
		}
		if srv.PathRequests("/v3/merchant/media/upload") != before {
			t.Error("the request was sent")
		}
	})
	t.Run("bad input", func(t *testing.T) {
		if _, err := wechatpay.NewMediaUploadRequest(ctx, srv.URL, "", image); err == nil {
			t.Error("empty file name accepted")
		}
		if _, err := wechatpay.NewMediaUploadRequest(ctx, srv.URL, "a.png", nil); err == nil {
			t.Error("empty file accepted")
		}
	})
}
