package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An example is one command line printed in the README or in a
// command's -h, with the lines printed before it in the same block
// (the sandbox it may need, the order it may pay).
type example struct {
	where string // README.md or "wechatpay NAME -h"
	lines []string
}

// helpExamples returns the example block of each command's -h, as
// printed.
func helpExamples(t *testing.T) []example {
	t.Helper()
	var out []example
	for _, c := range commands() {
		r := runApp(t, nil, "", c.name, "-h")
		if r.code != exitOK {
			t.Fatalf("wechatpay %s -h: %s", c.name, r)
		}
		_, block, ok := strings.Cut(r.stdout, "\nExample:\n\n")
		if !ok {
			t.Errorf("wechatpay %s -h prints no example", c.name)
			continue
		}
		block, _, _ = strings.Cut(block, "\n\n")
		var lines []string
		for l := range strings.SplitSeq(block, "\n") {
			lines = append(lines, strings.TrimPrefix(l, "\t"))
		}
		out = append(out, example{"wechatpay " + c.name + " -h", lines})
	}
	return out
}

// readmeExamples returns the command lines of the README's code blocks
// (indented or fenced without a language, or as sh): one example per
// block.
func readmeExamples(t *testing.T) []example {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []example
	var cur []string
	fenced, shell := false, false
	flush := func() {
		if len(cur) > 0 {
			out = append(out, example{"README.md", cur})
		}
		cur = nil
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "```"):
			if fenced {
				flush()
			}
			lang := strings.TrimPrefix(line, "```")
			fenced, shell = !fenced, lang == "" || lang == "sh" || lang == "console"
		case fenced && shell, !fenced && strings.HasPrefix(line, "    "):
			l := strings.TrimPrefix(line, "    ")
			if strings.HasPrefix(l, "wechatpay ") || (len(cur) > 0 && strings.HasSuffix(cur[len(cur)-1], "\\")) {
				cur = append(cur, l)
			}
		case !fenced && line == "":
		default:
			if !fenced {
				flush()
			}
		}
	}
	flush()
	return out
}

// commandLines joins continued lines and drops lines that are not
// wechatpay commands.
func commandLines(lines []string) []string {
	var out []string
	pending := ""
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if c, ok := strings.CutSuffix(l, "\\"); ok {
			pending += c + " "
			continue
		}
		l, pending = pending+l, ""
		if strings.HasPrefix(l, "wechatpay ") {
			out = append(out, l)
		}
	}
	return out
}

// shellWords splits a command line as a POSIX shell would for the
// quoting these examples use: single quotes, double quotes with $NAME
// expansion from env, and a trailing & for a background job.
func shellWords(line string, env map[string]string) (words []string, background bool, err error) {
	line = strings.TrimSpace(line)
	if rest, ok := strings.CutSuffix(line, "&"); ok {
		line, background = strings.TrimSpace(rest), true
	}
	var w strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == ' ' || c == '\t':
			if inWord {
				words, inWord = append(words, w.String()), false
				w.Reset()
			}
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, false, fmt.Errorf("unterminated ' in %q", line)
			}
			w.WriteString(line[i+1 : i+1+j])
			i, inWord = i+1+j, true
		case c == '"':
			j := strings.IndexByte(line[i+1:], '"')
			if j < 0 {
				return nil, false, fmt.Errorf("unterminated \" in %q", line)
			}
			w.WriteString(os.Expand(line[i+1:i+1+j], func(k string) string { return env[k] }))
			i, inWord = i+1+j, true
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, background, nil
}

// runsOffline reports whether an example can run as printed on a
// machine with no merchant account: it names a sandbox, its command needs
// none, or it is an offline command (sign, verify, payparams) whose key
// files all exist (the README's uses WeChat Pay's published test key).
// The others name a merchant's own files and keys; for them the test
// checks that every flag exists.
func runsOffline(args []string) bool {
	switch args[0] {
	case "demo", "sandbox", "version", "help":
		return true
	}
	for _, a := range args {
		if a == "-sandbox" || a == "-sandbox-dir" {
			return true
		}
	}
	switch args[0] {
	case "sign", "verify", "payparams":
		for i, a := range args[:len(args)-1] {
			if a == "-key" || a == "-cert" || a == "-public-key" {
				if _, err := os.Stat(args[i+1]); err != nil {
					return false
				}
			}
		}
		return true
	}
	return false
}

// TestExamplesRun executes every example the README and each command's
// -h print, in order within its block, against the sandbox, and checks
// the flags of those that need a merchant's own credentials. The only
// changes are these substitutions, so that parallel runs do not collide:
// the fixed directories become temporary ones, the fixed sandbox port a
// free one, and the merchant's callback URL a server of this test.
func TestExamplesRun(t *testing.T) {
	callback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer callback.Close()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	examples := append(helpExamples(t), readmeExamples(t)...)
	if n := len(readmeExamples(t)); n < 2 {
		t.Fatalf("found %d example blocks in the README; the extraction is broken", n)
	}
	ran := 0
	for i, ex := range examples {
		t.Run(fmt.Sprintf("%s#%d", ex.where, i), func(t *testing.T) {
			work := t.TempDir()
			t.Chdir(work) // examples that write a file write it here
			sub := strings.NewReplacer(
				"/tmp/sandbox", filepath.Join(work, "sandbox"),
				"/tmp/certs", filepath.Join(work, "certs"),
				"127.0.0.1:8080", "127.0.0.1:0",
				"http://127.0.0.1:8000/wechatpay/notify", callback.URL+"/wechatpay/notify",
				"https://merchant.example/wechatpay/notify", callback.URL+"/wechatpay/notify",
				"testdata/", filepath.Join(repo, "testdata")+"/",
			)
			ctx, cancel := context.WithCancel(context.Background())
			var background []chan result
			defer func() {
				cancel()
				for _, done := range background {
					if r := <-done; r.code != exitOK {
						t.Errorf("background command: %s", r)
					}
				}
			}()
			for _, line := range commandLines(ex.lines) {
				words, bg, err := shellWords(sub.Replace(line), map[string]string{})
				if err != nil {
					t.Fatal(err)
				}
				args := words[1:]
				if !runsOffline(args) {
					if r := runApp(t, nil, "", append(args, "-h")...); r.code != exitOK {
						t.Errorf("%s: %s\nits flags do not parse: %s", ex.where, line, r)
					}
					continue
				}
				ran++
				t.Logf("run: %s", line)
				if bg {
					ready := make(chan struct{})
					done := make(chan result, 1)
					background = append(background, done)
					go func() {
						done <- runAppCtx(t, ctx, func(string, string) { close(ready) }, nil, "", args...)
					}()
					select {
					case <-ready:
					case r := <-done:
						t.Fatalf("%s: %s\nexited before it was ready: %s", ex.where, line, r)
					}
					continue
				}
				if r := runApp(t, nil, "", args...); r.code != exitOK {
					t.Errorf("%s: %s\nfailed: %s", ex.where, line, r)
				}
			}
		})
	}
	if ran < 10 {
		t.Errorf("only %d examples ran against the sandbox", ran)
	}
}
