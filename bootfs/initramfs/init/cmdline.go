package main

import (
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ocidisk/ocidisk/bootfs/initramfs/protocol"
	"github.com/ocidisk/ocidisk/verity/layout"
)

// config is what the kernel command line asks of the init.
type config struct {
	root      string // as given: PARTUUID=..., LABEL=..., UUID=..., /dev/...
	fstypes   []string
	flags     string
	readOnly  bool
	init      string
	timeout   time.Duration
	rootDelay time.Duration
	onFail    string
	quiet     bool

	// A firmware-style layout (bootfs writes these): the slot booted,
	// the data partition to mount on /data, whether to grow it to the
	// end of its disk, and where the overlay over a read-only root keeps
	// its changes ("tmpfs", "PARTUUID=...", or "" for no overlay) and
	// which directories it covers.
	slot        string
	data        string
	grow        bool
	growRoot    bool
	overlay     string
	overlayDirs []string

	// verity, when set, asks for a dm-verity target over the root.
	verity *verityArgs

	// Commit mode (ocidisk commit): the scratch disk, and the disk of
	// files to copy in; see commit.go.
	commit, commitCopy string
}

// verityArgs are the ocidisk.verity parameters.
type verityArgs struct {
	rootHash   []byte
	hash       string // the hash device, spelled as root= is; "" for the root
	hashOffset int64
	salt       []byte // pins the superblock's when saltSet
	saltSet    bool
	dataBlocks uint64 // pins the superblock's when not 0
}

func defaultConfig() *config {
	return &config{timeout: 30 * time.Second, onFail: protocol.OnFailHalt, overlayDirs: []string{"etc", "var"}}
}

