package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemoCodeCompiles builds the program the demo prints, as printed,
// in a module of its own that requires this repository (through a
// replace, as a user's module would require a release).
func TestDemoCodeCompiles(t *testing.T) {
	r := runApp(t, nil, "", "demo")
	wantCode(t, r, exitOK, "package main")
	// The program is the tab-indented block after "package main".
	_, after, _ := strings.Cut(r.stdout, "\tpackage main\n")
	var src strings.Builder
	src.WriteString("package main\n")
	for line := range strings.SplitSeq(after, "\n") {
		if line != "" && !strings.HasPrefix(line, "\t") {
			break
		}
		src.WriteString(strings.TrimPrefix(line, "\t") + "\n")
	}
	buildProgram(t, src.String())
}

// buildProgram compiles a main package that imports this repository's
// packages, offline, with the repository's own go.sum.
func buildProgram(t *testing.T, src string) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	gosum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	// The user's module needs the core's requirements, which the
	// replaced module brings; list them so that no lookup is needed.
	var req strings.Builder
	for line := range strings.SplitSeq(string(gomod), "\n") {
		if f := strings.Fields(line); len(f) == 2 && strings.Contains(f[0], ".") && strings.HasPrefix(f[1], "v") {
			req.WriteString("require " + f[0] + " " + f[1] + "\n")
		}
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/merchant\n\ngo 1.25\n\nrequire github.com/wxpaykit/wechatpay v0.0.0\n" + req.String() +
			"\nreplace github.com/wxpaykit/wechatpay => " + root + "\n",
		"go.sum":  string(gosum),
		"main.go": src,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "merchant"), ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOPROXY=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the printed program does not build: %v\n%s\n--- main.go:\n%s", err, out, src)
	}
}
