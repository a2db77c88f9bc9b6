package apiv2_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/wxpaykit/wechatpay/apiv2"
)

const fipsOnlyChild = "WECHATPAY_TEST_FIPS140_ONLY_CHILD"

// TestFIPSOnlyMD5 runs itself again under GODEBUG=fips140=only, where
// sign_type MD5 must fail with an error naming the mode (not panic) and
// HMAC-SHA256 must work; in other modes both work.
func TestFIPSOnlyMD5(t *testing.T) {
	strict := os.Getenv(fipsOnlyChild) != ""
	if !strict && !boringBuild {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFIPSOnlyMD5$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), fipsOnlyChild+"=1", "GODEBUG=fips140=only")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestFIPSOnlyMD5") {
			t.Fatalf("the test under GODEBUG=fips140=only failed: %v\n%s", err, out)
		}
	}
	params := map[string]string{"appid": "wxd930ea5d5a258f4f", "nonce_str": "ibuaiVcKdpRxkhJA"}
	key := strings.Repeat("k", 32)
	_, err := apiv2.Sign(params, key, apiv2.SignTypeMD5)
	switch {
	case strict && (err == nil || !strings.Contains(err.Error(), "FIPS 140-only mode (GODEBUG=fips140=only)")):
		t.Errorf("Sign MD5 in FIPS 140-only mode: err = %v; want one naming the mode", err)
	case !strict && err != nil:
		t.Errorf("Sign MD5: %v", err)
	}
	if _, err := apiv2.Sign(params, key, apiv2.SignTypeHMACSHA256); err != nil {
		t.Errorf("Sign HMAC-SHA256: %v", err)
	}
}
