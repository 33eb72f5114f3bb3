// Package devmapper creates and removes device-mapper devices through the
// kernel's ioctls on /dev/mapper/control, as dmsetup does, without
// libdevmapper or cgo. It is what ocidisk's initramfs init needs to put a
// read-only verity target over the root partition, and no more: it stays
// small, since the init is a small static program.
package devmapper

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ControlPath is the device-mapper control node; devtmpfs makes it when
// the dm-mod module loads.
const ControlPath = "/dev/mapper/control"

// SectorSize is the unit of a target's start and length.
const SectorSize = 512

// Target is one line of a device-mapper table.
type Target struct {
	// Start and Length are in 512-byte sectors.
	Start, Length uint64
	// Type is the target type, such as "verity" or "linear".
	Type string
	// Params are the target's parameters, as dmsetup's table line has
	// them after the type.
	Params string
}

// Info is what the kernel reports about a device.
type Info struct {
	Name string
	// Dev is the device number of its block device, /dev/dm-MINOR.
	Dev         uint64
	Flags       uint32 // unix.DM_*_FLAG
	OpenCount   int32
	TargetCount uint32
	EventNr     uint32
}

// Path is the node devtmpfs gives the device.
func (i Info) Path() string { return "/dev/dm-" + strconv.FormatUint(uint64(unix.Minor(i.Dev)), 10) }

// Active reports whether a table is live, ReadOnly whether the device is
// read-only, Suspended whether I/O to it is held.
func (i Info) Active() bool    { return i.Flags&unix.DM_ACTIVE_PRESENT_FLAG != 0 }
func (i Info) ReadOnly() bool  { return i.Flags&unix.DM_READONLY_FLAG != 0 }
func (i Info) Suspended() bool { return i.Flags&unix.DM_SUSPEND_FLAG != 0 }

// Control is an open /dev/mapper/control.
type Control struct {
	f       *os.File
	version [3]uint32
}

// The interface version asked for: 4.0.0 is what every kernel since 2.6
// speaks; the kernel answers with its own.
var ioctlVersion = [3]uint32{4, 0, 0}

// Open opens the control node, making it from sysfs when /dev has none,
// and checks that the kernel speaks version 4 of the interface.
func Open() (*Control, error) {
	f, err := os.OpenFile(ControlPath, os.O_RDWR|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		if err = makeControl(); err == nil {
			f, err = os.OpenFile(ControlPath, os.O_RDWR|unix.O_CLOEXEC, 0)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("device-mapper: %w (is dm-mod loaded?)", err)
	}
	c := &Control{f: f}
	h, err := c.ioctl(unix.DM_VERSION, request{})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("device-mapper: version: %w", err)
	}
	c.version = h.version
	if c.version[0] != ioctlVersion[0] {
		f.Close()
		return nil, fmt.Errorf("device-mapper: the kernel speaks interface %d.%d.%d, want %d", c.version[0], c.version[1], c.version[2], ioctlVersion[0])
	}
	return c, nil
}

// makeControl makes the control node from the misc device's number, for a
// /dev that devtmpfs does not fill.
func makeControl() error {
	b, err := os.ReadFile("/sys/class/misc/device-mapper/dev")
	if err != nil {
		return fmt.Errorf("%s missing and no device-mapper in /sys/class/misc: %w", ControlPath, err)
	}
	maj, min, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
	ma, err1 := strconv.ParseUint(maj, 10, 32)
	mi, err2 := strconv.ParseUint(min, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return fmt.Errorf("/sys/class/misc/device-mapper/dev: %q is not MAJOR:MINOR", b)
	}
	if err := os.MkdirAll(filepath.Dir(ControlPath), 0o755); err != nil {
		return err
	}
	return unix.Mknod(ControlPath, unix.S_IFCHR|0o600, int(unix.Mkdev(uint32(ma), uint32(mi))))
}

// Close closes the control node.
func (c *Control) Close() error { return c.f.Close() }

// Version is the kernel's device-mapper interface version.
func (c *Control) Version() [3]uint32 { return c.version }

