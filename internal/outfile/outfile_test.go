package outfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCommitAndAbort(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		commit bool
	}{{"committed", true}, {"aborted", false}} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name+".img")
			f, err := Create(p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString("data"); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Fatalf("output visible before commit: %v", err)
			}
			if tc.commit {
				if err := f.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			f.Abort()
			_, err = os.Stat(p)
			if tc.commit != (err == nil) {
				t.Fatalf("after finish: stat err %v, committed %v", err, tc.commit)
			}
			left, _ := filepath.Glob(filepath.Join(dir, ".*tmp-*"))
			if len(left) != 0 {
				t.Fatalf("temporary files left: %q", left)
			}
		})
	}
}
