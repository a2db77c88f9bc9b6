package wechatpay

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestExportedSurface fails when the root package's exported names differ
// from testdata/api.txt: adding to the surface a merchant must learn is a
// decision, written into that file, not an accident. Run with
// WECHATPAY_UPDATE_API=1 to rewrite the file after such a decision.
func TestExportedSurface(t *testing.T) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, e.Name(), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	var names []string
	for _, f := range files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				if d.Recv != nil {
					recv := d.Recv.List[0].Type
					if s, ok := recv.(*ast.StarExpr); ok {
						recv = s.X
					}
					id, ok := recv.(*ast.Ident)
					if !ok || !id.IsExported() {
						continue
					}
					names = append(names, "method "+id.Name+"."+d.Name.Name)
					continue
				}
				names = append(names, "func "+d.Name.Name)
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							names = append(names, "type "+s.Name.Name)
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								names = append(names, d.Tok.String()+" "+n.Name)
							}
						}
					}
				}
			}
		}
	}
	slices.Sort(names)
	got := strings.Join(names, "\n") + "\n"
	if os.Getenv("WECHATPAY_UPDATE_API") != "" {
		if err := os.WriteFile("testdata/api.txt", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/api.txt")
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		for _, n := range names {
			if !strings.Contains(string(want), n+"\n") {
				t.Errorf("new exported name %q: add it to testdata/api.txt if it is meant to be public", n)
			}
		}
		for _, n := range strings.Split(strings.TrimSpace(string(want)), "\n") {
			if !slices.Contains(names, n) {
				t.Errorf("exported name %q is gone: remove it from testdata/api.txt if that is meant", n)
			}
		}
	}
}
