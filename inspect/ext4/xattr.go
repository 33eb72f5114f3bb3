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
		out[prefix+string(e[16:16+nameLen])] = append([]byte(nil), base[vOff:vOff+vSize]...)
		off += (16 + nameLen + 3) &^ 3
	}
	return nil
}
