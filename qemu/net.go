package qemu

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ocidisk/ocidisk/boards"
)

// Net is the guest's network.
type Net string

const (
	// NetNone gives the guest no network device (the default).
	NetNone Net = "none"
	// NetUser gives the guest a network card on QEMU's user-mode network:
	// the guest is 10.0.2.15/24 by DHCP, the host is reached at 10.0.2.2
	// (its loopback), and Publish forwards host ports to the guest. No
	// privileges are needed.
	NetUser Net = "user"
)

// Nets lists the networks a Config can ask for.
var Nets = []Net{NetNone, NetUser}

// nics are the network cards of QEMU's machines that ocidisk attaches to a
// user-mode network (netdev n0): a fact about QEMU's machines, not about
// boards. virt takes a virtio card (the guest sees enp0s1, or eth0 without
// udev); romfile= because the card's boot ROM (efi-virtio.rom) is only for
// network boots and Debian's QEMU lacks it. The Raspberry Pi machines have
// no Ethernet of their own in QEMU (a real Pi's is a USB chip): they get a
// USB network card on their USB controller, which Linux sees as usb0 once
// dwc2 and cdc_ether are loaded.
var nics = map[string]string{
	"virt":     "virtio-net-pci,netdev=n0,romfile=",
	"raspi0":   "usb-net,netdev=n0",
	"raspi1ap": "usb-net,netdev=n0",
	"raspi2b":  "usb-net,netdev=n0",
	"raspi3ap": "usb-net,netdev=n0",
	"raspi3b":  "usb-net,netdev=n0",
}

// nic returns the network device for a QEMU machine ("virt",
// "virt,gic-version=3"), or "" when ocidisk knows none.
func nic(machine string) string {
	m, _, _ := strings.Cut(machine, ",")
	if strings.HasPrefix(m, "virt-") {
		m = "virt" // a versioned virt, virt-7.2
	}
	return nics[m]
}

// Publish forwards a TCP port of the host to a port of the guest over the
// user-mode network.
type Publish struct {
	// HostIP is the host address to listen on: 127.0.0.1 when invalid
	// (unset); 0.0.0.0 listens on every interface.
	HostIP    netip.Addr
	HostPort  uint16
	GuestPort uint16
}

// ParsePublish reads [HOSTIP:]HOSTPORT:GUESTPORT, the spelling of
// `docker run -p`: "8080:80", "0.0.0.0:2222:22". The host address is an
// IPv4 address (QEMU 7.2 forwards no IPv6) and defaults to 127.0.0.1, so
// that a published port is not reachable from the network unless asked.
func ParsePublish(s string) (Publish, error) {
	parts := strings.Split(s, ":")
	var p Publish
	switch len(parts) {
	case 2:
	case 3:
		ip, err := netip.ParseAddr(parts[0])
		if err != nil || !ip.Is4() {
			return p, fmt.Errorf("publish %q: host address %q is not an IPv4 address", s, parts[0])
		}
		p.HostIP = ip
		parts = parts[1:]
	default:
		return p, fmt.Errorf("publish %q: want [HOSTIP:]HOSTPORT:GUESTPORT, such as 8080:80 or 127.0.0.1:2222:22", s)
	}
	for i, dst := range []*uint16{&p.HostPort, &p.GuestPort} {
		n, err := strconv.ParseUint(parts[i], 10, 16)
		if err != nil || n == 0 {
			return p, fmt.Errorf("publish %q: port %q is not a number from 1 to 65535", s, parts[i])
		}
		*dst = uint16(n)
	}
	return p, nil
}

// Host returns the host address, 127.0.0.1 when unset.
func (p Publish) Host() netip.Addr {
	if p.HostIP.IsValid() {
		return p.HostIP
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

// String spells p as ParsePublish reads it, with the host address.
func (p Publish) String() string {
	return fmt.Sprintf("%s:%d:%d", p.Host(), p.HostPort, p.GuestPort)
}

// hostfwd is p as a -netdev user option value: tcp:HOSTIP:HOSTPORT-:GUESTPORT.
func (p Publish) hostfwd() string {
	return fmt.Sprintf("tcp:%s:%d-:%d", p.Host(), p.HostPort, p.GuestPort)
}

// ConfigError is a problem with one field of a Config or of TestOptions,
// named as the field is ("Publish"), so that a command line can name the
// option that set it.
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// IsConfigError reports whether err is about a field of a Config or
// TestOptions, and which.
func IsConfigError(err error) (field string, ok bool) {
	var ce *ConfigError
	if errors.As(err, &ce) {
		return ce.Field, true
	}
	return "", false
}

func fieldErr(field, format string, a ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, a...)}
}

// Validate checks what the Config asks of QEMU before anything starts.
// Errors are *ConfigError.
func (cfg Config) Validate() error {
	switch cfg.Net {
	case "", NetNone:
		if len(cfg.Publish) > 0 {
			return fieldErr("Publish", "publishing %s needs the user network, not none", cfg.Publish[0])
		}
	case NetUser:
		if cfg.Profile != nil && nic(cfg.Profile.Machine) == "" {
			return fieldErr("Net", "QEMU machine %s has no network card ocidisk knows how to attach: use none", cfg.Profile.Machine)
		}
	default:
		return fieldErr("Net", "network %q: want none or user", cfg.Net)
	}
	seen := map[string]bool{}
	for _, p := range cfg.Publish {
		if p.HostPort == 0 || p.GuestPort == 0 {
			return fieldErr("Publish", "publish %s: ports must be from 1 to 65535", p)
		}
		if p.HostIP.IsValid() && !p.HostIP.Is4() {
			return fieldErr("Publish", "publish %s: the host address must be IPv4", p)
		}
		k := fmt.Sprintf("%s:%d", p.Host(), p.HostPort)
		if seen[k] {
			return fieldErr("Publish", "host port %s is published twice", k)
		}
		seen[k] = true
	}
	if cfg.Memory < 0 {
		return fieldErr("Memory", "memory %d MiB: must be positive", cfg.Memory)
	}
	if cfg.CPUs < 0 {
		return fieldErr("CPUs", "%d CPUs: must be positive", cfg.CPUs)
	}
	return nil
}

// netArgs returns the network part of QEMU's command line.
func netArgs(machine string, net Net, publish []Publish) []string {
	if net != NetUser {
		return []string{"-nic", "none"}
	}
	dev := "user,id=n0"
	for _, p := range publish {
		dev += ",hostfwd=" + p.hostfwd()
	}
	return []string{"-netdev", dev, "-device", nic(machine)}
}

// kvmDevice is the host's KVM device.
const kvmDevice = "/dev/kvm"

// useKVM reports whether a boot of p can run under KVM on a host of
// architecture hostArch (runtime.GOARCH) whose KVM device is dev: an
// aarch64 guest on an arm64 host, the device opening read-write (what
// QEMU needs), and a profile that does not pin an accelerator (a
// Raspberry Pi machine's CPUs are emulated models; only TCG runs them).
func useKVM(p *boards.QEMU, hostArch, dev string) bool {
	if p.Accel != "" || hostArch != "arm64" || filepath.Base(p.Binary) != "qemu-system-aarch64" {
		return false
	}
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}
