package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocidisk/ocidisk/bootfs/initramfs/protocol"
)

// Commit mode (ocidisk.commit=DEV): instead of handing the root to its
// init, the init stacks an overlayfs on it, the root (mounted read-only
// on /root) as the lower layer and upper/ on the scratch disk DEV (an
// empty ext4 the host wrote) as the upper one, and runs the steps the
// initramfs holds (protocol.CommitDir) in the merged root, as root, with
// /proc, /sys and /dev mounted there and, when asked, the network up and
// a resolv.conf bind-mounted over /etc/resolv.conf. Their output goes to
// the console. When every step has passed it stops what they left
// running, unmounts everything (the upper directory then holds exactly
// what the steps changed, whiteouts included), prints "done" and powers
// off; the host reads the scratch disk. A step that fails is an error,
// which fail reports before powering off as ocidisk.onfail= says.

// Where commit mode mounts things, in the initramfs.
const (
	scratchMnt = runDir + "/scratch"
	mergedDir  = runDir + "/merged"
	copyMnt    = runDir + "/copy"
)

// commitSpec is what protocol.CommitDir asks for.
type commitSpec struct {
	steps   []commitStep
	env     []string
	workdir string
	copies  [][2]string // name on the copy disk, guest path
	net     *netConfig
	resolv  string // a resolv.conf to bind-mount; "" for none
}

// commitStep is one step: a shell command, or a script.
type commitStep struct {
	file   string
	script bool
}

// readCommitSpec reads the commit's files in dir.
func readCommitSpec(dir string) (*commitSpec, error) {
	s := &commitSpec{workdir: "/"}
	stepDir := filepath.Join(dir, protocol.CommitSteps)
	ents, err := os.ReadDir(stepDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, e := range ents { // sorted by name
		switch ext := path.Ext(e.Name()); ext {
		case protocol.StepRun, protocol.StepScript:
			s.steps = append(s.steps, commitStep{file: filepath.Join(stepDir, e.Name()), script: ext == protocol.StepScript})
		default:
			return nil, fmt.Errorf("step %s: want NNN%s or NNN%s", e.Name(), protocol.StepRun, protocol.StepScript)
		}
	}
	read := func(name string) (string, bool, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			return "", false, nil
		}
		return string(b), err == nil, err
	}
	if v, ok, err := read(protocol.CommitEnv); err != nil {
		return nil, err
	} else if ok {
		s.env = nulList(v)
	}
	if v, ok, err := read(protocol.CommitWorkdir); err != nil {
		return nil, err
	} else if ok && strings.TrimSpace(v) != "" {
		s.workdir = strings.TrimSpace(v)
	}
	if v, ok, err := read(protocol.CommitCopies); err != nil {
		return nil, err
	} else if ok {
		l := nulList(v)
		if len(l)%2 != 0 {
			return nil, fmt.Errorf("%s: want pairs of NAME and PATH", protocol.CommitCopies)
		}
		for i := 0; i < len(l); i += 2 {
			s.copies = append(s.copies, [2]string{l[i], l[i+1]})
		}
	}
	if v, ok, err := read(protocol.CommitNet); err != nil {
		return nil, err
	} else if ok {
		nc, err := parseNetConfig(v)
		if err != nil {
			return nil, err
		}
		s.net = &nc
	}
	if _, ok, err := read(protocol.CommitResolvConf); err != nil {
		return nil, err
	} else if ok {
		s.resolv = filepath.Join(dir, protocol.CommitResolvConf)
	}
	return s, nil
}

// nulList splits NUL-terminated strings.
func nulList(s string) []string {
	l := strings.Split(s, "\x00")
	if l[len(l)-1] == "" {
		l = l[:len(l)-1]
	}
	return l
}

// say prints one line of the commit protocol.
func say(words ...any) {
	fmt.Fprintln(os.Stdout, protocol.CommitPrefix+strings.TrimSuffix(fmt.Sprintln(words...), "\n"))
}

