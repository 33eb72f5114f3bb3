package pipeline

import (
	"os"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// TestValidateTargets: the checks of issue 18, made before any work and
// naming the Config field at fault.
func TestValidateTargets(t *testing.T) {
	rpi2, err := boards.Load("rpi2")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		field string
		want  string
	}{
		{"arm64 platform on an arm board", func(c *Config) { c.Board, c.Sources.Platform = rpi2, "linux/arm64" },
			"Sources.Platform", "platform linux/arm64 does not run on board rpi2, whose kernel and init are arm (use linux/arm/v7)"},
		{"arm platform on an arm64 board", func(c *Config) { c.Sources.Platform = "linux/arm/v7" },
			"Sources.Platform", "board qemu-virt-arm64"},
		{"v6 on an arm board", func(c *Config) { c.Board, c.Sources.Platform = rpi2, "linux/arm/v6" }, "", ""},
		{"unknown format", func(c *Config) { c.Format = "vmdk" }, "Format", `image format "vmdk": want raw or qcow2`},
		{"qcow2 with a bmap", func(c *Config) { c.Format, c.Bmap = "qcow2", true }, "Bmap", "block map"},
		{"qcow2 compressed", func(c *Config) { c.Format, c.Compress = "qcow2", "xz" }, "Compress", "compression"},
		{"qcow2", func(c *Config) { c.Format, c.Compress = "qcow2", "none" }, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, "oci:x", "")
			tc.edit(&cfg)
			err := cfg.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			field, ok := IsConfigError(err)
			if !ok || field != tc.field || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v (field %q), want %s: %q", err, field, tc.field, tc.want)
			}
		})
	}
}

// TestBuildWrongArchitecture: a single-platform root of another
// architecture than the board's is refused naming both, and the board.
func TestBuildWrongArchitecture(t *testing.T) {
	rpi2, err := boards.Load("rpi2")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, "oci:"+debian.BusyboxRoot(t), "")
	cfg.Board, cfg.Sources.Platform = rpi2, Platform(rpi2)
	_, err = Build(t.Context(), cfg)
	for _, w := range []string{"root image", "image is for linux/arm64, not linux/arm/v7", "board rpi2"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("err = %v, want it to say %q", err, w)
		}
	}
	if _, err := os.Stat(cfg.Output); !os.IsNotExist(err) {
		t.Errorf("failed build left %s", cfg.Output)
	}
}
