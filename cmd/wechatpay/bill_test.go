package main

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBill(t *testing.T) {
	f := newFixture(t)
	f.srv.SetBillSize(300 << 10)
	dir := t.TempDir()
	out := filepath.Join(dir, "trade.csv")
	r := f.run(t, "", "bill", "-date", "2026-11-22", "-o", out)
	wantCode(t, r, exitOK, out+": 307200 bytes, SHA1 ")
	if r.stderr != "" {
		t.Errorf("progress shown when standard error is not a terminal: %q", r.stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil || len(data) != 300<<10 {
		t.Fatalf("bill file: %d bytes, %v", len(data), err)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("bill file mode %v; want 0600", fi.Mode().Perm())
	}
	sum := sha1.Sum(data)
	if !strings.Contains(r.stdout, hex.EncodeToString(sum[:])) {
		t.Errorf("output does not show the hash of the file written:\n%s", r)
	}
	// Fund flow bill to standard output.
	r = f.run(t, "", "bill", "-date", "2026-11-22", "-kind", "fundflow", "-account-type", "OPERATION", "-o", "-")
	wantCode(t, r, exitOK)
	if len(r.stdout) != 300<<10 {
		t.Errorf("fund flow bill on stdout: %d bytes", len(r.stdout))
	}
	if f.srv.PathRequests("/v3/bill/fundflowbill") != 1 || f.srv.PathRequests("/v3/bill/tradebill") != 1 {
		t.Errorf("bill requests: trade %d, fundflow %d; want 1 each", f.srv.PathRequests("/v3/bill/tradebill"), f.srv.PathRequests("/v3/bill/fundflowbill"))
	}
	// Only the temporary-free result is left in the directory.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries; want only the bill", len(entries))
	}
}

func TestBillCorruptedKeepsOldFile(t *testing.T) {
	f := newFixture(t)
	f.srv.SetBillSize(64 << 10)
	f.srv.FlipBillByte(1000)
	dir := t.TempDir()
	out := filepath.Join(dir, "trade.csv")
	if err := os.WriteFile(out, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := f.run(t, "", "bill", "-date", "2026-11-22", "-o", out)
	wantCode(t, r, exitVerify, "does not match the hash", "nothing was written")
	if data, _ := os.ReadFile(out); string(data) != "old" {
		t.Errorf("the old file was replaced by a corrupted download (%d bytes)", len(data))
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("a temporary file was left behind: %d entries", len(entries))
	}
}

func TestBillProgressOnTerminal(t *testing.T) {
	f := newFixture(t)
	f.srv.SetBillSize(200 << 10)
	var stderr bytes.Buffer
	var stdout bytes.Buffer
	a := &app{ctx: t.Context(), getenv: func(string) string { return "" }, stdin: strings.NewReader(""),
		stdout: &stdout, stderr: &stderr, isTerminal: func(w io.Writer) bool { return w == io.Writer(&stderr) }}
	code := a.main(append([]string{"bill", "-date", "2026-11-22", "-o", filepath.Join(t.TempDir(), "b.csv")}, f.flags...))
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if s := stderr.String(); !strings.Contains(s, "\rdownloading: ") && !strings.Contains(s, "downloading: 200.0 KiB") || !strings.HasSuffix(s, "\n") {
		t.Errorf("progress on a terminal = %q; want a downloading line ending in a newline", s)
	}
}

func TestIsTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if isTerminal(w) {
		t.Error("a pipe is taken for a terminal")
	}
	if isTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is taken for a terminal")
	}
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if !isTerminal(null) { // a character device, as terminals are
		t.Error("a character device is not detected")
	}
}

func TestBillUsage(t *testing.T) {
	wantCode(t, runApp(t, nil, "", "bill", "-sandbox"), exitUsage, "-date is required")
	wantCode(t, runApp(t, nil, "", "bill", "-sandbox", "-date", "22/11/2026"), exitUsage, "not a day")
	wantCode(t, runApp(t, nil, "", "bill", "-sandbox", "-date", "2026-11-22", "-kind", "x"), exitUsage, "-kind must be")
}