// runCommit is commit mode; lower is where the root is mounted. It
// returns only on failure.
func runCommit(cfg *config, lower string) error {
	spec, err := readCommitSpec(protocol.CommitDir)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	dev, err := waitDev(cfg, "scratch disk", cfg.commit)
	if err != nil {
		return err
	}
	for _, d := range []string{scratchMnt, mergedDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// The steps' writes reach the host when the disk is unmounted: no
	// lazy inode table zeroing behind their backs.
	if err := unix.Mount(dev, scratchMnt, "ext4", unix.MS_NOATIME, "noinit_itable"); err != nil {
		return fmt.Errorf("mount the scratch disk %s (%s): %w", dev, cfg.commit, err)
	}
	upper := filepath.Join(scratchMnt, protocol.CommitUpper)
	work := filepath.Join(scratchMnt, protocol.CommitWork)
	if err := mountMerged(lower, upper, work); err != nil {
		return err
	}
	var m mountStack
	if err := m.kernelFS(mergedDir); err != nil {
		return err
	}
	if spec.net != nil {
		name, err := configureNet(*spec.net, 10*time.Second)
		if err != nil {
			return fmt.Errorf("network: %w", err)
		}
		cfg.infof("network: %s is %s, default route through %s", name, spec.net.addr, spec.net.gateway)
	}
	root, err := openRoot(mergedDir)
	if err != nil {
		return err
	}
	defer root.close()
	var created []string // what only the commit's plumbing made, removed at the end
	if spec.resolv != "" {
		if err := m.bindResolvConf(root, spec.resolv, &created); err != nil {
			return fmt.Errorf("resolv.conf: %w", err)
		}
	}
	if len(spec.copies) > 0 {
		if err := copyAll(cfg, root, spec.copies); err != nil {
			return err
		}
	}
	if host, _ := os.ReadFile("/proc/sys/kernel/hostname"); strings.TrimSpace(string(host)) == "(none)" {
		_ = unix.Sethostname([]byte("localhost"))
	}
	say(protocol.CommitReady)
	for i, s := range spec.steps {
		say(protocol.CommitStep, i+1)
		status, err := runStep(s, spec.env, spec.workdir)
		stopAll()
		if err != nil {
			return fmt.Errorf("commit: step %d: %w", i+1, err)
		}
		say(protocol.CommitStatus, i+1, status)
		if status != 0 {
			return fmt.Errorf("commit: step %d exited with status %d", i+1, status)
		}
	}
	// Undo the plumbing: what was mounted, and what was made only to
	// mount it on, so that none of it is in the upper directory.
	if err := m.unmountAll(); err != nil {
		return err
	}
	slices.Reverse(created)
	for _, p := range created {
		if dirfd, name, err := root.parentOf(p); err == nil {
			if err := unix.Unlinkat(dirfd, name, 0); err == unix.EISDIR || err == unix.EPERM {
				_ = unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR) // left when the steps put files in it
			}
			unix.Close(dirfd)
		}
	}
	root.close()
	for _, d := range []string{mergedDir, scratchMnt} {
		if err := unmount(d); err != nil {
			return err
		}
	}
	unix.Sync()
	say(protocol.CommitDone)
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	for {
		time.Sleep(time.Hour)
	}
}

// mountMerged mounts the overlay on mergedDir. Redirects, metacopy and
// the index stay off, whatever the kernel's defaults: with them a rename
// or chown would leave xattrs in the upper directory that no OCI layer
// can say; without them a directory rename copies it, as docker's
// overlay2 does. volatile drops the steps' syncs: the scratch disk only
// counts once it is cleanly unmounted.
func mountMerged(lower, upper, work string) error {
	base := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	var errs []string
	for _, extra := range []string{",redirect_dir=off,index=off,metacopy=off,volatile", ",redirect_dir=off,index=off,metacopy=off", ""} {
		err := unix.Mount("overlay", mergedDir, "overlay", 0, base+extra)
		if err == nil {
			return nil
		}
		if err == syscall.ENODEV {
			return errors.New("commit: the kernel has no overlayfs (the initramfs should load the overlay module)")
		}
		errs = append(errs, fmt.Sprintf("%s: %v", base+extra, err))
	}
	return fmt.Errorf("commit: mount the overlay: %s", strings.Join(errs, "; "))
}

