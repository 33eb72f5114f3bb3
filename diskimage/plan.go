package diskimage

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
)

const sector = 512

// placement is a Layout resolved: every offset and size known and checked.
type placement struct {
	l     *Layout
	size  int64
	parts []placed
	// order is the order the partitions' filesystems are written in, as
	// indexes of parts.
	order []int
	// GPT: entries in the partition array, and the usable LBA range.
	entries                 int
	firstUsable, lastUsable uint64
	sig                     uint32
	diskGUID                [16]byte
}

type placed struct {
	p           *Partition
	num         int // 1-based
	name        string
	start, size int64
	mbrType     byte
	gptType     [16]byte
	guid        [16]byte
}

func (pp *placed) end() int64 { return pp.start + pp.size }

// span is a byte range with a name, for overlap messages.
type span struct {
	what       string
	start, end int64
}

func (s span) String() string { return fmt.Sprintf("%s (bytes %d-%d)", s.what, s.start, s.end-1) }

func (l *Layout) place() (*placement, error) {
	first, align := l.FirstOffset, l.Align
	if first == 0 {
		first = DefaultFirstOffset
	}
	if align == 0 {
		align = DefaultAlign
	}
	switch {
	case align < 0 || align%sector != 0:
		return nil, fmt.Errorf("alignment %d: want a positive multiple of %d", align, sector)
	case first < 0 || first%sector != 0:
		return nil, fmt.Errorf("first partition offset %d: want a multiple of %d", first, sector)
	case l.Size < 0 || l.Size%sector != 0:
		return nil, fmt.Errorf("image size %d: want a multiple of %d", l.Size, sector)
	}
	pl := &placement{l: l}
	var err error
	switch l.Table {
	case MBR:
		if len(l.Partitions) > 4 {
			return nil, fmt.Errorf("%d partitions: an MBR holds 4", len(l.Partitions))
		}
		if pl.sig, err = l.signature(); err != nil {
			return nil, err
		}
	case GPT:
		if pl.diskGUID, err = l.diskGUID(); err != nil {
			return nil, err
		}
		if pl.entries, err = l.gptEntries(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("partition table %q: want %q or %q", l.Table, MBR, GPT)
	}
	table := pl.tableSpans(0)
	cur := first
	for i := range l.Partitions {
		pp, err := l.placePartition(i, cur, align, table[0].end, pl.parts)
		if err != nil {
			return nil, err
		}
		pl.parts = append(pl.parts, pp)
		cur = pp.end()
	}
	tail := int64(0)
	if l.Table == GPT {
		tail = int64(1+pl.entrySectors()) * sector
	}
	if n := len(pl.parts); n > 0 && l.Partitions[n-1].Size == Fill {
		last := &pl.parts[n-1]
		if l.Size == 0 {
			return nil, fmt.Errorf("%s: Fill needs an image size", last.name)
		}
		end := (l.Size - tail) / align * align
		if end <= last.start {
			end = (l.Size - tail) / sector * sector
		}
		if end <= last.start {
			return nil, fmt.Errorf("%s starts at %d, past the room a %d-byte image has for partitions", last.name, last.start, l.Size)
		}
		last.size = end - last.start
		cur = end
	}
	switch {
	case l.Size == 0:
		pl.size = roundUp(cur+tail, align)
	case cur+tail > l.Size && tail > 0:
		return nil, fmt.Errorf("partitions end at byte %d and the backup GPT needs %d more: %d bytes, larger than the image size %d", cur, tail, cur+tail, l.Size)
	case cur > l.Size:
		return nil, fmt.Errorf("partitions end at byte %d, beyond the image size %d", cur, l.Size)
	default:
		pl.size = l.Size
	}
	for i := range pl.parts {
		if err := pl.types(&pl.parts[i]); err != nil {
			return nil, err
		}
	}
	if l.Table == MBR {
		for _, pp := range pl.parts {
			if pp.end()/sector > 1<<32-1 {
				return nil, fmt.Errorf("%s ends at byte %d, beyond the 2 TiB an MBR can address (use GPT)", pp.name, pp.end())
			}
		}
	} else {
		pl.lastUsable = uint64(pl.size/sector) - 2 - uint64(pl.entrySectors())
	}
	if err := pl.checkBlobs(); err != nil {
		return nil, err
	}
	if pl.order, err = pl.writeOrder(); err != nil {
		return nil, err
	}
	return pl, nil
}

// writeOrder puts the partitions in the order of the layout, except that
// one naming another in WriteAfter comes after it.
func (pl *placement) writeOrder() ([]int, error) {
	index := map[string]int{}
	for i, pp := range pl.parts {
		if pp.p.Name != "" {
			index[pp.p.Name] = i
		}
	}
	for _, pp := range pl.parts {
		if a := pp.p.WriteAfter; a != "" {
			if _, ok := index[a]; !ok {
				return nil, fmt.Errorf("%s: written after partition %q: no partition has that name", pp.name, a)
			}
		}
	}
	order := make([]int, 0, len(pl.parts))
	done := make([]bool, len(pl.parts))
	for len(order) < len(pl.parts) {
		added := false
		for i, pp := range pl.parts {
			if done[i] {
				continue
			}
			if a := pp.p.WriteAfter; a != "" && !done[index[a]] {
				continue
			}
			done[i], added = true, true
			order = append(order, i)
		}
		if !added {
			var names []string
			for i, pp := range pl.parts {
				if !done[i] {
					names = append(names, pp.name)
				}
			}
			return nil, fmt.Errorf("partitions %s are each to be written after another of them", strings.Join(names, ", "))
		}
	}
	return order, nil
}

func (l *Layout) placePartition(i int, cur, align, tableEnd int64, before []placed) (placed, error) {
	p := &l.Partitions[i]
	pp := placed{p: p, num: i + 1, name: fmt.Sprintf("partition %d", i+1)}
	if p.Name != "" {
		pp.name += " (" + p.Name + ")"
	}
	switch {
	case p.Offset < 0 || p.Offset%sector != 0:
		return pp, fmt.Errorf("%s: offset %d: want a multiple of %d", pp.name, p.Offset, sector)
	case p.Offset == 0:
		pp.start = roundUp(cur, align)
	case p.Offset < tableEnd:
		return pp, fmt.Errorf("%s at byte %d overlaps the partition table (bytes 0-%d)", pp.name, p.Offset, tableEnd-1)
	case p.Offset < cur && i > 0:
		return pp, fmt.Errorf("%s at byte %d overlaps partition %d, which ends at byte %d", pp.name, p.Offset, i, cur)
	default:
		pp.start = p.Offset
	}
	if pp.start < tableEnd {
		return pp, fmt.Errorf("%s at byte %d overlaps the partition table (bytes 0-%d)", pp.name, pp.start, tableEnd-1)
	}
	switch {
	case p.Size > 0:
		if p.Size%sector != 0 {
			return pp, fmt.Errorf("%s: size %d: want a multiple of %d", pp.name, p.Size, sector)
		}
		pp.size = p.Size
	case p.Size == Fill:
		if i != len(l.Partitions)-1 {
			return pp, fmt.Errorf("%s: only the last partition can fill the disk", pp.name)
		}
	case p.Size == 0 && p.SameSizeAs != "":
		j := slices.IndexFunc(l.Partitions[:len(before)], func(q Partition) bool { return q.Name == p.SameSizeAs })
		if j < 0 {
			var names []string
			for _, q := range l.Partitions[:len(before)] {
				names = append(names, q.Name)
			}
			return pp, fmt.Errorf("%s: size of partition %s: want an earlier partition (%s)", pp.name, p.SameSizeAs, strings.Join(names, ", "))
		}
		pp.size = before[j].size
	case p.Size == 0:
		if p.FS == nil {
			return pp, fmt.Errorf("%s: no size and no content to size it by", pp.name)
		}
		min, err := p.FS.MinSize()
		if err != nil {
			return pp, fmt.Errorf("%s: %w", pp.name, err)
		}
		pp.size = roundUp(min, align)
	default:
		return pp, fmt.Errorf("%s: size %d", pp.name, p.Size)
	}
	var err error
	if l.Table == GPT {
		if n := len(utf16.Encode([]rune(p.Name))); n > 36 {
			return pp, fmt.Errorf("%s: name has %d UTF-16 units, GPT allows 36", pp.name, n)
		}
		pp.guid, err = l.partGUID(i)
	}
	return pp, err
}

// types resolves a partition's MBR type byte or GPT type GUID.
func (pl *placement) types(pp *placed) error {
	p := pp.p
	if p.Type != "" {
		if pl.l.Table == GPT {
			g, err := parseGUID(p.Type)
			if err != nil {
				return fmt.Errorf("%s: type: %w", pp.name, err)
			}
			pp.gptType = g
			return nil
		}
		v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(p.Type), "0x"), 16, 8)
		if err != nil || v == 0 {
			return fmt.Errorf("%s: type %q: want an MBR type byte in hex, such as 83", pp.name, p.Type)
		}
		pp.mbrType = byte(v)
		return nil
	}
	var guid string
	switch p.Kind {
	case KindFAT:
		pp.mbrType, guid = mbrFAT32LBA, gptBasicData
		if f, ok := p.FS.(interface{ FATType(size int64) int }); ok && f.FATType(pp.size) == 16 {
			pp.mbrType = mbrFAT16LBA
		}
	case KindESP:
		pp.mbrType, guid = mbrEFI, gptEFISystem
	case KindLinux:
		pp.mbrType, guid = mbrLinux, gptLinuxData
	case KindRootArm64:
		pp.mbrType, guid = mbrLinux, gptRootArm64
	case KindRootArm:
		pp.mbrType, guid = mbrLinux, gptRootArm
	case "":
		return fmt.Errorf("%s: no kind or type", pp.name)
	default:
		return fmt.Errorf("%s: unknown kind %q", pp.name, p.Kind)
	}
	g, err := parseGUID(guid)
	pp.gptType = g
	return err
}

