// Command testinputs makes the Debian-based test inputs of package
// testimages/debian from a shell, so that scripts (the README demo, bench/)
// use the very inputs the tests use, from the same cache.
//
//	testinputs busybox-root [--arch A] [--marker M] [-o DIR]
//	                                                the busybox test root (OCI layout)
//	testinputs kernel-deb [--arch A] [--flavour F] [--suite S]
//	                                                a Debian kernel .deb (arm64 by default)
//	testinputs package NAME[:ARCH][/SUITE]          any Debian package's .deb
//	testinputs rpi5-kernel [-o DIR]                 a kernel the rpi5 board takes (OCI layout)
//	testinputs debian-tree [--large] [-o DIR] [--extract DIR]
//	                                                the layered Debian root (OCI layout);
//	                                                --extract also writes its flattened
//	                                                tree into DIR (as root), for mke2fs -d
//	testinputs debian-tree-info [--large]           where its tars and listing are, and its size
//	testinputs systemd-root [--info] [-o DIR] [--extract DIR]
//	                                                a configured systemd Debian root (OCI layout)
//	testinputs extract-root [--info] [-o DIR] [--extract DIR]
//	                                                the same packages unpacked, not configured,
//	                                                with dpkg's database (OCI layout)
//
// Each prints the path of what it made. Without -o the path is inside the
// cache ($OCIDISK_TESTDATA, else the XDG cache directory); with -o the
// input is copied to DIR, which must not exist yet.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/ocidisk/ocidisk/testimages/debian"
)

const usage = `usage: testinputs COMMAND [flags]

commands:
  busybox-root [--arch arm64|arm] [--marker M] [-o DIR]
                                      the busybox test root, an OCI layout
                                      (linux/arm64, or linux/arm/v7 from armhf)
  kernel-deb [--arch arm64|armhf] [--flavour armmp|armmp-lpae] [--suite S]
                                      a Debian kernel package: arm64 by default,
                                      armhf's armmp or armmp-lpae, or one from
                                      another suite (bookworm-backports: 6.12)
  package NAME[:ARCH][/SUITE]         a Debian package (arm64 unless NAME:ARCH)
  rpi5-kernel [-o DIR]                bookworm-backports' arm64 kernel (with the Pi 5's
                                      device tree) and its SD driver listed as built in,
                                      an OCI layout for ocidisk build --board rpi5
  debian-tree [--large] [-o DIR] [--extract DIR]
                                      the Debian root in 5 layers, an OCI layout;
                                      --extract writes its flattened tree to DIR
  debian-tree-info [--large]          the Debian root's files, size and changes
  systemd-root [--info] [-o DIR] [--extract DIR]
                                      a configured Debian root booting systemd,
                                      DHCP and sshd, in 5 layers, an OCI layout
  extract-root [--info] [-o DIR] [--extract DIR]
                                      its packages unpacked and not configured,
                                      with dpkg's database, an OCI layout: the
                                      input of a second stage (dpkg --configure -a)
  --info (tree commands) prints where the tree's tars and listing are instead
`

