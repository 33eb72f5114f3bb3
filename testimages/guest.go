package testimages

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// GuestListPrefix starts each line of cmd/guestlist's listings.
const GuestListPrefix = "ocidisk-list: "

// GuestTool cross-compiles cmd/guestlist, static, for a guest of goarch
// (arm64 or arm) and returns the binary's path: what a test copies into a
// guest to set xattrs and list its root.
func GuestTool(t testing.TB, goarch string) string {
	t.Helper()
	goBin := hosttool.Require(t, "go", "golang-go")
	out := filepath.Join(t.TempDir(), "guestlist")
	cmd := exec.Command(goBin, "build", "-trimpath", "-o", out, "github.com/ocidisk/ocidisk/testimages/cmd/guestlist")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch, "GOARM=7", "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build guestlist for %s: %v\n%s", goarch, err, b)
	}
	return out
}

// guestEntry is one line of a listing, as cmd/guestlist prints it.
type guestEntry struct {
	Path   string            `json:"path"`
	Type   string            `json:"type"`
	Mode   uint32            `json:"mode"`
	UID    uint32            `json:"uid"`
	GID    uint32            `json:"gid"`
	Size   int64             `json:"size"`
	SHA256 string            `json:"sha256"`
	Target string            `json:"target"`
	Major  uint32            `json:"major"`
	Minor  uint32            `json:"minor"`
	Xattrs map[string]string `json:"xattrs"`
	Dev    uint64            `json:"dev"`
	Ino    uint64            `json:"ino"`
}

// ParseGuestListing reads the listing cmd/guestlist printed into a
// console capture (other lines are ignored) as records in the form
// fstree.Manifest gives, without times: a name of a non-directory inode
// seen before (by device and inode) is a hardlink to its first name.
func ParseGuestListing(console string) ([]fstree.Record, error) {
	types := map[string]fstree.Type{}
	for _, ty := range []fstree.Type{fstree.TypeRegular, fstree.TypeDir, fstree.TypeSymlink, fstree.TypeCharDev,
		fstree.TypeBlockDev, fstree.TypeFIFO, fstree.TypeSocket} {
		types[ty.String()] = ty
	}
	var out []fstree.Record
	first := map[[2]uint64]string{}
	for _, line := range strings.Split(console, "\n") {
		_, js, ok := strings.Cut(strings.TrimRight(line, "\r"), GuestListPrefix)
		if !ok {
			continue
		}
		var e guestEntry
		if err := json.Unmarshal([]byte(js), &e); err != nil {
			return nil, fmt.Errorf("listing line %q: %w", line, err)
		}
		ty, ok := types[e.Type]
		if !ok {
			return nil, fmt.Errorf("listing line %q: type %q", line, e.Type)
		}
		r := fstree.Record{Path: e.Path, Type: ty, Mode: e.Mode, UID: e.UID, GID: e.GID,
			Size: e.Size, SHA256: e.SHA256, Target: e.Target, Major: e.Major, Minor: e.Minor}
		if ty != fstree.TypeCharDev && ty != fstree.TypeBlockDev {
			r.Major, r.Minor = 0, 0
		}
		for k, v := range e.Xattrs {
			b, err := hex.DecodeString(v)
			if err != nil {
				return nil, fmt.Errorf("listing line %q: xattr %s: %w", line, k, err)
			}
			if r.Xattrs == nil {
				r.Xattrs = map[string]string{}
			}
			r.Xattrs[k] = string(b)
		}
		if ty != fstree.TypeDir {
			key := [2]uint64{e.Dev, e.Ino}
			if fp, ok := first[key]; ok {
				r.HardlinkTo = fp
			} else {
				first[key] = e.Path
			}
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no listing in the console (no line starts with %q)", GuestListPrefix)
	}
	return out, nil
}
