package commit

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ocidisk/ocidisk/bootfs/initramfs"
	"github.com/ocidisk/ocidisk/bootfs/initramfs/protocol"
	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/kernel"
	"github.com/ocidisk/ocidisk/mkfs/erofs"
	"github.com/ocidisk/ocidisk/mkfs/ext4"
	"github.com/ocidisk/ocidisk/qemu"
	"github.com/ocidisk/ocidisk/rootfs"
	"github.com/ocidisk/ocidisk/source"
)

// The disks' files in the work directory, and their labels, by which the
// init finds them.
const (
	lowerFile, lowerLabel     = "lower.erofs", "ocidisk-lower"
	scratchFile, scratchLabel = "scratch.ext4", "ocidisk-scratch"
	copyFile, copyLabel       = "copy.erofs", "ocidisk-copy"
)

// QEMU's user-mode network: the guest's address, its gateway and DNS
// forwarder. Fixed by QEMU, so the init needs no DHCP client.
const (
	userNetAddr    = "10.0.2.15/24"
	userNetGateway = "10.0.2.2"
	userNetDNS     = "10.0.2.3"
)

// guestModules are what the init needs, loaded with their dependencies
// when the kernel has them as modules: the PCI virtio disks, the
// filesystems and overlayfs; virtio_net for the network.
var guestModules = []string{"virtio_pci", "virtio_blk", "erofs", "ext4", "overlay"}

// defaultPath is the steps' PATH when the image config sets none.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

type prepareSpec struct {
	work   string
	img    *rootfs.Image
	kernel *kernel.Kernel
	arch   string
	opts   *Options
	epoch  time.Time
}

// prepare writes what the guest boots from into the work directory: the
// kernel, the initramfs holding the steps, the lower disk, the scratch
// disk and the copy disk.
func prepare(ctx context.Context, s prepareSpec) (qemu.Guest, error) {
	o := s.opts
	g := qemu.Guest{Arch: s.arch, Net: qemu.Net(o.Net), Memory: o.Memory, CPUs: o.CPUs, KVM: qemu.KVMUsable(s.arch)}
	if g.KVM && g.CPUs == 0 {
		g.CPUs = 2
	}
	console, err := qemu.GuestConsole(s.arch)
	if err != nil {
		return g, err
	}
	if g.Kernel, err = writeKernel(s); err != nil {
		return g, err
	}
	if g.Initrd, err = writeInitramfs(s); err != nil {
		return g, err
	}
	lower := filepath.Join(s.work, lowerFile)
	if err := writeFile(lower, func(f *os.File) error {
		return erofs.Write(f, 0, s.img.Tree, erofs.Options{Label: lowerLabel, Seed: []byte(s.img.ID), DropXattrs: true, Log: o.Log})
	}); err != nil {
		return g, fmt.Errorf("lower disk: %w", err)
	}
	scratch := filepath.Join(s.work, scratchFile)
	if err := writeFile(scratch, func(f *os.File) error { return writeScratch(f, s.img.Tree.Root, o.ScratchSize) }); err != nil {
		return g, fmt.Errorf("scratch disk: %w", err)
	}
	g.Disks = []qemu.Disk{{File: lower, ReadOnly: true}, {File: scratch, Unsafe: true}}
	args := []string{
		"console=" + console, "root=LABEL=" + lowerLabel, "rootfstype=erofs", "ro",
		protocol.ArgCommit + "=LABEL=" + scratchLabel, protocol.ArgOnFail + "=" + protocol.OnFailPoweroff,
		// A panic ends QEMU at once (-no-reboot) instead of a hang until
		// the timeout; quiet keeps the console to the steps' output.
		"panic=-1", "quiet",
	}
	if len(o.Copies) > 0 {
		cp := filepath.Join(s.work, copyFile)
		if err := writeCopies(ctx, cp, o.Copies, s.epoch, o.Sources); err != nil {
			return g, err
		}
		g.Disks = append(g.Disks, qemu.Disk{File: cp, ReadOnly: true})
		args = append(args, protocol.ArgCommitCopy+"=LABEL="+copyLabel)
	}
	g.Append = strings.Join(args, " ")
	return g, nil
}

