package qemu

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocidisk/ocidisk/boards"
)

// A Guest is a VM that ocidisk assembles itself instead of booting a
// board's disk image: QEMU's virt machine of an architecture, whose
// kernel and initramfs QEMU loads directly, with raw disks given as
// files. ocidisk commit boots one to run steps in an image's own root.
type Guest struct {
	// Arch is the guest's architecture: arm64 or arm.
	Arch string
	// Kernel, Initrd and Append are the kernel image, its initramfs and
	// its command line.
	Kernel, Initrd, Append string
	// Disks are attached as virtio disks, in order (vda, vdb, ...).
	Disks []Disk
	// Net is the guest's network: NetUser (the guest is 10.0.2.15/24,
	// the gateway 10.0.2.2, DNS 10.0.2.3, the host's own resolver) or
	// none.
	Net Net
	// Memory in MiB (default 1024) and CPUs (default 1: more are slower
	// under emulation; see DESIGN).
	Memory, CPUs int
	// KVM runs the guest under KVM on the host's CPU; see KVMUsable.
	KVM bool
}

// Disk is a raw disk image file.
type Disk struct {
	File string
	// ReadOnly attaches it read-only.
	ReadOnly bool
	// Unsafe drops the guest's flushes (cache=unsafe): for a scratch disk
	// whose content only counts once the guest has unmounted it and QEMU
	// has exited, when everything has reached the file anyway.
	Unsafe bool
}

// virtMachines are the virt machines of each guest architecture: QEMU's
// program and the Debian package that has it, the machine, the CPU model
// under emulation and the serial console the guest sees.
// The 32-bit machine keeps its PCI configuration space below 4 GiB
// (highmem=off), where a kernel without LPAE (Debian's armmp) finds it.
var virtMachines = map[string]struct{ binary, pkg, machine, cpu, console string }{
	"arm64": {"qemu-system-aarch64", "qemu-system-arm", "virt", "cortex-a72", "ttyAMA0"},
	"arm":   {"qemu-system-arm", "qemu-system-arm", "virt,highmem=off", "cortex-a15", "ttyAMA0"},
}

// GuestConsole is the serial console of an architecture's virt machine,
// for the kernel's console=.
func GuestConsole(arch string) (string, error) {
	m, ok := virtMachines[arch]
	if !ok {
		return "", fmt.Errorf("no QEMU virt machine for architecture %q (have arm64, arm)", arch)
	}
	return m.console, nil
}

// KVMUsable reports whether a guest of arch can run under KVM here: an
// arm64 guest on an arm64 host whose /dev/kvm opens for reading and
// writing. (A 32-bit guest would need the host CPU to run AArch32 at EL1,
// which many do not.)
func KVMUsable(arch string) bool {
	m, ok := virtMachines[arch]
	return ok && useKVM(&boards.QEMU{Binary: m.binary}, runtime.GOARCH, kvmDevice)
}

// Command returns QEMU's program (looked up in PATH) and arguments for g.
func (g Guest) Command() (string, []string, error) {
	m, ok := virtMachines[g.Arch]
	if !ok {
		return "", nil, fmt.Errorf("no QEMU virt machine for architecture %q (have arm64, arm)", g.Arch)
	}
	bin, err := exec.LookPath(m.binary)
	if err != nil {
		return "", nil, fmt.Errorf("%s not found (install the Debian package %s)", m.binary, m.pkg)
	}
	mem, cpus := g.Memory, g.CPUs
	if mem <= 0 {
		mem = 1024
	}
	if cpus <= 0 {
		cpus = 1
	}
	a := []string{"-M", m.machine}
	if g.KVM {
		a = append(a, "-accel", "kvm", "-cpu", "host")
	} else {
		a = append(a, "-cpu", m.cpu)
	}
	a = append(a, "-smp", strconv.Itoa(cpus), "-m", strconv.Itoa(mem),
		"-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot",
		"-kernel", g.Kernel, "-append", g.Append)
	if g.Initrd != "" {
		a = append(a, "-initrd", g.Initrd)
	}
	for i, d := range g.Disks {
		opts := fmt.Sprintf("if=none,id=disk%d,format=raw,file=%s", i, optEscape(d.File))
		if d.ReadOnly {
			opts += ",readonly=on"
		}
		if d.Unsafe {
			opts += ",cache=unsafe"
		}
		a = append(a, "-drive", opts, "-device", fmt.Sprintf("virtio-blk-pci,drive=disk%d", i))
	}
	a = append(a, netArgs(m.machine, g.Net, nil)...)
	return bin, a, nil
}

