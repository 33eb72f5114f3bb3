package bench

import (
	"strings"
	"testing"
	"time"
)

func secs(f ...float64) []Sample {
	out := make([]Sample, len(f))
	for i, s := range f {
		out[i] = Sample{Wall: time.Duration(s * float64(time.Second)), CPU: time.Duration(2 * s * float64(time.Second)), PeakRSS: int64(s) << 20, Written: int64(10*s) << 20}
	}
	return out
}

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []Sample
		want time.Duration
	}{
		{"none", nil, 0},
		{"one", secs(3), 3 * time.Second},
		{"odd, unsorted", secs(9, 1, 5, 3, 7), 5 * time.Second},
		{"even: the mean of the middle two", secs(4, 1, 2, 8), 3 * time.Second},
		{"an outlier does not move it", secs(2, 2, 100, 2, 3), 2 * time.Second},
	}
	for _, tt := range tests {
		m := Median(tt.in)
		if m.Wall != tt.want || m.CPU != 2*tt.want {
			t.Errorf("%s: median wall %v CPU %v, want %v and %v", tt.name, m.Wall, m.CPU, tt.want, 2*tt.want)
		}
	}
	// Each field is its own median, not the fields of the median run.
	m := Median([]Sample{{Wall: 1, PeakRSS: 30}, {Wall: 2, PeakRSS: 10}, {Wall: 3, PeakRSS: 20}})
	if m.Wall != 2 || m.PeakRSS != 20 {
		t.Errorf("median of mixed fields = %+v, want wall 2 and RSS 20", m)
	}
}

func results(cold, warm, pipe, floor []Sample) []Result {
	return []Result{
		{Input: "t", Run: OcidiskCold, Samples: cold},
		{Input: "t", Run: OcidiskWarm, Samples: warm},
		{Input: "t", Run: Pipeline, Samples: pipe},
		{Input: "t", Run: Floor, Samples: floor},
	}
}

func TestWriteTable(t *testing.T) {
	rs := results(secs(4, 5, 6), secs(1, 1, 1), secs(40, 40, 50), secs(5, 4, 5))
	var b strings.Builder
	if err := WriteTable(&b, rs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 6 {
		t.Fatalf("want a header, a rule and 4 rows, got:\n%s", b.String())
	}
	wantRows := []string{
		// wall / pipeline, wall / floor, CPU / floor
		"| t | ocidisk cold | 5.00 (4.00-6.00) | 10.00 | 5 | 50 | 0.12 | 1.00 | 1.00 |",
		"| t | ocidisk warm | 1.00 (1.00-1.00) | 2.00 | 1 | 10 | 0.03 | 0.20 | 0.20 |",
		"| t | pipeline | 40.00 (40.00-50.00) | 80.00 | 40 | 400 | 1.00 | 8.00 | 8.00 |",
		"| t | floor | 5.00 (4.00-5.00) | 10.00 | 5 | 50 | 0.12 | 1.00 | 1.00 |",
	}
	for i, want := range wantRows {
		if lines[i+2] != want {
			t.Errorf("row %d:\n got %s\nwant %s", i, lines[i+2], want)
		}
	}
}

func TestWriteVerdicts(t *testing.T) {
	tests := []struct {
		name string
		cold []Sample
		want []string
	}{
		{"all met", []Sample{{Wall: 5 * time.Second, PeakRSS: 100 << 20}},
			[]string{"8.0x faster than the pipeline (target 6x: met)", "1.00x the floor (target 1.1x: met)", "peak RSS 100 MiB (target 200 MiB: met)"}},
		{"slow and large", []Sample{{Wall: 6 * time.Second, PeakRSS: 300 << 20}},
			[]string{"6.7x faster than the pipeline (target 6x: met)", "1.20x the floor (target 1.1x: not met)", "peak RSS 300 MiB (target 200 MiB: not met)"}},
		{"slower still", []Sample{{Wall: 10 * time.Second, PeakRSS: 100 << 20}},
			[]string{"4.0x faster than the pipeline (target 6x: not met)", "2.00x the floor (target 1.1x: not met)"}},
	}
	for _, tt := range tests {
		rs := results(tt.cold, []Sample{{Wall: time.Second}}, []Sample{{Wall: 40 * time.Second}}, []Sample{{Wall: 5 * time.Second}})
		var b strings.Builder
		if err := WriteVerdicts(&b, rs); err != nil {
			t.Fatal(err)
		}
		cold, _, _ := strings.Cut(b.String(), "\n")
		if !strings.HasPrefix(cold, "- t, ocidisk cold:") {
			t.Fatalf("%s: first verdict is not the cold run's: %q", tt.name, b.String())
		}
		for _, w := range tt.want {
			if !strings.Contains(cold, w) {
				t.Errorf("%s: verdict %q lacks %q", tt.name, cold, w)
			}
		}
		if strings.Count(b.String(), "\n") != 2 {
			t.Errorf("%s: want verdicts for the cold and warm runs only:\n%s", tt.name, b.String())
		}
	}
}

func TestWriteVerdictsScale(t *testing.T) {
	tests := []struct {
		name string
		ours []Sample
		want string
	}{
		{"met", []Sample{{Wall: 20 * time.Second, CPU: 30 * time.Second, PeakRSS: 250 << 20}},
			"- m, ocidisk build: 0.40x the wall time of mke2fs -d (target 0.5x: met; CPU 0.75x); peak RSS 250 MiB (target 300 MiB: met)"},
		{"slow and large", []Sample{{Wall: 30 * time.Second, CPU: 30 * time.Second, PeakRSS: 400 << 20}},
			"- m, ocidisk build: 0.60x the wall time of mke2fs -d (target 0.5x: not met; CPU 0.75x); peak RSS 400 MiB (target 300 MiB: not met)"},
	}
	for _, tt := range tests {
		rs := []Result{
			{Input: "m", Run: ScaleOcidisk, Samples: tt.ours},
			{Input: "m", Run: ScaleMke2fs, Samples: []Sample{{Wall: 50 * time.Second, CPU: 40 * time.Second, PeakRSS: 3 << 20}}},
		}
		var b strings.Builder
		if err := WriteVerdicts(&b, rs); err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(b.String()); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}
