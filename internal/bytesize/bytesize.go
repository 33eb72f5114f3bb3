// Package bytesize reads and writes sizes in bytes the way ocidisk's
// command line, board packs and build files spell them: a number of bytes
// or a number with a binary unit ("512", "8KiB", "128MiB", "2GiB",
// "1TiB"; K, M, G and T mean the same). It is the one place sizes are
// parsed and printed.
package bytesize

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Size is a byte count. In a YAML file "auto" is 0: sized to the content.
type Size int64

// Binary units, largest first.
var units = []struct {
	suffix, short string
	mult          int64
}{
	{"PiB", "P", 1 << 50}, {"TiB", "T", 1 << 40}, {"GiB", "G", 1 << 30}, {"MiB", "M", 1 << 20}, {"KiB", "K", 1 << 10},
}

// Parse parses a size: digits (decimal, or 0x hex), optionally followed
// by a binary unit or B. It refuses negative sizes and sizes that do not
// fit in 62 bits.
func Parse(s string) (Size, error) {
	orig := s
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = n, u.mult
			break
		}
		if n, ok := strings.CutSuffix(s, u.short); ok {
			s, mult = n, u.mult
			break
		}
	}
	if mult == 1 {
		s = strings.TrimSuffix(s, "B")
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 0, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size (e.g. 512, 8KiB, 128MiB, 2GiB, 1TiB)", orig)
	}
	return Size(n * mult), nil
}

// String renders s exactly, in the largest binary unit that divides it
// ("40KiB", "1MiB", "512B"): what Parse reads back.
func (s Size) String() string {
	for _, u := range units {
		if s != 0 && int64(s)%u.mult == 0 {
			return strconv.FormatInt(int64(s)/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// Human renders n bytes for people, to one decimal in the largest binary
// unit it reaches ("1.5 GiB", "330.0 MiB", "512 bytes").
func Human(n int64) string {
	switch {
	case n == 1:
		return "1 byte"
	case n < 1024 && n > -1024:
		return fmt.Sprintf("%d bytes", n)
	}
	f := float64(n)
	for i := len(units) - 1; i >= 0; i-- {
		f /= 1024
		if math.Abs(f) < 1024 || i == 0 {
			return fmt.Sprintf("%.1f %s", f, units[i].suffix)
		}
	}
	panic("unreachable")
}

// UnmarshalYAML parses a Size from a scalar; "auto" is 0.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a size, got a %s", n.Line, KindName(n.Kind))
	}
	if n.Value == "auto" {
		*s = 0
		return nil
	}
	v, err := Parse(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*s = v
	return nil
}

// KindName names a YAML node kind for errors.
func KindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "value"
	case yaml.AliasNode:
		return "alias"
	}
	return "document"
}
