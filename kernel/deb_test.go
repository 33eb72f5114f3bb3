package kernel

import (
	"os"
	"testing"

	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// kernelDeb returns the path of Debian's arm64 kernel package.
func kernelDeb(t testing.TB) string {
	t.Helper()
	p := os.Getenv("OCIDISK_TEST_KERNEL_DEB")
	if p == "" {
		hosttool.Missing(t, "set OCIDISK_TEST_KERNEL_DEB to a linux-image-*-arm64 .deb")
	}
	return p
}
