package qemu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"regexp"
	"slices"
	"strings"
)

// envEntry is one key=value string of a U-Boot environment.
var envEntry = regexp.MustCompile(`^[A-Za-z0-9_.:+-]+=[\x20-\x7e\t\n]*$`)

// DefaultEnv finds U-Boot's built-in default environment in a u-boot.bin:
// the run of NUL-separated key=value strings that holds bootcmd=. Where
// several runs mention bootcmd=, the longest wins. This reads the
// environment that exact binary will use, rather than a copy that could
// drift from it when Debian updates U-Boot.
func DefaultEnv(uboot []byte) ([]string, error) {
	var best []string
	for i := 0; ; {
		j := bytes.Index(uboot[i:], []byte("\x00bootcmd="))
		if j < 0 {
			break
		}
		at := i + j + 1
		i = at
		// Back to the first entry of the run.
		start := at
		for start > 1 {
			prev := bytes.LastIndexByte(uboot[:start-1], 0) + 1
			if !envEntry.Match(uboot[prev : start-1]) {
				break
			}
			start = prev
		}
		var run []string
		for p := start; p < len(uboot); {
			end := bytes.IndexByte(uboot[p:], 0)
			if end <= 0 || !envEntry.Match(uboot[p:p+end]) {
				break
			}
			run = append(run, string(uboot[p:p+end]))
			p += end + 1
		}
		if len(run) > len(best) {
			best = run
		}
	}
	if len(best) < 2 {
		return nil, errors.New("no default environment (NUL-separated key=value strings with bootcmd=) in u-boot.bin")
	}
	return best, nil
}

// SetEnv returns env with the variables of set changed in place, and those
// it lacked appended in name order.
func SetEnv(env []string, set map[string]string) []string {
	out := slices.Clone(env)
	done := map[string]bool{}
	for i, kv := range out {
		k, _, _ := strings.Cut(kv, "=")
		if v, ok := set[k]; ok {
			out[i] = k + "=" + v
			done[k] = true
		}
	}
	var add []string
	for k := range set {
		if !done[k] {
			add = append(add, k)
		}
	}
	slices.Sort(add)
	for _, k := range add {
		out = append(out, k+"="+set[k])
	}
	return out
}

// EnvImage lays env out as U-Boot reads a non-redundant environment and as
// mkenvimage writes it: a little-endian CRC-32 of the rest, then the
// NUL-terminated entries and an empty one, padded with 0xff to size.
func EnvImage(env []string, size int) ([]byte, error) {
	b := make([]byte, size)
	p := 4
	for _, kv := range env {
		if p+len(kv)+2 > size {
			return nil, fmt.Errorf("environment does not fit in %d bytes", size)
		}
		p += copy(b[p:], kv)
		b[p] = 0
		p++
	}
	b[p] = 0
	for i := p + 1; i < size; i++ {
		b[i] = 0xff
	}
	binary.LittleEndian.PutUint32(b, crc32.ChecksumIEEE(b[4:]))
	return b, nil
}
