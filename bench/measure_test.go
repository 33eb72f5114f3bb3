package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// The test binary doubles as the measured command: with BENCH_CHILD set it
// allocates BENCH_ALLOC_MIB MiB, touches it, writes BENCH_WRITE_MIB MiB to
// the file BENCH_OUT and BENCH_TEMP_MIB MiB to a file it then deletes, and
// exits.
func TestMain(m *testing.M) {
	if os.Getenv("BENCH_CHILD") != "" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

func child() int {
	alloc, _ := strconv.Atoi(os.Getenv("BENCH_ALLOC_MIB"))
	write, _ := strconv.Atoi(os.Getenv("BENCH_WRITE_MIB"))
	mem := make([]byte, alloc<<20)
	for i := range mem {
		mem[i] = byte(i)
	}
	f, err := os.Create(os.Getenv("BENCH_OUT"))
	if err != nil {
		return 1
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i) | 1
	}
	for range write {
		if _, err := f.Write(buf); err != nil {
			return 1
		}
	}
	runtime.KeepAlive(mem)
	if f.Close() != nil {
		return 1
	}
	temp, _ := strconv.Atoi(os.Getenv("BENCH_TEMP_MIB"))
	tf, err := os.Create(os.Getenv("BENCH_OUT") + ".tmp")
	if err != nil {
		return 1
	}
	for range temp {
		if _, err := tf.Write(buf); err != nil {
			return 1
		}
	}
	if tf.Close() != nil || os.Remove(tf.Name()) != nil {
		return 1
	}
	return 0
}

func TestMeasure(t *testing.T) {
	timeBin := hosttool.Require(t, "/usr/bin/time", "time")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// This process is made large first: a measure that inherited its peak
	// RSS would report it for every child.
	ballast := make([]byte, 300<<20)
	for i := range ballast {
		ballast[i] = 1
	}
	tests := []struct {
		name                  string
		viaShell              bool
		allocMiB, write, temp int
	}{
		{"small child", false, 8, 0, 0},
		{"large child", false, 120, 0, 0},
		{"writes", false, 8, 32, 0},
		// The writer is a grandchild: its bytes and memory still count.
		{"grandchild", true, 60, 16, 0},
		// A file deleted before writeback costs the disk nothing. The
		// kernel may write some back first (other work on the machine can
		// fill the page cache): the test wants only that some are taken
		// off.
		{"deleted temporary", false, 8, 16, 32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			cmd := exec.Command(self)
			if tt.viaShell {
				cmd = exec.Command("sh", "-c", `"$0"; echo done`, self)
			}
			cmd.Env = append(os.Environ(), "BENCH_CHILD=1",
				"BENCH_ALLOC_MIB="+strconv.Itoa(tt.allocMiB), "BENCH_WRITE_MIB="+strconv.Itoa(tt.write),
				"BENCH_TEMP_MIB="+strconv.Itoa(tt.temp), "BENCH_OUT="+out)
			s, err := Measure(cmd, timeBin)
			if err != nil {
				t.Fatal(err)
			}
			rss := s.PeakRSS >> 20
			if rss < int64(tt.allocMiB) || rss > int64(tt.allocMiB)+40 {
				t.Errorf("peak RSS %d MiB, want %d MiB plus the runtime's few", rss, tt.allocMiB)
			}
			w := s.Written >> 20
			if tt.temp == 0 && (w < int64(tt.write) || w > int64(tt.write)+4) {
				t.Errorf("written %d MiB, want %d MiB", w, tt.write)
			}
			if tt.temp > 0 && (w < int64(tt.write) || w >= int64(tt.write+tt.temp)) {
				t.Errorf("written %d MiB, want %d MiB and less than the %d MiB of the deleted file", w, tt.write, tt.temp)
			}
			if s.Wall <= 0 || s.CPU <= 0 {
				t.Errorf("wall %v, CPU %v: want both measured", s.Wall, s.CPU)
			}
		})
	}
	if ballast[len(ballast)-1] != 1 {
		t.Fatal("ballast changed")
	}
}

func TestMeasureFailure(t *testing.T) {
	timeBin := hosttool.Require(t, "/usr/bin/time", "time")
	if _, err := Measure(exec.Command("sh", "-c", "exit 3"), timeBin); err == nil {
		t.Fatal("a failing command measured without error")
	}
}

func TestParseIO(t *testing.T) {
	const io = "rchar: 10\nwchar: 20\nsyscr: 1\nsyscw: 2\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n"
	tests := []struct {
		in, key string
		want    int64
		ok      bool
	}{
		{io, "write_bytes", 8192, true},
		{io, "read_bytes", 4096, true},
		{io, "wchar", 20, true},
		{io, "missing", 0, false},
		{"write_bytes: x\n", "write_bytes", 0, false},
	}
	for _, tt := range tests {
		got, err := parseIO([]byte(tt.in), tt.key)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseIO(%q, %s) = %d, %v; want %d, ok %v", tt.in, tt.key, got, err, tt.want, tt.ok)
		}
	}
}