// mountStack records mounts to undo in reverse.
type mountStack []string

func (m *mountStack) mount(src, dir, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(src, dir, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s on %s: %w", fstype, dir, err)
	}
	*m = append(*m, dir)
	return nil
}

// kernelFS mounts proc, sysfs and devtmpfs (with devpts and a tmpfs on
// /dev/shm, and the /dev/fd links) where the root has the directories.
// Their contents are not the overlay's: nothing there is committed.
func (m *mountStack) kernelFS(root string) error {
	isDir := func(p string) bool {
		fi, err := os.Lstat(p)
		return err == nil && fi.IsDir()
	}
	nosuid := uintptr(unix.MS_NOSUID)
	for _, k := range []struct{ dir, fstype string }{{"proc", "proc"}, {"sys", "sysfs"}} {
		if d := filepath.Join(root, k.dir); isDir(d) {
			if err := m.mount(k.fstype, d, k.fstype, nosuid|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
				return err
			}
		}
	}
	dev := filepath.Join(root, "dev")
	if !isDir(dev) {
		return nil
	}
	if err := m.mount("devtmpfs", dev, "devtmpfs", nosuid, "mode=0755"); err != nil {
		return err
	}
	for _, l := range [][2]string{{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}} {
		_ = os.Symlink(l[0], filepath.Join(dev, l[1])) // may be there from an earlier mount of the same devtmpfs
	}
	for _, k := range []struct{ dir, fstype, data string }{{"pts", "devpts", "newinstance,ptmxmode=0666,mode=0620"}, {"shm", "tmpfs", "mode=1777"}} {
		d := filepath.Join(dev, k.dir)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := m.mount(k.fstype, d, k.fstype, nosuid|unix.MS_NOEXEC, k.data); err != nil {
			return err
		}
	}
	return nil
}

// bindResolvConf bind-mounts file over the root's /etc/resolv.conf, or
// over what it links to. What has to be made for that (the file, and its
// directories when the link dangles, as systemd-resolved's does before it
// runs) is recorded in created.
func (m *mountStack) bindResolvConf(root *rootDir, file string, created *[]string) error {
	target := "/etc/resolv.conf"
	for range 8 {
		dirfd, name, err := root.parentOf(target)
		if err != nil {
			if !errors.Is(err, unix.ENOENT) {
				return err
			}
			if _, err := root.mkdirAll(path.Dir(target), created); err != nil {
				return err
			}
			continue
		}
		var st unix.Stat_t
		err = unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
		switch {
		case err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK:
			buf := make([]byte, 4096)
			n, rerr := unix.Readlinkat(dirfd, name, buf)
			unix.Close(dirfd)
			if rerr != nil {
				return rerr
			}
			link := string(buf[:n])
			if !path.IsAbs(link) {
				link = path.Join(path.Dir(target), link)
			}
			target = path.Clean(link)
			continue
		case err == nil && st.Mode&unix.S_IFMT != unix.S_IFREG:
			unix.Close(dirfd)
			return fmt.Errorf("%s is not a file", target)
		case errors.Is(err, unix.ENOENT):
			fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
			if err != nil {
				unix.Close(dirfd)
				return fmt.Errorf("create %s: %w", target, err)
			}
			unix.Close(fd)
			*created = append(*created, target)
		case err != nil:
			unix.Close(dirfd)
			return err
		}
		unix.Close(dirfd)
		fd, err := root.open(target, unix.O_PATH|unix.O_NOFOLLOW)
		if err != nil {
			return err
		}
		// The mount point is named through the descriptor, so that it is
		// the file inside the root whatever links led there.
		err = m.mount(file, "/proc/self/fd/"+strconv.Itoa(fd), "", unix.MS_BIND, "")
		unix.Close(fd)
		if err != nil {
			return err
		}
		// Unmounting goes by the path the kernel gives the mount, which
		// has no links in it.
		if fd, err = root.open(target, unix.O_PATH|unix.O_NOFOLLOW); err != nil {
			return err
		}
		real, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		unix.Close(fd)
		if err != nil {
			return err
		}
		(*m)[len(*m)-1] = real
		return nil
	}
	return errors.New("/etc/resolv.conf: too many levels of symlinks")
}

