package main

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// doctorLine returns the output line of the check named name.
func doctorLine(r result, name string) string {
	for line := range strings.SplitSeq(r.stdout, "\n") {
		if len(line) > 6 && strings.HasPrefix(line[6:], name) {
			return line
		}
	}
	return ""
}

func wantCheck(t *testing.T, r result, status, name string, contains ...string) {
	t.Helper()
	line := doctorLine(r, name)
	if !strings.HasPrefix(line, status+" ") {
		t.Errorf("check %q: line %q; want status %s\n%s", name, line, status, r)
		return
	}
	for _, s := range contains {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("output lacks %q\n%s", s, r)
		}
	}
}

func TestDoctorGoodSetup(t *testing.T) {
	f := newFixture(t)
	r := f.run(t, "", "doctor")
	wantCode(t, r, exitOK, "All checks passed.")
	wantCheck(t, r, "ok", "API host", "TCP ", "first byte ")
	wantCheck(t, r, "ok", "clock", "in step")
	wantCheck(t, r, "ok", "private key and serial", "accepted the signed GET /v3/certificates")
	wantCheck(t, r, "ok", "APIv3 key", "decrypts the platform certificates")
	wantCheck(t, r, "ok", "answer signature", "verifies with "+f.srv.SigningSerial(f.m.ID))
	wantCheck(t, r, "ok", "mode", "platform certificates")
	wantCheck(t, r, "ok", "platform certificate", f.srv.SigningSerial(f.m.ID)+" valid ")
	if strings.Contains(r.stdout, "FAIL") || strings.Contains(r.stdout, "fix:") {
		t.Errorf("a good setup shows a problem:\n%s", r)
	}
	// -sandbox works as well.
	wantCode(t, runApp(t, nil, "", "doctor", "-sandbox"), exitOK, "All checks passed.")
}

func TestDoctorWrongPrivateKey(t *testing.T) {
	f := newFixture(t)
	other := wechatpaytest.NewServer()
	defer other.Close()
	path := filepath.Join(t.TempDir(), "other_key.pem")
	writeKey(t, path, other.Merchant())
	r := runApp(t, nil, "", append(append([]string{"doctor"}, f.flags...), "-key", path)...)
	f.checkNoSecrets(t, r)
	wantCode(t, r, exitFailure, "1 check(s) failed")
	wantCheck(t, r, "skip", "APIv3 key", "not checked")
	wantCheck(t, r, "FAIL", "private key and serial", "401 SIGN_ERROR", "sign not match",
		"fix: -key is not the private key of certificate "+f.m.CertificateSerial, "openssl rsa -in apiclient_key.pem -noout -modulus")
	wantCheck(t, r, "ok", "API host")
	wantCheck(t, r, "ok", "clock")
}

func TestDoctorWrongSerial(t *testing.T) {
	f := newFixture(t)
	r := runApp(t, nil, "", append(append([]string{"doctor"}, f.flags...), "-serial", "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C")...)
	wantCode(t, r, exitFailure)
	wantCheck(t, r, "FAIL", "private key and serial", "SIGN_ERROR", "is not this merchant's API certificate serial", "openssl x509 -in apiclient_cert.pem -noout -serial")
}

func TestDoctorWrongAPIv3Key(t *testing.T) {
	f := newFixture(t)
	wrong := strings.Repeat("W", 32)
	r := runApp(t, nil, "", append(append([]string{"doctor"}, f.flags...), "-apiv3-key", wrong)...)
	f.checkNoSecrets(t, r)
	if strings.Contains(r.stdout+r.stderr, wrong) {
		t.Errorf("output shows the APIv3 key given:\n%s", r)
	}
	t.Logf("doctor with a wrong APIv3 key:\n%s", r)
	wantCode(t, r, exitFailure, "1 check(s) failed")
	wantCheck(t, r, "ok", "private key and serial")
	wantCheck(t, r, "FAIL", "APIv3 key", "does not decrypt the platform certificates", "fix: copy the APIv3 key", "APIv3密钥")
}

func TestDoctorClockOffset(t *testing.T) {
	f := newFixture(t, wechatpaytest.WithClockOffset(10*time.Minute))
	r := f.run(t, "", "doctor")
	t.Logf("doctor with the sandbox 10 minutes ahead:\n%s", r)
	wantCode(t, r, exitFailure, "2 check(s) failed")
	wantCheck(t, r, "FAIL", "clock", "this machine is 10m0s behind", "WeChat Pay rejects requests more than 5 minutes off", "fix: set this machine's clock right", "NTP")
	wantCheck(t, r, "FAIL", "private key and serial", "SIGN_ERROR", "timestamp is more than 5 minutes from WeChat Pay's clock", "it is 10m0s behind")

	// Two minutes off: a warning, not a failure.
	f2 := newFixture(t, wechatpaytest.WithClockOffset(-2*time.Minute))
	r = f2.run(t, "", "doctor")
	wantCode(t, r, exitOK, "All checks passed.")
	wantCheck(t, r, "WARN", "clock", "2m0s ahead", "drifting")
}

func TestDoctorPublicKeyOnly(t *testing.T) {
	f := newFixture(t, wechatpaytest.PublicKeyOnly())
	r := f.run(t, "", "doctor")
	wantCode(t, r, exitOK, "All checks passed.")
	wantCheck(t, r, "ok", "mode", "public key only: "+f.m.PublicKeyID)
	wantCheck(t, r, "ok", "answer signature", "verifies with "+f.m.PublicKeyID)
}

func TestDoctorUnreachableHost(t *testing.T) {
	f := newFixture(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := runApp(t, nil, "", append(append([]string{"doctor", "-timeout", "2s"}, f.flags...), "-base-url", "http://"+addr)...)
	wantCode(t, r, exitFailure)
	wantCheck(t, r, "FAIL", "API host", addr+": TCP connect failed", "fix: allow outbound TCP")
	wantCheck(t, r, "skip", "clock")
	wantCheck(t, r, "FAIL", "signed request")
}

func TestDoctorHelp(t *testing.T) {
	r := runApp(t, nil, "", "doctor", "-h")
	wantCode(t, r, exitOK, "Usage: wechatpay doctor", "-timeout", "-mchid", "-sandbox")
}
