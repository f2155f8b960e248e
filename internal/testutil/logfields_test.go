package testutil_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestLogFieldUnits: a log field that holds a duration or a size says its
// unit in its name (took_ms, timeout_ms, keep_alive_s, size_bytes), so a
// reader of the JSON needs no source to read it; and no field uses
// zerolog's Dur, whose unit is a package-level setting (DurationFieldUnit)
// the name cannot show. It reads every non-test Go file of the module.
func TestLogFieldUnits(t *testing.T) {
	// Names that hold a duration or a size, and the suffixes that say
	// the unit.
	measured := regexp.MustCompile(`(^|_)(took|time|timeout|duration|interval|delay|keep_?alive|expiry|age|latency|elapsed|wait|size|bytes|length|len|backlog)($|_)`)
	unit := regexp.MustCompile(`_(ns|us|ms|s|min|h|bytes|kib|mib)$`)
	numeric := map[string]bool{"Int": true, "Int8": true, "Int16": true, "Int32": true, "Int64": true,
		"Uint": true, "Uint8": true, "Uint16": true, "Uint32": true, "Uint64": true,
		"Float32": true, "Float64": true, "Dur": true, "TimeDiff": true}

	root := filepath.Join("..", "..")
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !numeric[sel.Sel.Name] {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			name, _ := strconv.Unquote(lit.Value)
			checked++
			switch {
			case sel.Sel.Name == "Dur" || sel.Sel.Name == "TimeDiff":
				t.Errorf("%s: field %q uses %s: its unit is zerolog's global setting; write Int64(%q, d.Milliseconds())",
					fset.Position(call.Pos()), name, sel.Sel.Name, name+"_ms")
			case measured.MatchString(name) && !unit.MatchString(name):
				t.Errorf("%s: field %q holds a duration or a size: name its unit (_ms, _s, _bytes...)",
					fset.Position(call.Pos()), name)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatal("no numeric log field found: is the walk reading the module?")
	}
}
