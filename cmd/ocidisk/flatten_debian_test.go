package main

import (
	"testing"

	"github.com/ocidisk/ocidisk/testimages"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// TestFlattenDebian flattens a real-world tree nobody here wrote: a Debian
// bookworm arm64 root made by mmdebstrap, split into five gzip layers with
// deletions, replacements and type changes in the upper ones. The listing
// of the output tar (names, types, modes, owners, link targets, device
// numbers, sizes, content hashes, mtimes, xattrs, hardlinks) must be the
// one testimages/debian computed from mmdebstrap's own tar.
func TestFlattenDebian(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Debian tree on first use (minutes)")
	}
	d := debian.Tree(t) // before isolate: the tree lives in the test data cache
	isolate(t)
	got := flattenListing(t, "oci:"+d.Layout)
	if len(got) != len(d.Expected) {
		t.Errorf("%d entries, want %d", len(got), len(d.Expected))
	}
	if diff := testimages.DiffListings(d.Expected, got); diff != "" {
		if len(diff) > 8000 {
			diff = diff[:8000] + "\n..."
		}
		t.Errorf("the flattened Debian tree differs from the expected listing:\n%s", diff)
	}
	// The walk order of the output is the expected order too.
	for i := range min(len(got), len(d.Expected)) {
		if got[i].Path != d.Expected[i].Path {
			t.Errorf("entry %d is /%s, want /%s", i, got[i].Path, d.Expected[i].Path)
			break
		}
	}
}
