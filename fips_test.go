package wechatpay

import (
	"context"
	"crypto/fips140"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

const fipsOnlyChild = "WECHATPAY_TEST_FIPS140_ONLY_CHILD"

// TestFIPSOnlyErrors runs itself again under GODEBUG=fips140=only, where
// it checks that each use of SHA-1 WeChat Pay requires (sensitive fields,
// bill hashes) fails with
// an error that names the mode and the way out, instead of a panic or an
// error that blames the key; in other modes (default, fips140=on,
// BoringCrypto, which has no FIPS-only mode to run) it checks that they
// work.
func TestFIPSOnlyErrors(t *testing.T) {
	if os.Getenv(fipsOnlyChild) == "" && !boringBuild {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFIPSOnlyErrors$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), fipsOnlyChild+"=1", "GODEBUG=fips140=only")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestFIPSOnlyErrors") {
			t.Fatalf("the test under GODEBUG=fips140=only failed: %v\n%s", err, out)
		}
	}
	strict := os.Getenv(fipsOnlyChild) != ""
	if strict && !fips140.Enabled() {
		t.Fatal("the child does not run in FIPS mode")
	}
	key := testKey(0)
	check := func(what string, err error) {
		t.Helper()
		if !strict {
			if err != nil {
				t.Errorf("%s: %v; want it to work outside FIPS 140-only mode", what, err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), "FIPS 140-only mode (GODEBUG=fips140=only)") || !strings.Contains(err.Error(), "fips140=on") {
			t.Errorf("%s in FIPS 140-only mode: err = %v; want one naming the mode and fips140=on", what, err)
		}
	}
	ct, err := wire.EncryptOAEP(&key.PublicKey, []byte("6217000010012345678"))
	check("EncryptOAEP", err)
	if !strict {
		_, err = DecryptOAEP(key, ct)
	} else {
		_, err = DecryptOAEP(key, "AAAA")
	}
	check("DecryptOAEP", err)
	if strict {
		// Refused before anything is sent: the client would fail the test.
		client := &http.Client{Transport: failRT(func(*http.Request) (*http.Response, error) {
			t.Error("a bill download was sent although its hash cannot be checked")
			return nil, http.ErrNotSupported
		})}
		err = DownloadBill(context.Background(), client, "https://api.mch.weixin.qq.com/v3/billdownload/file?token=x", "SHA1", strings.Repeat("0", 40), nil)
		check("DownloadBill SHA1", err)
	}
}

type failRT func(*http.Request) (*http.Response, error)

func (f failRT) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
