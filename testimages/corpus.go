package testimages

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Case is one image of the conformance corpus: layers described entry by
// entry, and the listing its flattened tree must have, written by hand from
// the rules (OCI image spec, overlayfs) and never computed by a flattener.
type Case struct {
	Name  string
	About string // the rule the case checks
	// Compression of every layer: Gzip (""), Zstd or Uncompressed.
	Compression string
	Layers      [][]Entry // oldest first
	// Want is the expected listing in the syntax of ParseListing.
	Want string
	// WantErr, for inputs that must be refused, is a part of the error.
	WantErr string
}

// Image builds the case's linux/arm64 image.
func (c Case) Image() (v1.Image, error) {
	var ls []v1.Layer
	for i, es := range c.Layers {
		l, err := LayerOf(es, c.Compression)
		if err != nil {
			return nil, fmt.Errorf("case %s: layer %d: %w", c.Name, i, err)
		}
		ls = append(ls, l)
	}
	return ImageOf(ls...)
}

// Corpus returns the conformance corpus: the cases that must flatten to
// their listings, then the ones that must be refused.
func Corpus() []Case {
	return append(append(append(basicCases(), whiteoutCases()...), append(replaceCases(), hardlinkCases()...)...),
		append(metadataCases(), errorCases()...)...)
}

// capability is a real security.capability value (cap_net_raw+ep, as on
// /bin/ping): version 2, binary.
const capability = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
