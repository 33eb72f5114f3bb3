package ext4

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// xattrPrefix maps an entry's name index to its namespace prefix.
var xattrPrefix = map[byte]string{
	1: "user.",
	2: "system.posix_acl_access",
	3: "system.posix_acl_default",
	4: "trusted.",
	6: "security.",
	7: "system.",
	8: "system.richacl",
}

const xattrMagic = 0xea020000

// xattrs reads the extended attributes in the inode (after its extra
// fields) and in its attribute block.
func (n *node) xattrs(extra int) (map[string][]byte, error) {
	le := binary.LittleEndian
	out := map[string][]byte{}
	if start := 128 + extra; extra > 0 && start+4 <= len(n.raw) && le.Uint32(n.raw[start:]) == xattrMagic {
		body := n.raw[start+4:]
		if err := parseXattrs(body, body, out); err != nil {
			return nil, fmt.Errorf("in-inode xattrs: %w", err)
		}
	}
	blk := int64(le.Uint32(n.raw[104:])) | int64(le.Uint16(n.raw[0x76:]))<<32
	if blk != 0 {
		if blk >= n.f.blocks {
			return nil, fmt.Errorf("xattr block %d outside the filesystem", blk)
		}
		b := make([]byte, n.f.blockSize)
		if _, err := n.f.r.ReadAt(b, blk*n.f.blockSize); err != nil {
			return nil, fmt.Errorf("xattr block %d: %w", blk, err)
		}
		if le.Uint32(b) != xattrMagic {
			return nil, fmt.Errorf("xattr block %d: bad magic", blk)
		}
		if err := parseXattrs(b[32:], b, out); err != nil {
			return nil, fmt.Errorf("xattr block %d: %w", blk, err)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// parseXattrs reads entries from ents until the four zero bytes that end
// them; value offsets count from base.
func parseXattrs(ents, base []byte, out map[string][]byte) error {
	le := binary.LittleEndian
	for off := 0; off+16 <= len(ents) && le.Uint32(ents[off:]) != 0; {
		e := ents[off:]
		nameLen := int(e[0])
		vOff, vInum, vSize := int(le.Uint16(e[2:])), le.Uint32(e[4:]), int(le.Uint32(e[8:]))
		if off+16+nameLen > len(ents) {
			return errors.New("entry name runs past the end")
		}
		if vInum != 0 {
			return errors.New("values in separate inodes (ea_inode) are not supported")
		}
		if vOff+vSize > len(base) {
			return fmt.Errorf("value of %d bytes at %d runs past the end", vSize, vOff)
		}
		prefix, ok := xattrPrefix[e[1]]
		if !ok && e[1] != 0 {
			prefix = fmt.Sprintf("index%d.", e[1])
		}
		v := append([]byte(nil), base[vOff:vOff+vSize]...)
		if e[1] == 2 || e[1] == 3 { // POSIX ACLs: given in the form the VFS (and tar) uses
			var err error
			if v, err = aclFromDisk(v); err != nil {
				return fmt.Errorf("%s: %w", prefix, err)
			}
		}
		out[prefix+string(e[16:16+nameLen])] = v
		off += (16 + nameLen + 3) &^ 3
	}
	return nil
}

// aclFromDisk converts a POSIX ACL from ext4's on-disk form (version 1,
// 4-byte entries for the tags that carry no id) to the xattr form
// getfattr, tar and the VFS use (version 2, 8-byte entries, those ids
// 0xffffffff).
func aclFromDisk(v []byte) ([]byte, error) {
	le := binary.LittleEndian
	if len(v) < 4 || le.Uint32(v) != 1 {
		return nil, errors.New("not a version 1 ext4 ACL")
	}
	out := le.AppendUint32(nil, 2)
	for p := v[4:]; len(p) > 0; {
		if len(p) < 4 {
			return nil, errors.New("ACL entry runs past the end")
		}
		tag, perm := le.Uint16(p), le.Uint16(p[2:])
		id := uint32(0xffffffff)
		switch tag {
		case 0x02, 0x08: // ACL_USER, ACL_GROUP
			if len(p) < 8 {
				return nil, errors.New("ACL entry runs past the end")
			}
			id = le.Uint32(p[4:])
			p = p[8:]
		case 0x01, 0x04, 0x10, 0x20: // owner, owning group, mask, other
			p = p[4:]
		default:
			return nil, fmt.Errorf("unknown ACL tag %#x", tag)
		}
		out = le.AppendUint16(out, tag)
		out = le.AppendUint16(out, perm)
		out = le.AppendUint32(out, id)
	}
	return out, nil
}