// Create makes device name with the table targets and makes it live: it
// creates the device, loads the table (read-only when readOnly), resumes
// it, and makes sure its node exists. On failure it removes what it
// created.
func (c *Control) Create(name string, readOnly bool, targets ...Target) (Info, error) {
	if err := checkName(name); err != nil {
		return Info{}, err
	}
	if len(targets) == 0 {
		return Info{}, fmt.Errorf("device-mapper: %s: no targets", name)
	}
	if _, err := c.ioctl(unix.DM_DEV_CREATE, request{name: name}); err != nil {
		return Info{}, fmt.Errorf("device-mapper: create %s: %w", name, err)
	}
	info, err := c.load(name, readOnly, targets)
	if err != nil {
		if rerr := c.Remove(name); rerr != nil {
			err = fmt.Errorf("%w (and %v)", err, rerr)
		}
		return Info{}, err
	}
	return info, nil
}

func (c *Control) load(name string, readOnly bool, targets []Target) (Info, error) {
	var flags uint32
	if readOnly {
		flags = unix.DM_READONLY_FLAG
	}
	spec, err := encodeTargets(targets)
	if err != nil {
		return Info{}, fmt.Errorf("device-mapper: %s: %w", name, err)
	}
	if _, err := c.ioctl(unix.DM_TABLE_LOAD, request{name: name, flags: flags, targets: uint32(len(targets)), data: spec}); err != nil {
		// The kernel says why on the console ("device-mapper: table:
		// ..."); the ioctl only says EINVAL.
		return Info{}, fmt.Errorf("device-mapper: load the %s table of %s: %w (the kernel log says why)", targets[0].Type, name, err)
	}
	// Resuming a device that has an inactive table makes it live.
	h, err := c.ioctl(unix.DM_DEV_SUSPEND, request{name: name})
	if err != nil {
		return Info{}, fmt.Errorf("device-mapper: resume %s: %w", name, err)
	}
	info := h.info()
	if err := ensureNode(info); err != nil {
		return Info{}, fmt.Errorf("device-mapper: %s: %w", name, err)
	}
	return info, nil
}

