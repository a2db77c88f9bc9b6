package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	r := runApp(t, nil, "", "version")
	wantCode(t, r, exitOK, "wechatpay ", "go1.")
	info := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}}
	if got, want := versionString(info, true), "wechatpay v1.2.3 (revision 0123456789ab+dirty) go1.26.8"; got != want {
		t.Errorf("versionString = %q; want %q", got, want)
	}
	if got := versionString(nil, false); !strings.Contains(got, "unknown version") {
		t.Errorf("versionString without build info = %q", got)
	}
	wantCode(t, runApp(t, nil, "", "version", "extra"), exitUsage, "unexpected argument")
}

func TestDidYouMean(t *testing.T) {
	for in, want := range map[string]string{"cets": "certs", "sigm": "sign", "doctr": "doctor", "POST": "post", "verison": "version"} {
		r := runApp(t, nil, "", in)
		wantCode(t, r, exitUsage, "unknown command", "Did you mean 'wechatpay "+want+"'?")
	}
	r := runApp(t, nil, "", "frobnicate")
	wantCode(t, r, exitUsage, "unknown command")
	if strings.Contains(r.stderr, "Did you mean") {
		t.Errorf("a suggestion for a name far from every command:\n%s", r)
	}
	if d := editDistance("kitten", "sitting"); d != 3 {
		t.Errorf("editDistance(kitten, sitting) = %d; want 3", d)
	}
}

func TestBodyRequired(t *testing.T) {
	f := newFixture(t)
	for _, cmd := range []string{"post", "put", "patch"} {
		r := f.run(t, "", cmd, "/v3/test/echo")
		wantCode(t, r, exitUsage, cmd+" needs a JSON body: -d")
		if f.srv.Requests() != 0 {
			t.Errorf("%s without -d sent a request", cmd)
		}
	}
	// An explicitly empty body is allowed; delete needs none.
	wantCode(t, f.run(t, "", "post", "/v3/test/echo", "-d", ""), exitOK)
}

// TestHelpListsUsedFlags checks that each command's -h shows the flags it
// uses and only those, while still accepting every credential flag.
func TestHelpListsUsedFlags(t *testing.T) {
	tests := []struct {
		cmd        string
		want, omit []string
	}{
		{"sign", []string{"-mchid", "-serial", "-key", "-method", "-url"}, []string{"-apiv3-key", "-base-url", "-public-key", "-timeout"}},
		{"certs", []string{"-mchid", "-apiv3-key", "-base-url", "-o", "-timeout"}, []string{"-public-key", "-d "}},
		{"get", []string{"-mchid", "-apiv3-key", "-public-key-id", "-H", "-timeout"}, []string{"-d "}},
		{"post", []string{"-d ", "-public-key"}, nil},
		{"doctor", []string{"-mchid", "-apiv3-key", "-public-key", "-timeout"}, []string{"-d ", "-o "}},
		{"version", nil, []string{"-mchid", "Flags:"}},
	}
	for _, tc := range tests {
		r := runApp(t, nil, "", tc.cmd, "-h")
		wantCode(t, r, exitOK)
		flags := r.stdout
		if i := strings.Index(flags, "\nFlags:"); i >= 0 {
			flags = flags[i:]
		}
		for _, w := range tc.want {
			if !strings.Contains(flags, "  "+w) {
				t.Errorf("%s -h lacks %s:\n%s", tc.cmd, w, r.stdout)
			}
		}
		for _, o := range tc.omit {
			if strings.Contains(flags, "  "+o) || o == "Flags:" && strings.Contains(r.stdout, o) {
				t.Errorf("%s -h lists %s, which it does not use:\n%s", tc.cmd, o, r.stdout)
			}
		}
	}
	// One set of flags serves every command: sign accepts the APIv3 key.
	f := newFixture(t)
	wantCode(t, f.run(t, "", "sign", "-url", "/v3/certificates"), exitOK, "Authorization: ")
}