type usageError struct{ error }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var ue usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(os.Stderr, "testinputs: %v\n%s", err, usage)
		os.Exit(2)
	case err != nil:
		fmt.Fprintf(os.Stderr, "testinputs: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New("no command")}
	}
	cmd, args := args[0], args[1:]
	fs := pflag.NewFlagSet(cmd, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	out := fs.StringP("output", "o", "", "copy the input to this new directory")
	marker := fs.String("marker", debian.Marker, "the line the busybox root's init prints")
	verbose := fs.BoolP("verbose", "v", false, "log each step")
	extract := fs.String("extract", "", "debian-tree: also extract the flattened tree into this directory (needs root)")
	large := fs.Bool("large", false, "the larger Debian tree (over 1 GiB, 40,000 entries)")
	arch := fs.String("arch", debian.Arch, "the architecture: arm64, or armhf (arm, arm/v7)")
	flavour := fs.String("flavour", "", "kernel-deb: the kernel flavour (armhf: armmp, armmp-lpae)")
	suite := fs.String("suite", "", "kernel-deb: the suite to take the kernel from (bookworm-backports)")
	info := fs.Bool("info", false, "tree commands: print the tree's files, size and changes")
	if err := fs.Parse(args); err != nil {
		return usageError{fmt.Errorf("%s: %w", cmd, err)}
	}
	debArch, err := debian.DebianArch(*arch)
	if err != nil {
		return usageError{fmt.Errorf("%s: --arch: %w", cmd, err)}
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	c, err := debian.OpenCache(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})))
	if err != nil {
		return err
	}
	wantArgs := func(n int) error {
		if fs.NArg() != n {
			return usageError{fmt.Errorf("%s: want %d arguments, got %d", cmd, n, fs.NArg())}
		}
		return nil
	}
	var path string
	switch cmd {
	case "busybox-root":
		if err := wantArgs(0); err != nil {
			return err
		}
		path, err = c.BusyboxRootArch(ctx, debArch, *marker)
	case "kernel-deb":
		if err := wantArgs(0); err != nil {
			return err
		}
		k := debian.KernelSpec{Arch: debArch, Flavour: *flavour, Suite: *suite}
		if _, err := k.Package(); err != nil {
			return usageError{fmt.Errorf("%s: %w", cmd, err)}
		}
		path, err = c.KernelFor(ctx, k)
	case "rpi5-kernel":
		if err := wantArgs(0); err != nil {
			return err
		}
		path, err = c.Rpi5Kernel(ctx)
	case "package":
		if err := wantArgs(1); err != nil {
			return err
		}
		path, err = c.Package(ctx, fs.Arg(0))
	case "debian-tree", "debian-tree-info", "systemd-root", "extract-root":
		if err := wantArgs(0); err != nil {
			return err
		}
		spec := map[string]debian.TreeSpec{"systemd-root": debian.SystemdRootSpec(), "extract-root": debian.ExtractRootSpec()}[cmd]
		if spec.Name == "" {
			spec = debian.DefaultTree()
			if *large {
				spec = debian.LargeTree()
			}
		}
		var d *debian.DebianTree
		if d, err = c.Tree(ctx, spec); err != nil {
			break
		}
		path = d.Layout
		if *extract != "" {
			if err := d.Extract(ctx, *extract); err != nil {
				return fmt.Errorf("%s: %w", cmd, err)
			}
		}
		if cmd == "debian-tree-info" || *info {
			printInfo(stdout, d)
			return nil
		}
	default:
		return usageError{fmt.Errorf("unknown command %q", cmd)}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	if *out != "" {
		if path, err = copyOut(path, *out); err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
	}
	fmt.Fprintln(stdout, path)
	return nil
}

// copyOut copies a cached file or directory to the new path dst, through a
// temporary name so that a failure leaves nothing at dst.
func copyOut(src, dst string) (string, error) {
	if _, err := os.Lstat(dst); err == nil {
		return "", fmt.Errorf("output %s: already exists", dst)
	}
	st, err := os.Stat(src)
	if err != nil {
		return "", err
	}
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp")
	os.RemoveAll(tmp)
	if st.IsDir() {
		err = os.CopyFS(tmp, os.DirFS(src))
	} else {
		err = copyFile(src, tmp)
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("output %s: %w", dst, err)
	}
	return dst, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func printInfo(w io.Writer, d *debian.DebianTree) {
	fmt.Fprintf(w, "layout\t%s\nrootfs-tar\t%s\nflat-tar\t%s\nentries\t%d\nbytes\t%d\nmarker\t%s\n",
		d.Layout, d.RootfsTar, d.FlatTar, d.Entries, d.Bytes, d.Marker)
	if d.DpkgTar != "" {
		fmt.Fprintf(w, "dpkg-tar\t%s\n", d.DpkgTar)
	}
	for _, l := range d.Layers {
		fmt.Fprintf(w, "layer\t%s\n", l)
	}
	for _, c := range d.Changes {
		fmt.Fprintf(w, "change\t%s\n", c)
	}
}