// ensureNode waits a moment for devtmpfs to make the device's node, and
// makes it itself if it does not.
func ensureNode(info Info) error {
	p := info.Path()
	for range 20 {
		if _, err := os.Stat(p); err == nil {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := unix.Mknod(p, unix.S_IFBLK|0o600, int(info.Dev)); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("make %s: %w", p, err)
	}
	return nil
}

// Status reports on device name.
func (c *Control) Status(name string) (Info, error) {
	if err := checkName(name); err != nil {
		return Info{}, err
	}
	h, err := c.ioctl(unix.DM_DEV_STATUS, request{name: name})
	if err != nil {
		return Info{}, fmt.Errorf("device-mapper: status of %s: %w", name, err)
	}
	return h.info(), nil
}

// Remove removes device name.
func (c *Control) Remove(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if _, err := c.ioctl(unix.DM_DEV_REMOVE, request{name: name}); err != nil {
		return fmt.Errorf("device-mapper: remove %s: %w", name, err)
	}
	return nil
}

// request is what an ioctl sends: the header's fields and the data after
// it.
type request struct {
	name    string
	flags   uint32
	targets uint32
	data    []byte
}

// header is what an ioctl returns in struct dm_ioctl.
type header struct {
	version     [3]uint32
	dataSize    uint32
	dataStart   uint32
	targetCount uint32
	openCount   int32
	flags       uint32
	eventNr     uint32
	dev         uint64
	name        string
}

func (h header) info() Info {
	return Info{Name: h.name, Dev: h.dev, Flags: h.flags, OpenCount: h.openCount, TargetCount: h.targetCount, EventNr: h.eventNr}
}

// Offsets in struct dm_ioctl, from golang.org/x/sys/unix's copy of it,
// which is generated from the kernel's headers for each architecture.
var (
	offDataSize  = unsafe.Offsetof(unix.DmIoctl{}.Data_size)
	offDataStart = unsafe.Offsetof(unix.DmIoctl{}.Data_start)
	offTargets   = unsafe.Offsetof(unix.DmIoctl{}.Target_count)
	offOpen      = unsafe.Offsetof(unix.DmIoctl{}.Open_count)
	offFlags     = unsafe.Offsetof(unix.DmIoctl{}.Flags)
	offEvent     = unsafe.Offsetof(unix.DmIoctl{}.Event_nr)
	offDev       = unsafe.Offsetof(unix.DmIoctl{}.Dev)
	offName      = unsafe.Offsetof(unix.DmIoctl{}.Name)
)

// outRoom is room the kernel may fill after the header (it writes the
// device's name and some status there for some commands).
const outRoom = 4096

// encodeRequest lays out the ioctl's buffer: struct dm_ioctl, then the
// data.
func encodeRequest(r request) []byte {
	buf := make([]byte, unix.SizeofDmIoctl+max(len(r.data), outRoom))
	ne := binary.NativeEndian
	for i, v := range ioctlVersion {
		ne.PutUint32(buf[4*i:], v)
	}
	ne.PutUint32(buf[offDataSize:], uint32(len(buf)))
	ne.PutUint32(buf[offDataStart:], unix.SizeofDmIoctl)
	ne.PutUint32(buf[offTargets:], r.targets)
	ne.PutUint32(buf[offFlags:], r.flags)
	copy(buf[offName:offName+unix.DM_NAME_LEN-1], r.name)
	copy(buf[unix.SizeofDmIoctl:], r.data)
	return buf
}

// checkName refuses names the kernel would: empty, too long, with a /.
func checkName(name string) error {
	if name == "" || len(name) >= unix.DM_NAME_LEN || strings.ContainsRune(name, '/') {
		return fmt.Errorf("device-mapper: device name %q: want 1-%d characters without /", name, unix.DM_NAME_LEN-1)
	}
	return nil
}

func decodeHeader(buf []byte) header {
	ne := binary.NativeEndian
	h := header{
		dataSize:    ne.Uint32(buf[offDataSize:]),
		dataStart:   ne.Uint32(buf[offDataStart:]),
		targetCount: ne.Uint32(buf[offTargets:]),
		openCount:   int32(ne.Uint32(buf[offOpen:])),
		flags:       ne.Uint32(buf[offFlags:]),
		eventNr:     ne.Uint32(buf[offEvent:]),
		dev:         ne.Uint64(buf[offDev:]),
	}
	for i := range h.version {
		h.version[i] = ne.Uint32(buf[4*i:])
	}
	name := buf[offName : offName+unix.DM_NAME_LEN]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	h.name = string(name)
	return h
}

// encodeTargets lays out struct dm_target_spec and its parameters for
// each target, each entry 8-byte aligned, next giving the distance to the
// following one.
func encodeTargets(ts []Target) ([]byte, error) {
	const specSize = unix.SizeofDmTargetSpec
	var out []byte
	ne := binary.NativeEndian
	for _, t := range ts {
		if t.Type == "" || len(t.Type) >= unix.DM_MAX_TYPE_NAME {
			return nil, fmt.Errorf("target type %q", t.Type)
		}
		if strings.IndexByte(t.Params, 0) >= 0 {
			return nil, fmt.Errorf("%s target: parameters hold a NUL", t.Type)
		}
		n := (specSize + len(t.Params) + 1 + 7) &^ 7
		e := make([]byte, n)
		ne.PutUint64(e[unsafe.Offsetof(unix.DmTargetSpec{}.Sector_start):], t.Start)
		ne.PutUint64(e[unsafe.Offsetof(unix.DmTargetSpec{}.Length):], t.Length)
		ne.PutUint32(e[unsafe.Offsetof(unix.DmTargetSpec{}.Next):], uint32(n))
		copy(e[unsafe.Offsetof(unix.DmTargetSpec{}.Target_type):], t.Type)
		copy(e[specSize:], t.Params)
		out = append(out, e...)
	}
	return out, nil
}

// ioctl runs one device-mapper command.
func (c *Control) ioctl(cmd uintptr, r request) (header, error) {
	buf := encodeRequest(r)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, c.f.Fd(), cmd, uintptr(unsafe.Pointer(&buf[0])))
	runtime.KeepAlive(buf)
	if errno != 0 {
		return header{}, errno
	}
	return decodeHeader(buf), nil
}
