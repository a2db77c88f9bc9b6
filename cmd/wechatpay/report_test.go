package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSignErrorHintQuoting plays an attacker who answers 401 SIGN_ERROR
// with shell syntax in every field of sign_information: the printed
// command, run through a real shell, must give back exactly the fields as
// arguments and run nothing; and it must say it comes from an unverified
// answer.
func TestSignErrorHintQuoting(t *testing.T) {
	f := newFixture(t)
	marker := filepath.Join(t.TempDir(), "pwned")
	fields := []string{"GET", "/v3/x'; rm -rf ~; '", "$(touch " + marker + ")", "`touch " + marker + "`\"'\\"}
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]any{
			"code": "SIGN_ERROR", "message": "bad\x1b[2Jsignature",
			"detail": map[string]any{"sign_information": map[string]any{
				"truncated_sign_message": strings.Join(fields, "\n") + "\n\n",
			}},
		})
	}))
	defer evil.Close()
	r := runApp(t, nil, "", append(append([]string{"get"}, f.flags...), "-base-url", evil.URL, "/v3/x")...)
	wantCode(t, r, exitAPIError, "answered, unsigned,", "built from an unverified answer")
	if strings.Contains(r.stderr, "WeChat Pay answered") {
		t.Errorf("an unsigned answer is attributed to WeChat Pay:\n%s", r)
	}
	if strings.Contains(r.stderr, "\x1b") {
		t.Errorf("a terminal escape from the answer was printed:\n%q", r.stderr)
	}
	_, cmd, ok := strings.Cut(r.stderr, "read it before running it): wechatpay sign ")
	if !ok {
		t.Fatalf("no reproduce hint:\n%s", r)
	}
	cmd, _, _ = strings.Cut(cmd, " [-d @body.json]")
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("no sh to check the quoting with: %v", err)
	}
	out, err := exec.Command(sh, "-c", `set -- `+cmd+`; for a; do printf '%s\0' "$a"; done`).Output()
	if err != nil {
		t.Fatalf("sh: %v", err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	want := []string{"-method", fields[0], "-url", fields[1], "-timestamp", fields[2], "-nonce", fields[3]}
	if !slices.Equal(got, want) {
		t.Errorf("the shell read the hint as %q; want %q", got, want)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("running the hint executed a command from the answer")
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"GET":              "GET",
		"/v3/certificates": "/v3/certificates",
		"":                 "''",
		"a b":              "'a b'",
		"it's":             `'it'\''s'`,
		"$(id)":            "'$(id)'",
		"/v3/x?a=1&b=2":    "'/v3/x?a=1&b=2'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s; want %s", in, got, want)
		}
	}
}

// TestNetworkFailuresAreNotAnswers checks that a connection refused or a
// timeout exits 1 and names the host (and the timeout), never "answered".
func TestNetworkFailuresAreNotAnswers(t *testing.T) {
	f := newFixture(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	for _, cmd := range [][]string{{"get", "/v3/x"}, {"certs", "-o", t.TempDir()}} {
		r := runApp(t, nil, "", append(append(cmd, f.flags...), "-base-url", "http://"+closed)...)
		wantCode(t, r, exitFailure, "connection refused")
		if strings.Contains(r.stderr, "answered") {
			t.Errorf("%s: a refused connection is reported as an answer:\n%s", cmd[0], r)
		}
	}

	// A host that accepts and never answers: -timeout 1s is what it takes.
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(hang)
	host := strings.TrimPrefix(slow.URL, "http://")
	for _, cmd := range [][]string{{"certs", "-o", t.TempDir()}, {"get", "/v3/x"}} {
		// The host never answers: only -timeout can end the command.
		r := runApp(t, nil, "", append(append(cmd, f.flags...), "-base-url", slow.URL, "-timeout", "1s")...)
		wantCode(t, r, exitFailure, "no answer from "+host+" within 1s (-timeout)")
	}
}
