package wechatpaytest

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"testing"

	"github.com/wxpaykit/wechatpay/apiv2"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/wire"
)

// postV2 posts fields, signed with key and signType unless sign is set,
// to an APIv2 path of srv and returns the answer's fields.
func postV2(t *testing.T, srv *Server, p string, fields map[string]string, key, signType string) map[string]string {
	t.Helper()
	if _, ok := fields["sign"]; !ok {
		sign, err := apiv2.Sign(fields, key, signType)
		if err != nil {
			t.Fatal(err)
		}
		fields["sign"] = sign
	}
	resp, err := http.Post(srv.URL+p, "text/xml", bytes.NewReader(apiv2.EncodeXML(fields)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	answer, err := apiv2.ParseXML(b)
	if err != nil {
		t.Fatalf("answer %q: %v", b, err)
	}
	return answer
}

func TestV2Certificates(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	m := srv.Merchant()
	req := func() map[string]string {
		return map[string]string{"mch_id": m.ID, "nonce_str": "abcdef", "sign_type": "HMAC-SHA256"}
	}
	answer := postV2(t, srv, "/risk/getcertficates", req(), m.APIv2Key, "HMAC-SHA256")
	if answer["return_code"] != "SUCCESS" || answer["result_code"] != "SUCCESS" || answer["mch_id"] != m.ID {
		t.Fatalf("answer %v", answer)
	}
	if err := apiv2.Verify(answer, m.APIv2Key, "HMAC-SHA256"); err != nil {
		t.Errorf("answer sign: %v", err)
	}
	var list certificateList
	if err := json.Unmarshal([]byte(answer["certificates"]), &list); err != nil || len(list.Data) != 1 {
		t.Fatalf("certificates %q: %v", answer["certificates"], err)
	}
	c, err := decrypt(list.Data[0], m.APIv3Key)
	if err != nil || wire.CertSerial(c) != srv.SigningSerial(m.ID) {
		t.Errorf("decrypted certificate: %v", err)
	}
	if srv.MerchantCertificateDownloads(m.ID) != 1 || srv.PathRequests("/risk/getcertficates") != 1 {
		t.Error("download not counted")
	}

	for name, tc := range map[string]struct {
		fields        map[string]string
		key, signType string
		wantMsg       string
	}{
		"wrong key":      {req(), strings.Repeat("k", 32), "HMAC-SHA256", "签名错误"},
		"MD5":            {map[string]string{"mch_id": m.ID, "nonce_str": "abcdef", "sign_type": "MD5"}, m.APIv2Key, "MD5", "sign_type"},
		"no sign_type":   {map[string]string{"mch_id": m.ID, "nonce_str": "abcdef"}, m.APIv2Key, "MD5", "sign_type"},
		"unknown mch_id": {map[string]string{"mch_id": "1", "nonce_str": "abcdef", "sign_type": "HMAC-SHA256"}, m.APIv2Key, "HMAC-SHA256", "mch_id"},
		"no nonce":       {map[string]string{"mch_id": m.ID, "sign_type": "HMAC-SHA256"}, m.APIv2Key, "HMAC-SHA256", "nonce_str"},
		"HMAC of stringA only": {func() map[string]string {
			f := req()
			f["sign"] = "F734F0E6" // any sign but the right one
			return f
		}(), m.APIv2Key, "", "签名错误"},
	} {
		t.Run(name, func(t *testing.T) {
			a := postV2(t, srv, "/risk/getcertficates", tc.fields, tc.key, tc.signType)
			if a["return_code"] != "FAIL" || !strings.Contains(a["return_msg"], tc.wantMsg) || a["certificates"] != "" {
				t.Errorf("answer %v; want FAIL mentioning %s", a, tc.wantMsg)
			}
		})
	}
	resp, err := http.Post(srv.URL+"/risk/getcertficates", "text/xml", strings.NewReader(`<!DOCTYPE x [<!ENTITY e "x">]><xml><mch_id>&e;</mch_id></xml>`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(b, []byte("FAIL")) {
		t.Errorf("DOCTYPE request answered %s", b)
	}

	pk := NewServer(PublicKeyOnly())
	defer pk.Close()
	pm := pk.Merchant()
	a := postV2(t, pk, "/risk/getcertficates", map[string]string{"mch_id": pm.ID, "nonce_str": "n", "sign_type": "HMAC-SHA256"}, pm.APIv2Key, "HMAC-SHA256")
	if a["result_code"] != "FAIL" || a["err_code"] != "CERT_NOT_EXIST" || apiv2.Verify(a, pm.APIv2Key, "HMAC-SHA256") != nil {
		t.Errorf("public-key-only answer %v; want a signed CERT_NOT_EXIST", a)
	}
}

func TestMerchantRedactsAPIv2Key(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	m := srv.Merchant()
	if len(m.APIv2Key) != 32 || m.APIv2Key == m.APIv3Key {
		t.Fatalf("APIv2Key %d bytes, equal to APIv3Key: %v", len(m.APIv2Key), m.APIv2Key == m.APIv3Key)
	}
	for _, f := range []string{"%v", "%+v", "%#v"} {
		if strings.Contains(fmt.Sprintf(f, m), m.APIv2Key) {
			t.Errorf("%s prints the APIv2 key", f)
		}
	}
}

func TestBillReader(t *testing.T) {
	spec := billSpec{"1900000001", "ALL", "2024-01-01", 1_000_003}
	read := func(flip int64, chunk int) []byte {
		var out []byte
		r := newBillReader(spec, flip)
		buf := make([]byte, chunk)
		for {
			n, err := r.Read(buf)
			out = append(out, buf[:n]...)
			if err == io.EOF {
				return out
			}
		}
	}
	a, b := read(-1, 4096), read(-1, 777)
	if len(a) != int(spec.size) || !bytes.Equal(a, b) {
		t.Fatalf("sizes %d, %d or contents differ with the read size", len(a), len(b))
	}
	lines := strings.Split(string(a), "\r\n")
	if lines[2] == lines[3] || !strings.Contains(lines[2], "`2024-01-01 00:00:01,") || !strings.Contains(lines[2], spec.merchantID) {
		t.Errorf("rows %q %q", lines[2], lines[3])
	}
	c := read(500_000, 1000)
	diff := 0
	for i := range a {
		if a[i] != c[i] {
			diff++
		}
	}
	if diff != 1 || a[500_000]^c[500_000] != 1 {
		t.Errorf("flip changed %d bytes", diff)
	}
	if got, ok := parseBillToken(spec.token()); !ok || got != spec {
		t.Errorf("token round trip = %v, %v", got, ok)
	}
}

func TestBillDownload(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	m := srv.Merchant()
	srv.SetBillSize(100_000)
	resp, body := do(t, srv, m, "GET", "/v3/bill/tradebill?bill_date=2024-02-03&bill_type=ALL", nil)
	mustVerify(t, srv, m, resp, body, srv.SigningSerial(m.ID))
	var bill struct{ HashType, HashValue, DownloadURL string }
	json.Unmarshal(body, &struct {
		HashType    *string `json:"hash_type"`
		HashValue   *string `json:"hash_value"`
		DownloadURL *string `json:"download_url"`
	}{&bill.HashType, &bill.HashValue, &bill.DownloadURL})
	uri := strings.TrimPrefix(bill.DownloadURL, srv.URL)
	resp, file := do(t, srv, m, "GET", uri, nil)
	sum := sha1.Sum(file)
	if resp.StatusCode != 200 || len(file) != 100_000 || hex.EncodeToString(sum[:]) != bill.HashValue || bill.HashType != "SHA1" {
		t.Errorf("file %d bytes, status %d, hash match %v", len(file), resp.StatusCode, hex.EncodeToString(sum[:]) == bill.HashValue)
	}
	if resp.Header.Get(wire.HeaderSignature) != "" || resp.Header.Get(wire.HeaderRequestID) == "" {
		t.Error("bill file signed, or without Request-ID")
	}
	resp, body = do(t, srv, m, "GET", "/v3/bill/tradebill?bill_date=yesterday", nil)
	wantError(t, resp, body, http.StatusBadRequest, "PARAM_ERROR")

	other := srv.AddMerchant()
	resp, body = do(t, srv, other, "GET", uri, nil)
	wantError(t, resp, body, http.StatusForbidden, "NO_AUTH")
	// The download itself must be signed.
	req := newRequest(t, srv, m, "GET", uri, nil)
	req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), "signature=\"", "signature=\"AA", 1))
	resp, body = send(t, req)
	wantError(t, resp, body, http.StatusUnauthorized, "SIGN_ERROR")
}

// multipartUpload builds a media upload body whose meta names metaFile
// and whose file part carries file.
func multipartUpload(t *testing.T, name string, metaFile, file []byte) (meta []byte, body []byte, contentType string) {
	t.Helper()
	sum := sha256.Sum256(metaFile)
	meta = fmt.Appendf(nil, `{"filename":%q,"sha256":"%x"}`, name, sum)
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	h := textproto.MIMEHeader{"Content-Disposition": {`form-data; name="meta"`}, "Content-Type": {"application/json"}}
	pw, _ := mw.CreatePart(h)
	pw.Write(meta)
	fw, _ := mw.CreateFormFile("file", name)
	fw.Write(file)
	mw.Close()
	return meta, b.Bytes(), mw.FormDataContentType()
}

func TestMediaUploadChecks(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	m := srv.Merchant()
	signer := &wechatpay.Signer{MerchantID: m.ID, CertificateSerial: m.CertificateSerial, Key: m.PrivateKey}
	upload := func(p, name string, metaFile, file []byte) (*http.Response, []byte) {
		meta, body, ct := multipartUpload(t, name, metaFile, file)
		req, _ := http.NewRequest("POST", srv.URL+p, bytes.NewReader(body))
		auth, _ := signer.Authorization("POST", p, meta)
		req.Header.Set("Authorization", auth)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", "t")
		req.Header.Set("Content-Type", ct)
		return send(t, req)
	}
	img := []byte("not really a png")
	resp, body := upload(mediaUploadPath, "a.png", img, img)
	mustVerify(t, srv, m, resp, body, srv.SigningSerial(m.ID))
	var answer struct {
		MediaID string `json:"media_id"`
	}
	if json.Unmarshal(body, &answer); resp.StatusCode != 200 || answer.MediaID == "" {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	resp, body = upload(mediaUploadPath, "a.png", img, []byte("changed"))
	wantError(t, resp, body, http.StatusBadRequest, "PARAM_ERROR")
	resp, body = upload(mediaUploadPath, "a.exe", img, img)
	wantError(t, resp, body, http.StatusBadRequest, "PARAM_ERROR")
	resp, body = upload(videoUploadPath, "a.png", img, img)
	wantError(t, resp, body, http.StatusBadRequest, "PARAM_ERROR")
	big := bytes.Repeat([]byte{1}, maxImage+1)
	resp, body = upload(marketingImagePath, "a.jpg", big, big)
	wantError(t, resp, body, http.StatusBadRequest, "PARAM_ERROR")
	if srv.Requests() != 0 {
		t.Errorf("built-in routes counted as Handle routes: %d", srv.Requests())
	}
}

func TestDecryptField(t *testing.T) {
	srv := NewServer(WithPublicKey())
	defer srv.Close()
	m := srv.Merchant()
	var got []string
	srv.Handle("POST /v3/sensitive", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		pt, err := srv.DecryptField(r, string(b))
		if err != nil {
			got = append(got, "error: "+err.Error())
			WriteError(w, http.StatusBadRequest, "PARAM_ERROR", msgRequestSerial)
			return
		}
		got = append(got, pt)
		w.WriteHeader(http.StatusNoContent)
	}))
	platform := srv.Certificates(m.ID)[0]
	ctPlatform, _ := wire.EncryptOAEP(platform.PublicKey.(*rsa.PublicKey), []byte("p"))
	ctPublic, _ := wire.EncryptOAEP(m.PublicKey, []byte("k"))
	for _, tc := range []struct {
		ct, serial string
		status     int
	}{
		{ctPlatform, srv.SigningSerial(m.ID), 204},
		{ctPublic, m.PublicKeyID, 204},
		{ctPlatform, m.PublicKeyID, 400},
		{ctPublic, srv.SigningSerial(m.ID), 400},
		{ctPublic, "", 400},
	} {
		req := newRequest(t, srv, m, "POST", "/v3/sensitive", []byte(tc.ct))
		if tc.serial != "" {
			req.Header.Set(wire.HeaderSerial, tc.serial)
		}
		resp, _ := send(t, req)
		if resp.StatusCode != tc.status {
			t.Errorf("serial %q: status %d; want %d", tc.serial, resp.StatusCode, tc.status)
		}
	}
	if len(got) != 5 || got[0] != "p" || got[1] != "k" || !strings.Contains(got[4], "Wechatpay-Serial") {
		t.Errorf("handler saw %q", got)
	}
	if _, err := srv.DecryptField(httptestRequest(), "x"); err == nil {
		t.Error("DecryptField outside the sandbox succeeded")
	}
}

func httptestRequest() *http.Request {
	r, _ := http.NewRequestWithContext(context.Background(), "POST", "/", nil)
	return r
}
