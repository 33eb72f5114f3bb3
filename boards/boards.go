// Package boards holds board packs: data files that say how a disk image
// for one kind of board is laid out and booted. A pack names the partition
// table and partitions, the raw blobs a boot ROM loads, the kernel and
// initramfs file names, the modules the initramfs must load, the device
// trees and firmware to copy, the boot configs to render and the QEMU
// profile used to boot the image in a test.
//
// Packs for the known boards are embedded in the binary; a user's own pack
// is a YAML file of the same schema. Nothing in Go depends on a board's
// name: adding a board is adding a file.
package boards

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed packs/*.yaml
var packs embed.FS

// Board is one validated board pack.
type Board struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Arch is the CPU architecture of the kernel and init: arm64 or arm.
	Arch string `yaml:"arch"`

	Disk Disk `yaml:"disk"`
	// Blobs are written raw at fixed offsets of the disk, for boards whose
	// boot ROM loads a bootloader from there.
	Blobs []Blob `yaml:"blobs"`

	Kernel    Kernel    `yaml:"kernel"`
	Initramfs Initramfs `yaml:"initramfs"`
	// UKI, when set, puts the kernel, the initramfs and the command line
	// into one Unified Kernel Image on the boot partition, which UEFI
	// firmware starts; kernel.file and initramfs.file may then be left
	// out.
	UKI *UKI `yaml:"uki"`
	// DTBs are the device trees copied to the boot partition.
	DTBs []Copy `yaml:"dtbs"`
	// Firmware lists the files a board model's boot firmware needs on the
	// boot partition, copied from the firmware source.
	Firmware []FirmwareSet `yaml:"firmware"`

	// BootMount is where the root's /etc/fstab mounts the boot partition
	// ("/boot/firmware"), so that the system can update what is on it;
	// empty leaves it out of fstab.
	BootMount string `yaml:"boot-mount"`

	// Console is the serial console device, available to templates.
	Console string `yaml:"console"`
	// Cmdline is a text/template for the kernel command line; see
	// TemplateData for its fields. Appended arguments follow it.
	Cmdline string `yaml:"cmdline"`
	// Configs are the boot configs rendered onto the boot partition.
	Configs []Config `yaml:"configs"`
	// AB says how the boot firmware chooses between two root slots; nil
	// for a board that cannot have them.
	AB *AB `yaml:"ab"`

	QEMU *QEMU `yaml:"qemu"`
}

// Disk is the partition layout.
type Disk struct {
	Table string `yaml:"table"` // mbr or gpt
	// FirstPartitionOffset is where the first partition starts; Alignment
	// is what every partition's start and size are rounded up to.
	FirstPartitionOffset Size        `yaml:"first-partition-offset"`
	Alignment            Size        `yaml:"alignment"`
	Partitions           []Partition `yaml:"partitions"`
	// AB asks for two root slots by default; Data for a data partition,
	// a size or "grow". Layout applies both.
	AB   bool   `yaml:"ab"`
	Data string `yaml:"data"`
}

// Partition is one partition of the pack's disk, in disk order. Layout
// lays them out for a build.
type Partition struct {
	Name     string `yaml:"name"`
	Role     Role   `yaml:"role"` // boot or root
	FS       FS     `yaml:"fs"`   // fat or ext4
	Size     Size   `yaml:"size"` // 0 means auto: sized to the content
	Bootable bool   `yaml:"bootable"`
	// Grow, on the root partition, has the init grow it and its ext4 to
	// the end of the card on first boot, as Raspberry Pi OS does: the
	// default of --root-size grow. It is left out where the root cannot
	// grow (a read-only filesystem, slots, a data partition after it).
	Grow bool `yaml:"grow"`
	// ESP marks the EFI System partition that UEFI firmware boots from: a
	// FAT32 filesystem of the EFI System type (MBR 0xef, GPT
	// C12A7328-F81F-11D2-BA4B-00A0C93EC93B).
	ESP bool `yaml:"esp"`
	// Type overrides the partition type (an MBR byte such as "0c", or a
	// GPT type GUID); empty picks the usual type for FS.
	Type string `yaml:"type"`
}

// Blob is a file written raw at an offset of the disk.
type Blob struct {
	// File is the path of the blob in the firmware source.
	File   string `yaml:"file"`
	Offset Size   `yaml:"offset"`
	// Size, when set, is the space the boot ROM's layout reserves for the
	// blob: the board is refused when that space overlaps the table, a
	// partition or another blob, and the build when the file is larger.
	Size Size `yaml:"size"`
}

// Kernel says how the kernel is installed on the boot partition.
type Kernel struct {
	// File is the kernel's path on the boot partition; with a UKI, ""
	// keeps it in the UKI only.
	File string `yaml:"file"`
	// Uncompressed asks for a raw Image (U-Boot's booti cannot unpack one).
	Uncompressed bool `yaml:"uncompressed"`
}

// Initramfs says how the initramfs is built.
type Initramfs struct {
	// File is the initramfs's path on the boot partition; with a UKI, ""
	// keeps it in the UKI only.
	File        string `yaml:"file"`
	Compression string `yaml:"compression"` // gzip or none
	// Modules are loaded by the init in this order, each after its
	// dependencies.
	Modules []string `yaml:"modules"`
	// OptionalModules are loaded after Modules when the kernel has them,
	// for hardware that only newer kernels support.
	OptionalModules []string `yaml:"optional-modules"`
}

// UKI is a Unified Kernel Image: systemd's EFI stub with the kernel, the
// initramfs, the kernel command line, the root's os-release and the
// kernel version added as PE sections (see package bootfs/uki).
type UKI struct {
	// Stub are globs of the EFI stub in the firmware source (Debian's
	// systemd-boot-efi, or the root's own systemd), tried in order; the
	// first that matches must match one file.
	Stub []string `yaml:"stub"`
	// Path is where the image goes on the boot partition: for firmware
	// that boots the disk as removable media, without boot entries in its
	// NVRAM, EFI/BOOT/BOOTAA64.EFI.
	Path string `yaml:"path"`
}

// Copy copies the kernel source files matching Glob (relative to the
// kernel's device tree directory) into directory To of the boot partition.
type Copy struct {
	Glob string `yaml:"glob"`
	To   string `yaml:"to"`
	// Optional copies that match nothing are not an error.
	Optional bool `yaml:"optional"`
}

// FirmwareSet is the firmware one board model needs.
type FirmwareSet struct {
	Model string `yaml:"model"`
	// Dirs are the directories of the firmware source searched for the
	// files, in order ("" is the source's top); empty means the top only.
	Dirs []string `yaml:"dirs"`
	// Files are globs relative to one of Dirs; each must match at least
	// one file. Extra are globs copied when they match.
	Files []string `yaml:"files"`
	Extra []string `yaml:"extra"`
	To    string   `yaml:"to"`
}

// Config is a boot config rendered from a text/template with TemplateData.
type Config struct {
	Path     string `yaml:"path"`
	Template string `yaml:"template"`
	// UserAppend marks the config that the user's additions go to (a
	// config.txt: --config-txt-append and --dtoverlay), after an [all]
	// line so that no model section swallows them.
	UserAppend bool `yaml:"user-append"`
	// OverlayDir is where --dtoverlay NAME must find NAME.dtbo on the
	// boot partition.
	OverlayDir string `yaml:"overlay-dir"`
}

// TemplateData is what Cmdline and Config templates see.
type TemplateData struct {
	Board        string // the board's name
	Console      string
	RootPartUUID string // the root partition's PARTUUID as Linux spells it
	RootFS       string // the root filesystem type as Linux names it (ext4, vfat)
	Kernel       string // the kernel's path on the boot partition
	Initramfs    string // the initramfs's path on the boot partition
	Cmdline      string // the whole kernel command line (configs only)
	// Slot is the slot whose boot partition is rendered, in a per-slot
	// A/B layout ("a", "b"); "" otherwise. Slots are the root slots the
	// configs boot: a and b, or one unnamed slot without A/B; the first
	// is the default.
	Slot  string
	Slots []SlotData
}

// QEMU is how the board is booted under QEMU.
type QEMU struct {
	// Binary is the QEMU program; Package the Debian package that
	// provides it, named in the error when it is missing.
	Binary  string `yaml:"binary"`
	Package string `yaml:"package"`
	Machine string `yaml:"machine"`
	CPU     string `yaml:"cpu"`
	SMP     int    `yaml:"smp"`
	Memory  int    `yaml:"memory"` // MiB
	Accel   string `yaml:"accel"`
	// Drive is how the image is attached: virtio (a virtio-blk disk) or sd
	// (an SD card, whose size QEMU wants a power of two).
	Drive string `yaml:"drive"`
	// Boot is what starts the kernel: "bios" (the default: Firmware, a
	// U-Boot run as -bios, finds it on the image), "uefi" (UEFI, UEFI
	// firmware run as -bios, boots the image's EFI System partition as
	// removable media), "config.txt" (QEMU
	// loads the kernel, initramfs, device tree and command line that the
	// image's config.txt and cmdline.txt name, as a Raspberry Pi's
	// firmware would) or "extlinux" (the same from the image's
	// extlinux/extlinux.conf, for boards whose U-Boot QEMU cannot run).
	Boot     string     `yaml:"boot"`
	Firmware *UBootBIOS `yaml:"firmware"`
	UEFI     *UEFIBIOS  `yaml:"uefi"`
	// Pi is the Raspberry Pi firmware that a config.txt boot stands in for.
	Pi *PiFirmware `yaml:"pi"`
	// Console is the machine's serial console: in a config.txt or
	// extlinux boot, console= arguments naming a serial port (serial0,
	// ttyS0, ...) are pointed at it, as the Pi firmware points serial0
	// at the board's UART.
	Console string `yaml:"console"`
	// Note says what a boot of this profile proves when it is not the
	// board itself (e.g. a Pi 4 image booted on virt); ocidisk test
	// prints it.
	Note string `yaml:"note"`
	// Args are extra arguments appended to the command line.
	Args []string `yaml:"args"`
}

// Boot modes of a QEMU profile.
const (
	BootBIOS      = "bios"
	BootUEFI      = "uefi"
	BootConfigTxt = "config.txt"
	BootExtlinux  = "extlinux"
)

// PiFirmware describes the Raspberry Pi model whose firmware a config.txt
// boot emulates.
type PiFirmware struct {
	// Filters are the config.txt model filters that apply to the model
	// ([pi3]; a Zero 2 W sees [pi0], [pi0w] and [pi02]).
	Filters []string `yaml:"filters"`
	// Kernel is the file the firmware loads when config.txt names none.
	Kernel string `yaml:"kernel"`
	// DTB is the model's device tree under its upstream Linux name (what
	// upstream_kernel=1 loads) and DTBDownstream under the Raspberry Pi
	// kernel's; with neither, no device tree is passed (QEMU's virt makes
	// its own).
	DTB           string `yaml:"dtb"`
	DTBDownstream string `yaml:"dtb-downstream"`
}

// UBootBIOS is a U-Boot binary run as QEMU's -bios, with its environment
// in pflash bank 1.
type UBootBIOS struct {
	// BIOS is the path of u-boot.bin on the host; Package is the Debian
	// package that installs it, named in the error when it is missing.
	BIOS    string `yaml:"bios"`
	Package string `yaml:"package"`
	// Env overrides variables of U-Boot's built-in default environment.
	Env map[string]string `yaml:"env"`
	// EnvSize is the size of U-Boot's environment (CONFIG_ENV_SIZE) and
	// FlashSize that of the pflash bank holding it.
	EnvSize   Size `yaml:"env-size"`
	FlashSize Size `yaml:"flash-size"`
}

// UEFIBIOS is UEFI firmware run as QEMU's -bios (EDK2's QEMU_EFI.fd). It
// keeps its variables in memory, so every boot finds no boot entries and
// starts the removable-media path, \EFI\BOOT\BOOTAA64.EFI.
type UEFIBIOS struct {
	// BIOS is the firmware's path on the host; Package the Debian package
	// that installs it, named in the error when it is missing.
	BIOS    string `yaml:"bios"`
	Package string `yaml:"package"`
}

// Names lists the embedded board packs, sorted.
func Names() []string {
	ents, _ := fs.ReadDir(packs, "packs")
	var names []string
	for _, e := range ents {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	slices.Sort(names)
	return names
}

// Catalog returns every embedded board, sorted by name.
func Catalog() ([]*Board, error) {
	var bs []*Board
	for _, n := range Names() {
		b, err := Load(n)
		if err != nil {
			return nil, err
		}
		bs = append(bs, b)
	}
	return bs, nil
}

// ErrUnknown is returned (wrapped) by Load for a name that is neither an
// embedded board nor a file.
var ErrUnknown = errors.New("unknown board")

// Load returns the embedded board called ref, or, when ref looks like a
// path (it contains a slash or ends in .yaml or .yml), the board in that
// file.
func Load(ref string) (*Board, error) {
	data, err := Pack(ref)
	if err != nil {
		return nil, err
	}
	return Parse(ref, data)
}

// Pack returns the board file ref names as written: an embedded pack's
// YAML, comments and all, ready to copy and edit, or a user's file.
func Pack(ref string) ([]byte, error) {
	if strings.Contains(ref, "/") || strings.HasSuffix(ref, ".yaml") || strings.HasSuffix(ref, ".yml") {
		data, err := os.ReadFile(ref)
		if err != nil {
			return nil, fmt.Errorf("board %s: %w", ref, err)
		}
		return data, nil
	}
	data, err := packs.ReadFile(path.Join("packs", ref+".yaml"))
	if err != nil {
		return nil, fmt.Errorf("board %q: %w (known boards: %s; or give a path to a board file)",
			ref, ErrUnknown, strings.Join(Names(), ", "))
	}
	return data, nil
}

var yamlFieldRE = regexp.MustCompile(`field (\S+) not found in type \S+`)

// Parse decodes and validates a board pack; src names it in errors. Unknown
// keys are errors with their line numbers, and validation errors name the
// field and its line.
func Parse(src string, data []byte) (*Board, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var b Board
	if err := dec.Decode(&b); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("board %s: empty file", src)
		}
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
		msg = yamlFieldRE.ReplaceAllString(msg, "unknown key $1")
		return nil, fmt.Errorf("board %s: %s", src, strings.ReplaceAll(msg, "\n  ", "; "))
	}
	var doc yaml.Node
	_ = yaml.Unmarshal(data, &doc)
	if err := b.validate(); err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			if line := lineOf(&doc, fe.field); line > 0 {
				return nil, fmt.Errorf("board %s: line %d: %w", src, line, err)
			}
		}
		return nil, fmt.Errorf("board %s: %w", src, err)
	}
	return &b, nil
}