// writeFile creates path and fills it with write.
func writeFile(path string, write func(*os.File) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeKernel copies the kernel image out, uncompressed for arm64: QEMU
// loads a raw Image.
func writeKernel(s prepareSpec) (string, error) {
	n, err := s.kernel.Image(s.arch == "arm64")
	if err != nil {
		return "", err
	}
	p := filepath.Join(s.work, "kernel")
	err = writeFile(p, func(f *os.File) error {
		r, err := n.Content.Open()
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = io.Copy(f, r)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("kernel %s: %w", s.kernel.Version, err)
	}
	return p, nil
}

// writeInitramfs writes ocidisk's initramfs with the modules the guest
// needs and the commit's files in protocol.CommitDir.
func writeInitramfs(s prepareSpec) (string, error) {
	o := s.opts
	names := slices.Clone(guestModules)
	if o.Net == NetUser {
		names = append(names, "virtio_net")
	}
	var mods []*kernel.Module
	if s.kernel.ModulesDir != "" {
		ms, err := s.kernel.Modules()
		if err != nil {
			return "", fmt.Errorf("kernel %s: %w", s.kernel.Version, err)
		}
		if mods, err = ms.Closure(names); err != nil {
			return "", err
		}
	}
	t, err := initramfs.Tree(initramfs.Spec{Arch: s.arch, KernelVersion: s.kernel.Version, Modules: mods, Time: s.epoch})
	if err != nil {
		return "", err
	}
	files, err := commitFiles(s)
	if err != nil {
		return "", err
	}
	dir := fstree.NewDir(0o755)
	dir.Mtime = s.epoch
	for _, f := range files {
		f.node.Mtime = s.epoch
		if err := t.Put(path.Join(strings.TrimPrefix(protocol.CommitDir, "/"), f.name), f.node, dir); err != nil {
			return "", fmt.Errorf("initramfs: %s: %w", f.name, err)
		}
	}
	p := filepath.Join(s.work, "initrd")
	err = writeFile(p, func(f *os.File) error {
		w := bufio.NewWriterSize(f, 1<<20)
		if err := initramfs.WriteCpio(w, t); err != nil {
			return err
		}
		return w.Flush()
	})
	return p, err
}

type namedNode struct {
	name string
	node *fstree.Node
}

// commitFiles are the files of protocol.CommitDir for the options.
func commitFiles(s prepareSpec) ([]namedNode, error) {
	o := s.opts
	var out []namedNode
	text := func(name, body string, mode uint32) {
		out = append(out, namedNode{name, fstree.NewFile(mode, int64(len(body)), fstree.Bytes(body))})
	}
	for i, st := range o.Steps {
		name := path.Join(protocol.CommitSteps, fmt.Sprintf("%03d", i+1))
		if st.Script != "" {
			fi, err := os.Stat(st.Script)
			if err != nil {
				return nil, fmt.Errorf("script: %w", err)
			}
			out = append(out, namedNode{name + protocol.StepScript, fstree.NewFile(0o755, fi.Size(), fstree.HostFile(st.Script))})
		} else {
			text(name+protocol.StepRun, st.Run, 0o644)
		}
	}
	var env strings.Builder
	for _, kv := range stepEnv(s.img, o.Env) {
		env.WriteString(kv + "\x00")
	}
	text(protocol.CommitEnv, env.String(), 0o644)
	if s.img.Config != nil && s.img.Config.Config.WorkingDir != "" {
		text(protocol.CommitWorkdir, s.img.Config.Config.WorkingDir, 0o644)
	}
	if len(o.Copies) > 0 {
		var b strings.Builder
		for i, c := range o.Copies {
			fmt.Fprintf(&b, "%d\x00%s\x00", i, c.Guest)
		}
		text(protocol.CommitCopies, b.String(), 0o644)
	}
	if o.Net == NetUser {
		text(protocol.CommitNet, userNetAddr+" "+userNetGateway+"\n", 0o644)
		text(protocol.CommitResolvConf, "nameserver "+userNetDNS+"\n", 0o644)
	}
	return out, nil
}

// stepEnv is the steps' environment: the image config's (or a default
// PATH), HOME=/root, then extra, later values of a name replacing earlier
// ones.
func stepEnv(img *rootfs.Image, extra []string) []string {
	var env []string
	if img.Config != nil {
		env = slices.Clone(img.Config.Config.Env)
	}
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "PATH=") }) {
		env = append(env, defaultPath)
	}
	env = append(env, "HOME=/root")
	env = append(env, extra...)
	var out []string
	seen := map[string]int{}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := seen[k]; ok {
			out[i] = kv
			continue
		}
		seen[k] = len(out)
		out = append(out, kv)
	}
	return out
}