// unmountAll undoes the recorded mounts, last first.
func (m *mountStack) unmountAll() error {
	for i := len(*m) - 1; i >= 0; i-- {
		if err := unmount((*m)[i]); err != nil {
			return err
		}
	}
	*m = nil
	return nil
}

// unmount unmounts dir, retrying while something still holds it (a
// process on its way out).
func unmount(dir string) error {
	var err error
	for range 100 {
		if err = unix.Unmount(dir, 0); err != unix.EBUSY {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("commit: unmount %s: %w", dir, err)
	}
	return nil
}

// copyAll mounts the copy disk and copies its entries in.
func copyAll(cfg *config, root *rootDir, copies [][2]string) error {
	if cfg.commitCopy == "" {
		return fmt.Errorf("commit: %d copies but no %s=", len(copies), protocol.ArgCommitCopy)
	}
	dev, err := waitDev(cfg, "copy disk", cfg.commitCopy)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(copyMnt, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(dev, copyMnt, "erofs", unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("mount the copy disk %s (%s): %w", dev, cfg.commitCopy, err)
	}
	for _, c := range copies {
		if err := copyIn(root, filepath.Join(copyMnt, c[0]), c[1]); err != nil {
			return fmt.Errorf("commit: copy to %s: %w", c[1], err)
		}
	}
	return unmount(copyMnt)
}

// runStep runs one step in the merged root and returns its exit status
// (128+N for a signal N). An error means it could not start.
func runStep(s commitStep, env []string, workdir string) (int, error) {
	cmd := &exec.Cmd{Env: env, Dir: workdir, Stdout: os.Stdout, Stderr: os.Stderr}
	if s.script {
		// The script is handed over as descriptor 3, so that it never
		// appears in the root; the kernel runs a #! script from
		// /proc/self/fd/3 as from any path.
		f, err := os.Open(s.file)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		head := make([]byte, 2)
		n, _ := f.ReadAt(head, 0)
		cmd.ExtraFiles = []*os.File{f}
		if bytes.Equal(head[:n], []byte("#!")) {
			cmd.Path, cmd.Args = "/proc/self/fd/3", []string{"/proc/self/fd/3"}
		} else {
			cmd.Path, cmd.Args = "/bin/sh", []string{"/bin/sh", "/proc/self/fd/3"}
		}
	} else {
		b, err := os.ReadFile(s.file)
		if err != nil {
			return 0, err
		}
		cmd.Path, cmd.Args = "/bin/sh", []string{"/bin/sh", "-c", string(b)}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: mergedDir, Setsid: true}
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("%s in the root: %w", cmd.Path, err)
	}
	return 0, nil
}

// stopAll kills whatever a step left running (daemons its scripts
// started), as a container runtime does at the end of a step, and reaps
// them: the init is their parent now.
func stopAll() {
	_ = unix.Kill(-1, unix.SIGKILL) // every process but the init
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		pid, err := unix.Wait4(-1, nil, unix.WNOHANG, nil)
		if err == unix.ECHILD {
			return
		}
		if pid <= 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
}
