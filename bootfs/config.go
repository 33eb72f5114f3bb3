package bootfs

import (
	"fmt"
	"path"
	"strings"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/fstree"
)

// userConfig returns the board's config that takes the user's additions,
// or nil.
func userConfig(b *boards.Board) *boards.Config {
	for i := range b.Configs {
		if b.Configs[i].UserAppend {
			return &b.Configs[i]
		}
	}
	return nil
}

// appendUser adds the user's text and dtoverlay lines to a config.txt.
// They follow an [all] line: the Pi firmware applies a line to the models
// of the section it is in, and a board's template may end inside a [pi4]
// section.
func appendUser(text, extra string, overlays []string) string {
	if extra == "" && len(overlays) == 0 {
		return text
	}
	var b strings.Builder
	b.WriteString(text)
	if text != "" && !strings.HasSuffix(text, "\n") {
		b.WriteByte('\n')
	}
	b.WriteString("\n# Added at build time (ocidisk build --config-txt-append, --dtoverlay).\n[all]\n")
	if extra != "" {
		b.WriteString(extra)
		if !strings.HasSuffix(extra, "\n") {
			b.WriteByte('\n')
		}
	}
	for _, o := range overlays {
		fmt.Fprintf(&b, "dtoverlay=%s\n", o)
	}
	return b.String()
}

// OverlayName returns the overlay a --dtoverlay argument loads: the text
// before its first comma.
func OverlayName(arg string) string {
	name, _, _ := strings.Cut(arg, ",")
	return strings.TrimSpace(name)
}

// checkOverlays makes sure every overlay the user asked for is on the boot
// partition, so that a typo fails the build and not the boot (the Pi
// firmware skips an overlay it cannot find, quietly).
func checkOverlays(t *fstree.Tree, c *boards.Config, overlays []string) error {
	dir := c.OverlayDir
	if dir == "" {
		dir = "overlays"
	}
	for _, o := range overlays {
		name := OverlayName(o)
		if name == "" || strings.ContainsAny(name, "/ \t") {
			return fmt.Errorf("--dtoverlay %q: want NAME or NAME,param=value", o)
		}
		p := path.Join(dir, name+".dtbo")
		if n, err := t.Lookup(p); err != nil || n.Type != fstree.TypeRegular {
			return fmt.Errorf("--dtoverlay %s: no %s on the boot partition (overlays come from the kernel source's overlays/ or --boot-overlay)", name, p)
		}
	}
	return nil
}
