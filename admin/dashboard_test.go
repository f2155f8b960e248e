package admin_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVendoredUPlot checks that the chart library the binary embeds is the
// npm package uplot, byte for byte, at the version that
// testdata/browser/package.json pins (make deps installs it there), that
// static/vendor/README.md names that version, and that the server serves
// the files, answering 304 to a browser that has them.
func TestVendoredUPlot(t *testing.T) {
	_, dir := browserDeps(t)
	var pkg struct{ Dependencies map[string]string }
	readJSON(t, filepath.Join(dir, "package.json"), &pkg)
	version := pkg.Dependencies["uplot"]
	if version == "" {
		t.Fatal("testdata/browser/package.json does not pin uplot")
	}
	var installed struct{ Version string }
	readJSON(t, filepath.Join(dir, "node_modules", "uplot", "package.json"), &installed)
	if installed.Version != version {
		t.Fatalf("node_modules has uplot %s, package.json pins %s: run make deps", installed.Version, version)
	}
	vendor := filepath.Join("static", "vendor", "uplot")
	for file, from := range map[string]string{
		"uPlot.iife.min.js": "dist/uPlot.iife.min.js",
		"uPlot.min.css":     "dist/uPlot.min.css",
		"LICENSE":           "LICENSE",
	} {
		ours, err := os.ReadFile(filepath.Join(vendor, file))
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := os.ReadFile(filepath.Join(dir, "node_modules", "uplot", from))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ours, theirs) {
			t.Errorf("%s differs from uplot %s's %s: run make vendor-uplot", filepath.Join(vendor, file), version, from)
		}
	}
	readme, err := os.ReadFile(filepath.Join("static", "vendor", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "| `uplot/` | `uplot` | "+version+" |") {
		t.Errorf("static/vendor/README.md does not name uplot %s", version)
	}

	_, _, base := startAdmin(t, token)
	js, _ := os.ReadFile(filepath.Join(vendor, "uPlot.iife.min.js"))
	resp, body := request(t, "GET", base+"/static/uplot.min.js", nil, nil) // no token: library code
	if resp.StatusCode != 200 || body != string(js) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("/static/uplot.min.js: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	etag := resp.Header.Get("ETag")
	if resp, _ := request(t, "GET", base+"/static/uplot.min.js", nil, http.Header{"If-None-Match": {etag}}); etag == "" || resp.StatusCode != http.StatusNotModified {
		t.Errorf("again with its ETag %q: %d, want 304", etag, resp.StatusCode)
	}
	for _, path := range []string{"/static/uplot.min.css", "/static/uplot.LICENSE"} {
		if resp, _ := request(t, "GET", base+path, nil, nil); resp.StatusCode != 200 {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