// parseCmdline reads the parameters the init uses; others are ignored.
func parseCmdline(s string) (*config, error) {
	c := defaultConfig()
	var timeoutSet, offsetSet bool
	var va verityArgs
	var verityArg string // the first ocidisk.verity* parameter, for errors
	for _, f := range splitCmdline(s) {
		k, v, hasValue := strings.Cut(f, "=")
		if (k == protocol.ArgVerity || strings.HasPrefix(k, protocol.ArgVerity+".")) && verityArg == "" {
			verityArg = f
		}
		switch k {
		case "root":
			c.root = v
		case "rootfstype":
			c.fstypes = nil // an empty value means: detect it
			for _, t := range strings.Split(v, ",") {
				if t != "" {
					c.fstypes = append(c.fstypes, t)
				}
			}
		case "rootflags":
			c.flags = v
		case "ro":
			c.readOnly = true
		case "rw":
			c.readOnly = false
		case "init":
			c.init = v
		case "quiet":
			c.quiet = true
		case "rootwait":
			// rootwait=SECONDS (Linux 6.4) bounds the wait; plain rootwait
			// keeps ours.
			if hasValue && !timeoutSet {
				d, err := seconds(f, v)
				if err != nil {
					return c, err
				}
				c.timeout = d
			}
		case "rootdelay":
			d, err := seconds(f, v)
			if err != nil {
				return c, err
			}
			c.rootDelay = d
		case protocol.ArgRootTimeout:
			d, err := seconds(f, v)
			if err != nil {
				return c, err
			}
			c.timeout, timeoutSet = d, true
		case protocol.ArgSlot:
			c.slot = v
		case protocol.ArgData:
			c.data = v
		case protocol.ArgGrow:
			c.grow = !hasValue || v == "1" || v == "yes"
		case protocol.ArgGrowRoot:
			c.growRoot = !hasValue || v == "1" || v == "yes"
		case protocol.ArgOverlay:
			c.overlay = v
			if v == protocol.OverlayNone {
				c.overlay = ""
			}
		case protocol.ArgOverlayDirs:
			c.overlayDirs = nil
			for _, d := range strings.Split(v, ",") {
				d = strings.Trim(d, "/")
				if d == "" || d == "." || strings.Contains("/"+d+"/", "/../") {
					return c, fmt.Errorf("%s: want directories of the root, such as etc,var", f)
				}
				c.overlayDirs = append(c.overlayDirs, d)
			}
		case protocol.ArgVerity:
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != layout.DigestSize {
				return c, fmt.Errorf("%s: want the root hash, %d hex digits", f, 2*layout.DigestSize)
			}
			va.rootHash = b
		case protocol.ArgVerityHash:
			va.hash = v
		case protocol.ArgVerityHashOffset:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || n%512 != 0 {
				return c, fmt.Errorf("%s: want a byte offset, a multiple of 512", f)
			}
			va.hashOffset, offsetSet = n, true
		case protocol.ArgVeritySalt:
			va.salt, va.saltSet = nil, true
			if v != "-" {
				b, err := hex.DecodeString(v)
				if err != nil || len(b) > layout.MaxSaltSize {
					return c, fmt.Errorf("%s: want hex digits (at most %d bytes), or - for none", f, layout.MaxSaltSize)
				}
				va.salt = b
			}
		case protocol.ArgVerityDataBlocks:
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || n == 0 {
				return c, fmt.Errorf("%s: want a number of blocks", f)
			}
			va.dataBlocks = n
		case protocol.ArgCommit:
			c.commit = v
		case protocol.ArgCommitCopy:
			c.commitCopy = v
		case protocol.ArgOnFail:
			switch v {
			case protocol.OnFailHalt, protocol.OnFailPoweroff, protocol.OnFailReboot, protocol.OnFailPanic:
				c.onFail = v
			default:
				return c, fmt.Errorf("%s: want halt, poweroff, reboot or panic", f)
			}
		}
	}
	if c.root == "" {
		return c, fmt.Errorf("no root= on the kernel command line")
	}
	if c.overlay != "" && c.overlay != "tmpfs" && !strings.HasPrefix(c.overlay, "PARTUUID=") && !strings.HasPrefix(c.overlay, "/dev/") {
		return c, fmt.Errorf("ocidisk.overlay=%s: want tmpfs, none, PARTUUID=... or /dev/NAME", c.overlay)
	}
	if c.grow && c.data == "" {
		return c, fmt.Errorf("ocidisk.grow without ocidisk.data=: growth is for the data partition")
	}
	switch {
	case va.rootHash == nil && verityArg != "":
		return c, fmt.Errorf("%s without %s=ROOTHASH", verityArg, protocol.ArgVerity)
	case va.rootHash == nil:
	case (va.hash == "" || va.hash == c.root) && !offsetSet:
		return c, fmt.Errorf("%s: the hash tree is on the root device: say where with %s=BYTES", protocol.ArgVerity, protocol.ArgVerityHashOffset)
	default:
		if va.hash == c.root {
			va.hash = ""
		}
		c.verity = &va
		c.readOnly = true // dm-verity is read-only
	}
	return c, nil
}

func seconds(param, v string) (time.Duration, error) {
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s: not a number of seconds", param)
	}
	return time.Duration(n * float64(time.Second)), nil
}

// splitCmdline splits at spaces outside double quotes and drops the
// quotes, as the kernel does.
func splitCmdline(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, any := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, any = !quoted, true
		case !quoted && (r == ' ' || r == '\t' || r == '\n'):
			if any {
				out = append(out, cur.String())
				cur.Reset()
				any = false
			}
		default:
			cur.WriteRune(r)
			any = true
		}
	}
	if any {
		out = append(out, cur.String())
	}
	return out
}

// infof prints a progress line unless the command line says quiet.
func (c *config) infof(format string, a ...any) {
	if !c.quiet {
		fmt.Fprintf(os.Stdout, prefix+format+"\n", a...)
	}
}

// warnf prints a line about something that went wrong without stopping
// the boot, quiet or not.
func (c *config) warnf(format string, a ...any) {
	fmt.Fprintf(os.Stdout, prefix+"warning: "+format+"\n", a...)
}
