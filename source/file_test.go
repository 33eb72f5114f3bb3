package source

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDebDigests: a deb: source is identified by the file's sha256 and
// its layer by the data member's, both from one read of the file.
func TestDebDigests(t *testing.T) {
	member := func(name string, data string) string {
		h := fmt.Sprintf("%-16s%-12d%-6d%-6d%-8s%-10d`\n", name, 0, 0, 0, "100644", len(data))
		if len(data)%2 == 1 {
			data += "\n"
		}
		return h + data
	}
	tests := []struct{ name, data, after string }{
		{"data last", "DATA", ""},
		{"data between members", strings.Repeat("x", 3<<20+1), member("zz-extra", "tail")},
		{"empty data", "", ""},
	}
	for _, tt := range tests {
		deb := "!<arch>\n" + member("debian-binary", "2.0\n") + member("control.tar.xz", "c") + member("data.tar", tt.data) + tt.after
		file := filepath.Join(t.TempDir(), "p.deb")
		if err := os.WriteFile(file, []byte(deb), 0o644); err != nil {
			t.Fatal(err)
		}
		im, err := Open(t.Context(), "deb:"+file, Options{CacheDir: t.TempDir()})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if want := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(deb))); im.ID != want {
			t.Errorf("%s: ID %s, want the file's %s", tt.name, im.ID, want)
		}
		if want := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(tt.data))); im.Layers[0].Digest() != want {
			t.Errorf("%s: layer %s, want the data member's %s", tt.name, im.Layers[0].Digest(), want)
		}
		im.Close()
	}
}
