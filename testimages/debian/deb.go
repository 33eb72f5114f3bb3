package debian

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path"
	"strings"
)

// DebFile returns the content of one regular file of a .deb's data
// archive, read with dpkg-deb (the reference reader of the format). name is
// the path inside the package, e.g. "/bin/busybox".
func DebFile(ctx context.Context, deb, name string) ([]byte, error) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		return nil, fmt.Errorf("%s: dpkg-deb not found (apt-get install dpkg): %w", deb, ErrUnavailable)
	}
	want := path.Clean("/" + name)
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", deb)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: dpkg-deb: %w", deb, err)
	}
	var found []byte
	tr := tar.NewReader(out)
	for found == nil {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			_ = cmd.Wait()
			return nil, fmt.Errorf("%s: data archive: %w", deb, err)
		}
		if path.Clean("/"+h.Name) != want {
			continue
		}
		if h.Typeflag != tar.TypeReg {
			_ = cmd.Wait()
			return nil, fmt.Errorf("%s: %s is not a regular file", deb, name)
		}
		if found, err = io.ReadAll(tr); err != nil {
			_ = cmd.Wait()
			return nil, fmt.Errorf("%s: %s: %w", deb, name, err)
		}
	}
	// Drain so dpkg-deb is not killed by a broken pipe before it exits.
	_, _ = io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("%s: dpkg-deb: %w: %s", deb, err, strings.TrimSpace(stderr.String()))
	}
	if found == nil {
		return nil, fmt.Errorf("%s: no %s in the package", deb, name)
	}
	return found, nil
}