// gptEntries is the size of the GPT partition array: GPTEntries, or 128,
// or as many as fit before a blob placed inside the usual array.
func (l *Layout) gptEntries() (int, error) {
	n := l.GPTEntries
	if n < 0 || n > 1024 {
		return 0, fmt.Errorf("GPT entries %d: want 0 (automatic) to 1024", n)
	}
	if n == 0 {
		n = 128
		for _, b := range l.Blobs {
			if b.Offset >= 2*sector && b.Offset < (2+32)*sector {
				fit := int(b.Offset-2*sector) / 128 / 4 * 4
				if fit >= len(l.Partitions) && fit < n {
					n = fit
				}
			}
		}
	}
	n = (n + 3) / 4 * 4 // whole sectors
	if n < len(l.Partitions) {
		return 0, fmt.Errorf("GPT entries %d: fewer than the %d partitions", n, len(l.Partitions))
	}
	return n, nil
}

func (pl *placement) entrySectors() int { return (pl.entries*128 + sector - 1) / sector }

// tableSpans are the regions the partition table occupies on a disk of
// size bytes (0 when not yet known: then only the start of the disk).
func (pl *placement) tableSpans(size int64) []span {
	if pl.l.Table == MBR {
		return []span{{"the MBR", 0, sector}}
	}
	n := int64(pl.entrySectors())
	s := []span{{"the GPT header and entries", 0, (2 + n) * sector}}
	if size > 0 {
		s = append(s, span{"the backup GPT", size - (1+n)*sector, size})
	}
	return s
}

