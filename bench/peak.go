package bench

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ResetPeakRSS restarts the kernel's count of this process's peak resident
// set (VmHWM), so that PeakRSS measures from here rather than from the
// process's start, where the kernel allows it (Linux 4.0 and later).
func ResetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// PeakRSS returns this process's peak resident set in bytes, VmHWM of
// /proc/self/status: what an in-process benchmark reports as its memory.
func PeakRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM in /proc/self/status: %w", err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}
