// Package protocol is what ocidisk's build and its initramfs init agree on:
// the kernel command line parameters the init reads, the programs it hands
// the root to and the paths it keeps its state in. The build writes these
// (bootfs renders them into the boot configs) and the init reads them
// (bootfs/initramfs/init); both import this package, so that a name can
// only change on both sides at once.
//
// It is imported by the init, a small static program: it holds constants
// only.
package protocol

// Kernel command line parameters of ocidisk's init, beside the kernel's own
// root=, rootfstype=, rootflags=, ro, rw, rootwait, rootdelay= and init=.
const (
	// ArgRootTimeout is how long, in seconds, the init waits for the root
	// device (default 30).
	ArgRootTimeout = "ocidisk.roottimeout"
	// ArgOnFail is what the init does after a failure: halt (the default),
	// poweroff, reboot or panic.
	ArgOnFail = "ocidisk.onfail"
	// ArgSlot names the A/B slot booted ("a", "b"), for the root's updater.
	ArgSlot = "ocidisk.slot"
	// ArgData names the data partition (spelled as root= is), which the
	// init mounts on the root's /data.
	ArgData = "ocidisk.data"
	// ArgGrow has the init grow the data partition and its filesystem to
	// the end of the disk, once.
	ArgGrow = "ocidisk.grow"
	// ArgGrowRoot has the init grow the root partition, which must be the
	// last on its disk, and its ext4 to the end of the disk, once.
	ArgGrowRoot = "ocidisk.growroot"
	// ArgOverlay is where the overlay over a read-only root keeps its
	// changes: "tmpfs" (lost at power-off), "none", or a partition spelled
	// as root= is (PARTUUID=..., /dev/NAME: kept in overlay/ there).
	ArgOverlay = "ocidisk.overlay"
	// ArgOverlayDirs lists the root's directories the overlay covers,
	// comma-separated (default etc,var).
	ArgOverlayDirs = "ocidisk.overlaydirs"

	// ArgVerity is the root hash (64 hex digits, sha256) of a dm-verity
	// hash tree over the root device, in the format `veritysetup format`
	// writes by default (package verity). The init puts a read-only
	// verity target over the root device and mounts that instead, read-
	// only whatever rw says. A block that does not match the tree gives
	// the kernel's "device-mapper: verity: ...: data block N is
	// corrupted" on the console and an I/O error to whoever read it (no
	// restart or panic: ArgOnFail decides what follows a failed boot).
	ArgVerity = "ocidisk.verity"
	// ArgVerityHash names the device holding the tree, spelled as root=
	// is; the default is the root device itself.
	ArgVerityHash = "ocidisk.verity.hash"
	// ArgVerityHashOffset is the byte offset on the hash device of the
	// verity superblock, which the tree follows (veritysetup's
	// --hash-offset): required when the tree is on the root device,
	// after the filesystem; default 0 on a device of its own.
	ArgVerityHashOffset = "ocidisk.verity.hash-offset"
	// ArgVeritySalt (hex, "-" for none) and ArgVerityDataBlocks (the
	// number of 4 KiB blocks the tree covers) pin what the superblock
	// says: the init refuses a superblock that disagrees, rather than
	// trusting the disk for them. Without them the superblock's are used.
	ArgVeritySalt       = "ocidisk.verity.salt"
	ArgVerityDataBlocks = "ocidisk.verity.data-blocks"
)

// Values of ArgOverlay that are not a device.
const (
	OverlayTmpfs = "tmpfs"
	OverlayNone  = "none"
)

// Values of ArgOnFail.
const (
	OnFailHalt     = "halt"
	OnFailPoweroff = "poweroff"
	OnFailReboot   = "reboot"
	OnFailPanic    = "panic"
)

// RootInits are the programs the init hands the root to when the command
// line names none with init=: the first that exists.
var RootInits = []string{"/sbin/init", "/etc/init", "/bin/init", "/bin/sh"}

// FailPrefix starts the one line the init prints when it fails; ocidisk
// test watches the console for it.
const FailPrefix = "ocidisk-init: error: "

// GrowMarker, relative to the mount point of a partition the init grew,
// records that it did: growth happens once, on first boot, and never
// again behind the user's back.
const GrowMarker = ".ocidisk/grown"

// RootGrowMarker, relative to the root, is GrowMarker for a grown root:
// on the grown filesystem too, out of the way of what the root's own
// files are.
const RootGrowMarker = "var/lib/ocidisk/grown"

// Commit mode (ocidisk commit). ArgCommit names the scratch disk, an ext4
// that holds the empty directories CommitUpper and CommitWork: the init
// mounts the root (root=, read-only) as the lower layer of an overlayfs
// whose upper directory is there, runs the steps of CommitDir in the
// merged root as root, unmounts everything and powers off. The host then
// reads the upper directory from the disk and makes it a layer.
const (
	// ArgCommit is the scratch disk, spelled as root= is.
	ArgCommit = "ocidisk.commit"
	// ArgCommitCopy is the disk (spelled as root= is) holding the files
	// to copy into the merged root before the first step.
	ArgCommitCopy = "ocidisk.commitcopy"
)

// The scratch disk's directories.
const (
	CommitUpper = "upper"
	CommitWork  = "work"
)

// CommitDir, in the initramfs, holds what a commit does. Every file there
// is optional.
const CommitDir = "/etc/ocidisk/commit"

// Files in CommitDir.
const (
	// CommitSteps is a directory of steps run in name order: NNN.run
	// holds a shell command (run by /bin/sh -c), NNN.script a script the
	// guest runs as is when it starts with #!, else with /bin/sh.
	CommitSteps = "steps"
	// CommitEnv holds the steps' environment, NUL-terminated K=V strings.
	CommitEnv = "env"
	// CommitWorkdir holds the directory the steps start in (default /).
	CommitWorkdir = "workdir"
	// CommitCopies lists the copies, NUL-terminated pairs: the name of a
	// directory at the root of the copy disk, whose one entry is copied,
	// and the absolute path it is copied to in the merged root.
	CommitCopies = "copies"
	// CommitNet configures the first network interface: "ADDR/PREFIX
	// GATEWAY" on one line, IPv4.
	CommitNet = "net"
	// CommitResolvConf is bind-mounted over the merged root's
	// /etc/resolv.conf while the steps run, and so not committed.
	CommitResolvConf = "resolv.conf"
)

// Step kinds, the extension of a step's file name.
const (
	StepRun    = ".run"
	StepScript = ".script"
)

// Lines the init prints on the console in commit mode, which the host
// follows: CommitPrefix, then "ready" (the merged root is set up), "step
// N" (step N, from 1, starts), "status N CODE" (step N ended with exit
// status CODE; a signal counts as 128+SIGNAL) and "done" (every step
// passed and the scratch disk is unmounted and synced).
const (
	CommitPrefix = "ocidisk-commit: "
	CommitReady  = "ready"
	CommitStep   = "step"
	CommitStatus = "status"
	CommitDone   = "done"
)
