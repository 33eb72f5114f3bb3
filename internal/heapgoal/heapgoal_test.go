package heapgoal

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	p := Policy{Small: 64 << 20, Headroom: 24 << 20, Percent: 6}
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, 100},
		{1 << 20, 100},
		{64 << 20, 100},           // Go's default up to Small
		{65 << 20, 36},            // then the headroom: 24 MiB over 65
		{230 << 20, 10},           // a million entries
		{400 << 20, 6},            // from here the fraction
		{4 << 30, 6},              //
		{(24 << 20) * 100 / 7, 7}, // the headroom, rounded down
	} {
		if got := p.percent(tc.live); got != tc.want {
			t.Errorf("percent(%d MiB live) = %d, want %d", tc.live>>20, got, tc.want)
		}
	}
}

func gogc() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestInstall checks that collections set the percentage the live heap
// calls for: the fraction while 64 MiB are live, and Go's default again
// once they are not.
func TestInstall(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	Install(Policy{Small: 16 << 20, Headroom: 4 << 20, Percent: 20})
	keep := make([]byte, 64<<20)
	waitFor(t, "64 MiB live", 20)
	runtime.KeepAlive(keep)
	waitFor(t, "nothing live", 100)
}

// waitFor collects until GOGC is want: the policy is applied after a
// collection, in the background.
func waitFor(t *testing.T, what string, want uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for gogc() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: GOGC stays %d, want %d", what, gogc(), want)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
