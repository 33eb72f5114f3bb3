package bytesize

import "testing"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Size
		err  bool
	}{
		{"512", 512, false},
		{"512B", 512, false},
		{"8KiB", 8 << 10, false},
		{"8K", 8 << 10, false},
		{"128MiB", 128 << 20, false},
		{"2GiB", 2 << 30, false},
		{"1TiB", 1 << 40, false},
		{"1024GiB", 1 << 40, false},
		{"2T", 2 << 40, false},
		{"0x1000", 4096, false},
		{" 4 MiB ", 4 << 20, false},
		{"-1", 0, true},
		{"lots", 0, true},
		{"1.5GiB", 0, true},
		{"9999999PiB", 0, true},
		{"", 0, true},
		{"MiB", 0, true},
		{"1G", 1 << 30, false},
		{"0x2000", 0x2000, false},
	} {
		got, err := Parse(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("Parse(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestStringRoundTrips(t *testing.T) {
	for _, s := range []Size{0, 1, 512, 4096, 40 << 10, 1 << 20, 3 << 30, 1 << 40, 5 << 50, 1<<20 + 512} {
		back, err := Parse(s.String())
		if err != nil || back != s {
			t.Errorf("%d: String %q parses to %d, %v", s, s.String(), back, err)
		}
	}
}

func TestHuman(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{1, "1 byte"}, {512, "512 bytes"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"},
		{330 << 20, "330.0 MiB"}, {3 << 29, "1.5 GiB"}, {2 << 40, "2.0 TiB"}, {1 << 62, "4096.0 PiB"},
	} {
		if got := Human(tc.n); got != tc.want {
			t.Errorf("Human(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