// checkBlobs refuses blobs outside the disk or overlapping the table, a
// partition or each other, and sets the GPT's first usable LBA past blobs
// that sit before the first partition, so that partitioning tools leave
// them alone.
func (pl *placement) checkBlobs() error {
	used := pl.tableSpans(pl.size)
	for _, pp := range pl.parts {
		used = append(used, span{pp.name, pp.start, pp.end()})
	}
	firstPart := pl.size
	if len(pl.parts) > 0 {
		firstPart = pl.parts[0].start
	}
	firstUsable := used[0].end
	for i, b := range pl.l.Blobs {
		name := fmt.Sprintf("blob %d", i+1)
		if b.Name != "" {
			name = fmt.Sprintf("blob %q", b.Name)
		}
		if b.Data == nil && b.Size > 0 {
			return fmt.Errorf("%s: no data", name)
		}
		s := span{name, b.Offset, b.Offset + b.Size}
		if b.Offset < 0 || b.Size < 0 || s.end > pl.size {
			return fmt.Errorf("%s at bytes %d-%d is outside the %d-byte image", name, s.start, s.end-1, pl.size)
		}
		for _, u := range used {
			if s.start < u.end && u.start < s.end {
				return fmt.Errorf("%s overlaps %s", s, u)
			}
		}
		used = append(used, s)
		if s.end <= firstPart {
			firstUsable = max(firstUsable, s.end)
		}
	}
	pl.firstUsable = uint64(roundUp(firstUsable, sector) / sector)
	return nil
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }
