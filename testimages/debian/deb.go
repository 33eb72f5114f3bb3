package debian

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path"
	"strings"
)

// debStream runs `dpkg-deb ARCHIVE deb` (ARCHIVE is --fsys-tarfile for the
// data archive, --ctrl-tarfile for the control archive: dpkg-deb is the
// reference reader of the format) and hands its tar stream to use.
func debStream(ctx context.Context, deb, archive string, use func(io.Reader) error) error {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		return fmt.Errorf("%s: dpkg-deb not found (apt-get install dpkg): %w", deb, ErrUnavailable)
	}
	cmd := exec.CommandContext(ctx, "dpkg-deb", archive, deb)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: dpkg-deb: %w", deb, err)
	}
	err = use(out)
	// Drain so dpkg-deb is not killed by a broken pipe before it exits.
	_, _ = io.Copy(io.Discard, out)
	if werr := cmd.Wait(); err == nil && werr != nil {
		err = fmt.Errorf("%s: dpkg-deb %s: %w: %s", deb, archive, werr, strings.TrimSpace(stderr.String()))
	}
	return err
}

// errStop ends walkDeb early without an error.
var errStop = errors.New("stop")

// walkDeb calls each for every entry of one of deb's archives (see
// debStream), in archive order, with the entry's content; each returns
// errStop to end the walk.
func walkDeb(ctx context.Context, deb, archive string, each func(h *tar.Header, r io.Reader) error) error {
	return debStream(ctx, deb, archive, func(r io.Reader) error {
		tr := tar.NewReader(r)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %s: %w", deb, archive, err)
			}
			if err := each(h, tr); err == errStop {
				return nil
			} else if err != nil {
				return err
			}
		}
	})
}

// DebFile returns the content of one regular file of a .deb's data
// archive, read with dpkg-deb. name is the path inside the package, e.g.
// "/bin/busybox".
func DebFile(ctx context.Context, deb, name string) ([]byte, error) {
	want := path.Clean("/" + name)
	var found []byte
	err := walkDeb(ctx, deb, "--fsys-tarfile", func(h *tar.Header, r io.Reader) error {
		if path.Clean("/"+h.Name) != want {
			return nil
		}
		if h.Typeflag != tar.TypeReg {
			return fmt.Errorf("%s: %s is not a regular file", deb, name)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", deb, name, err)
		}
		found = b
		return errStop
	})
	if err != nil {
		return nil, err
	}
	if found == nil {
		return nil, fmt.Errorf("%s: no %s in the package", deb, name)
	}
	return found, nil
}