// GuestError is why a guest run failed.
type GuestError struct {
	// Reason says what happened: the console's failure line (a kernel
	// panic, an error of ocidisk's init), a timeout, QEMU's exit.
	Reason string
	// Tail is the end of the console.
	Tail []string
	// Err is what the line function returned, when it stopped the run.
	Err error
}

func (e *GuestError) Error() string {
	if len(e.Tail) == 0 {
		return e.Reason
	}
	return e.Reason + "\n--- last lines of the serial console ---\n" + strings.Join(e.Tail, "\n")
}

func (e *GuestError) Unwrap() error { return e.Err }

// tailLines is how much of the console a GuestError keeps.
const tailLines = 30

// RunGuest boots g and passes each line of its serial console (carriage
// returns dropped) to line as it arrives, until QEMU exits: the guest
// powered off (nil) or rebooted, or QEMU failed. A kernel panic or a
// failure reported by ocidisk's init on the console, an error from line,
// or the end of ctx stop the guest and give a *GuestError.
func RunGuest(ctx context.Context, g Guest, line func(string) error) error {
	bin, args, err := g.Command()
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	// A group of its own: stopping the guest stops whatever QEMU started
	// that holds the console open.
	cmd.SysProcAttr = &unix.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(bin), err)
	}
	pgid := cmd.Process.Pid
	lines := make(chan string)
	go func() {
		defer close(lines)
		r := bufio.NewReaderSize(out, 64<<10)
		for {
			s, err := r.ReadString('\n')
			if s != "" {
				lines <- strings.TrimRight(strings.ReplaceAll(s, "\r", ""), "\n")
			}
			if err != nil {
				return
			}
		}
	}()
	var (
		tail    []string
		failure *GuestError
		grace   <-chan time.Time // after a failure line, time for the rest of its story
	)
	stop := func(e *GuestError) {
		if failure == nil {
			failure = e
			grace = time.After(3 * time.Second)
		}
	}
loop:
	for {
		select {
		case s, ok := <-lines:
			if !ok {
				break loop
			}
			tail = append(tail, s)
			if len(tail) > tailLines {
				tail = tail[len(tail)-tailLines:]
			}
			if failure != nil {
				continue
			}
			for _, re := range failPatterns {
				if f := re.FindString(s); f != "" {
					stop(&GuestError{Reason: f})
				}
			}
			if failure == nil && line != nil {
				if err := line(s); err != nil {
					stop(&GuestError{Reason: err.Error(), Err: err})
				}
			}
		case <-grace:
			break loop
		case <-ctx.Done():
			reason := "cancelled"
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				reason = "timed out"
			}
			if failure == nil {
				failure = &GuestError{Reason: reason, Err: ctx.Err()}
			}
			break loop
		}
	}
	if failure != nil {
		// Stop the guest; killed if it takes its time.
		_ = unix.Kill(-pgid, unix.SIGTERM)
		killer := time.AfterFunc(5*time.Second, func() { _ = unix.Kill(-pgid, unix.SIGKILL) })
		defer killer.Stop()
	}
	for range lines { // let the reader finish so that Wait can close the pipe
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-exited:
	case <-time.After(10 * time.Second):
		_ = unix.Kill(-pgid, unix.SIGKILL)
		werr = <-exited
		if failure == nil {
			failure = &GuestError{Reason: "QEMU closed the console but did not exit"}
		}
	}
	if failure == nil && werr != nil {
		failure = &GuestError{Reason: fmt.Sprintf("%s: %v: %s", filepath.Base(bin), werr, strings.TrimSpace(stderr.String()))}
	}
	if failure != nil {
		failure.Tail = tail
		return failure
	}
	return nil
}