// writeScratch writes the empty scratch disk: upper/, whose metadata the
// merged root shows (so it is the lower root's), and overlayfs' work/.
// No journal: the disk only counts once cleanly unmounted.
func writeScratch(f *os.File, lowerRoot *fstree.Node, size int64) error {
	t := fstree.New()
	up := fstree.NewDir(lowerRoot.Mode)
	up.UID, up.GID, up.Mtime = lowerRoot.UID, lowerRoot.GID, lowerRoot.Mtime
	for k, v := range lowerRoot.Xattrs {
		if !strings.HasPrefix(k, overlayXattrPrefix) {
			if up.Xattrs == nil {
				up.Xattrs = map[string]string{}
			}
			up.Xattrs[k] = v
		}
	}
	work := fstree.NewDir(0o700)
	work.Mtime = lowerRoot.Mtime
	for name, n := range map[string]*fstree.Node{protocol.CommitUpper: up, protocol.CommitWork: work} {
		if err := t.Put(name, n, nil); err != nil {
			return err
		}
	}
	t.Root.Mtime = lowerRoot.Mtime
	return ext4.Write(f, 0, t, ext4.Options{Size: size, Label: scratchLabel, NoJournal: true, Seed: []byte("ocidisk commit scratch"), Time: lowerRoot.Mtime})
}

// writeCopies writes the copy disk: directory N holds copy N's host file
// or directory under its own name, owned by root.
func writeCopies(ctx context.Context, file string, copies []Copy, epoch time.Time, sopts source.Options) error {
	t := fstree.New()
	t.Root.Mtime = epoch
	var opened []*rootfs.Image
	defer func() {
		for _, im := range opened {
			im.Close()
		}
	}()
	for i, c := range copies {
		fi, err := os.Stat(c.Host)
		if err != nil {
			return fieldErr("Copies", "copy %s: %v", c.Host, err)
		}
		name := filepath.Base(filepath.Clean(c.Host))
		if name == "/" || name == "." || name == ".." {
			name = "root"
		}
		at := strconv.Itoa(i) + "/" + name
		if fi.IsDir() {
			im, err := rootfs.Load(ctx, "dir:"+c.Host, sopts)
			if err != nil {
				return fmt.Errorf("copy %s: %w", c.Host, err)
			}
			opened = append(opened, im)
			if err := fstree.Merge(t, at, im.Tree); err != nil {
				return fmt.Errorf("copy %s: %w", c.Host, err)
			}
			d, _ := t.Lookup(at)
			d.Mode, d.Mtime = im.Tree.Root.Mode, im.Tree.Root.Mtime
			continue
		}
		n := fstree.NewFile(fstree.ModeBits(fi.Mode()), fi.Size(), fstree.HostFile(c.Host))
		n.Mtime = fi.ModTime()
		if err := t.Put(at, n, t.Root); err != nil {
			return fmt.Errorf("copy %s: %w", c.Host, err)
		}
	}
	seen := map[*fstree.Node]bool{}
	_ = t.Walk(func(_ string, n *fstree.Node) error {
		if !seen[n] {
			seen[n] = true
			n.UID, n.GID, n.Xattrs = 0, 0, nil
		}
		return nil
	})
	t.ClampTimes(epoch)
	if err := writeFile(file, func(f *os.File) error {
		return erofs.Write(f, 0, t, erofs.Options{Label: copyLabel, Time: epoch})
	}); err != nil {
		return fmt.Errorf("copy disk: %w", err)
	}
	return nil
}
