package flash

import (
	"bufio"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// snapshot is a System recorded from a machine, read from a text file:
//
//	# comment
//	/sys/block/sda/size:3906250000        a one-line file (grep -H . FILE prints these)
//	/sys/block/sda/holders/dm-0:          a directory entry
//	stat /dev/sda block 8:0               what stat(2) says of a path
//	-- /proc/self/mountinfo --            a multi-line file, up to the next "-- " line
//
// Directories are implied by the paths under them.
type snapshot struct {
	files map[string]string
	stats map[string]Node
}

func loadSnapshot(t testing.TB, name string) *snapshot {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := &snapshot{files: map[string]string{}, stats: map[string]Node{}}
	var block string
	sc := bufio.NewScanner(f)
	for ln := 1; sc.Scan(); ln++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "-- ") && strings.HasSuffix(line, " --"):
			block = strings.TrimSuffix(strings.TrimPrefix(line, "-- "), " --")
			s.files[block] = ""
		case block != "":
			s.files[block] += line + "\n"
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "stat "):
			f := strings.Fields(line)
			if len(f) != 4 {
				t.Fatalf("%s:%d: want stat PATH KIND MAJ:MIN", name, ln)
			}
			dev, err := ParseDevNum(f[3])
			if err != nil {
				t.Fatalf("%s:%d: %v", name, ln, err)
			}
			kind := map[string]NodeKind{"block": KindBlock, "file": KindRegular, "char": KindOther}[f[2]]
			s.stats[f[1]] = Node{Kind: kind, Dev: dev}
		default:
			p, v, ok := strings.Cut(line, ":")
			if !ok || !strings.HasPrefix(p, "/") {
				t.Fatalf("%s:%d: want PATH:VALUE, got %q", name, ln, line)
			}
			s.files[p] = v + "\n"
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *snapshot) ReadFile(name string) ([]byte, error) {
	if v, ok := s.files[name]; ok {
		return []byte(v), nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

func (s *snapshot) ReadDir(name string) ([]string, error) {
	var out []string
	prefix := strings.TrimSuffix(name, "/") + "/"
	for p := range s.files {
		if rest, ok := strings.CutPrefix(p, prefix); ok {
			first, _, _ := strings.Cut(rest, "/")
			if !slices.Contains(out, first) {
				out = append(out, first)
			}
		}
	}
	if out == nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	slices.Sort(out)
	return out, nil
}

func (s *snapshot) Stat(name string) (Node, error) {
	if n, ok := s.stats[name]; ok {
		return n, nil
	}
	return Node{}, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
}

var record = flag.String("record", "", "record this machine's block devices into testdata/`NAME` and stop")

// TestRecord writes a snapshot of the machine running the test, the way the
// recorded ones were made: go test ./flash -run TestRecord -record vm.txt.
func TestRecord(t *testing.T) {
	if *record == "" {
		t.Skip("give -record NAME to record this machine")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Recorded by go test ./flash -run TestRecord -record %s\n", *record)
	h := Host{}
	disks, err := h.ReadDir("/sys/block")
	if err != nil {
		t.Fatal(err)
	}
	attrs := []string{"dev", "size", "removable", "partition", "device/model", "device/name", "device/vendor", "device/type", "dm/name"}
	put := func(dir string) {
		for _, a := range attrs {
			if v, err := h.ReadFile(dir + "/" + a); err == nil {
				fmt.Fprintf(&b, "%s/%s:%s\n", dir, a, strings.TrimSpace(string(v)))
			}
		}
		for _, sub := range []string{"holders", "slaves"} {
			names, _ := h.ReadDir(dir + "/" + sub)
			for _, n := range names {
				fmt.Fprintf(&b, "%s/%s/%s:\n", dir, sub, n)
			}
		}
	}
	var devs []string
	for _, d := range disks {
		dir := "/sys/block/" + d
		put(dir)
		devs = append(devs, "/dev/"+d)
		ents, _ := h.ReadDir(dir)
		for _, e := range ents {
			if _, err := h.ReadFile(dir + "/" + e + "/partition"); strings.HasPrefix(e, d) && err == nil {
				put(dir + "/" + e)
				devs = append(devs, "/dev/"+e)
			}
		}
	}
	for _, d := range devs {
		if n, err := h.Stat(d); err == nil && n.Kind == KindBlock {
			fmt.Fprintf(&b, "stat %s block %s\n", d, n.Dev)
		}
	}
	for _, f := range []string{"/proc/self/mountinfo", "/proc/swaps"} {
		v, err := h.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "-- %s --\n%s", f, v)
	}
	if err := os.WriteFile(filepath.Join("testdata", path.Base(*record)), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
