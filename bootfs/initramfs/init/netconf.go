package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A static IPv4 address on the first network interface, for commit steps
// that fetch packages: QEMU's user-mode network has fixed addresses, so no
// DHCP client is needed. The interface is configured over rtnetlink, the
// way ip(8) does it, without a program from the root.

// netConfig is the "ADDR/PREFIX GATEWAY" of protocol.CommitNet.
type netConfig struct {
	addr    netip.Prefix
	gateway netip.Addr
}

func parseNetConfig(s string) (netConfig, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return netConfig{}, fmt.Errorf("network %q: want ADDR/PREFIX GATEWAY", s)
	}
	addr, err := netip.ParsePrefix(f[0])
	if err != nil || !addr.Addr().Is4() {
		return netConfig{}, fmt.Errorf("network %q: want an IPv4 ADDR/PREFIX", s)
	}
	gw, err := netip.ParseAddr(f[1])
	if err != nil || !gw.Is4() || !addr.Contains(gw) {
		return netConfig{}, fmt.Errorf("network %q: want an IPv4 gateway in %s", s, addr.Masked())
	}
	return netConfig{addr: addr, gateway: gw}, nil
}

// configureNet waits for the first interface other than lo, brings lo and
// it up with the address and a default route through the gateway, and
// returns its name.
func configureNet(nc netConfig, wait time.Duration) (string, error) {
	var name string
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if name = firstInterface(); name != "" {
			break
		}
		if time.Since(start) > wait {
			return "", fmt.Errorf("no network interface after %s (is virtio_net in the initramfs?)", wait)
		}
	}
	return name, setupInterface(name, nc)
}

// setupInterface brings lo and interface name up, gives name the address
// and adds the default route through the gateway.
func setupInterface(name string, nc netConfig) error {
	lo, err := ifIndex("lo")
	if err != nil {
		return err
	}
	idx, err := ifIndex(name)
	if err != nil {
		return err
	}
	s, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer unix.Close(s)
	if err := unix.Bind(s, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	for _, r := range []struct {
		what string
		msg  []byte
	}{
		{"bring lo up", linkUpMsg(1, lo)},
		{"bring " + name + " up", linkUpMsg(2, idx)},
		{"give " + name + " the address " + nc.addr.String(), addrMsg(3, idx, nc.addr)},
		{"add the default route through " + nc.gateway.String(), routeMsg(4, idx, nc.gateway)},
	} {
		if err := netlinkDo(s, r.msg); err != nil {
			return fmt.Errorf("%s: %w", r.what, err)
		}
	}
	return nil
}

// firstInterface returns the first interface in name order besides lo, or
// "".
func firstInterface() string {
	ents, _ := os.ReadDir("/sys/class/net")
	names := []string{}
	for _, e := range ents {
		if e.Name() != "lo" {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

func ifIndex(name string) (int32, error) {
	b, err := os.ReadFile("/sys/class/net/" + name + "/ifindex")
	if err != nil {
		return 0, fmt.Errorf("interface %s: %w", name, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("interface %s: ifindex %q", name, b)
	}
	return int32(n), nil
}

// Netlink messages are in the host's byte order.
var ne = binary.NativeEndian

// nlMsg returns a netlink request of type typ with body and attributes,
// asking for an acknowledgement.
func nlMsg(typ uint16, flags uint16, seq uint32, body []byte, attrs ...[]byte) []byte {
	b := make([]byte, unix.SizeofNlMsghdr, 64)
	b = append(b, body...)
	for _, a := range attrs {
		b = append(b, a...)
	}
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], typ)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK|flags)
	ne.PutUint32(b[8:], seq)
	return b
}

// rtAttr is one route attribute, padded to 4 bytes.
func rtAttr(typ uint16, data []byte) []byte {
	n := unix.SizeofRtAttr + len(data)
	b := make([]byte, (n+3)&^3)
	ne.PutUint16(b[0:], uint16(n))
	ne.PutUint16(b[2:], typ)
	copy(b[unix.SizeofRtAttr:], data)
	return b
}

// linkUpMsg sets IFF_UP on interface idx.
func linkUpMsg(seq uint32, idx int32) []byte {
	body := make([]byte, unix.SizeofIfInfomsg)
	ne.PutUint32(body[4:], uint32(idx))
	ne.PutUint32(body[8:], unix.IFF_UP)  // flags
	ne.PutUint32(body[12:], unix.IFF_UP) // change
	return nlMsg(unix.RTM_NEWLINK, 0, seq, body)
}

// addrMsg adds address a to interface idx.
func addrMsg(seq uint32, idx int32, a netip.Prefix) []byte {
	body := make([]byte, unix.SizeofIfAddrmsg)
	body[0] = unix.AF_INET
	body[1] = byte(a.Bits())
	body[3] = unix.RT_SCOPE_UNIVERSE
	ne.PutUint32(body[4:], uint32(idx))
	ip := a.Addr().AsSlice()
	return nlMsg(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, seq, body,
		rtAttr(unix.IFA_LOCAL, ip), rtAttr(unix.IFA_ADDRESS, ip))
}

// routeMsg adds a default route through gw on interface idx.
func routeMsg(seq uint32, idx int32, gw netip.Addr) []byte {
	body := make([]byte, unix.SizeofRtMsg)
	body[0] = unix.AF_INET
	body[4] = unix.RT_TABLE_MAIN
	body[5] = unix.RTPROT_BOOT
	body[6] = unix.RT_SCOPE_UNIVERSE
	body[7] = unix.RTN_UNICAST
	oif := make([]byte, 4)
	ne.PutUint32(oif, uint32(idx))
	return nlMsg(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_EXCL, seq, body,
		rtAttr(unix.RTA_GATEWAY, gw.AsSlice()), rtAttr(unix.RTA_OIF, oif))
}

// netlinkDo sends one request and waits for its acknowledgement.
func netlinkDo(s int, req []byte) error {
	if err := unix.Sendto(s, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	seq := ne.Uint32(req[8:])
	buf := make([]byte, 8192)
	for {
		n, _, err := unix.Recvfrom(s, buf, 0)
		if err != nil {
			return err
		}
		for b := buf[:n]; len(b) >= unix.SizeofNlMsghdr; {
			l := int(ne.Uint32(b[0:]))
			if l < unix.SizeofNlMsghdr || l > len(b) {
				return errors.New("malformed netlink message")
			}
			typ, mseq, data := ne.Uint16(b[4:]), ne.Uint32(b[8:]), b[unix.SizeofNlMsghdr:l]
			b = b[min((l+3)&^3, len(b)):]
			if mseq != seq || typ != unix.NLMSG_ERROR {
				continue
			}
			if len(data) < 4 {
				return errors.New("short netlink acknowledgement")
			}
			if code := int32(ne.Uint32(data)); code != 0 {
				return unix.Errno(-code)
			}
			return nil
		}
	}
}
