package fat

import "fmt"

const sectorSize = 512

// Cluster-count limits. Windows and Linux tell FAT12 from FAT16 by cluster
// count, so dosfstools keeps FAT16 clear of 4085 and 4086; FAT32 needs at
// least 65525 clusters to be FAT32 by the specification's rule, and FAT32
// entries hold 28 bits.
const (
	minClusters16 = 4087
	maxClusters16 = 65524
	minClusters32 = 65525
	maxClusters32 = 268435446
)

// fat32Threshold is the size from which Type 0 chooses FAT32, as mkfs.fat
// does.
const fat32Threshold = 512 << 20

// geometry is the on-disk layout of one filesystem.
type geometry struct {
	bits        int    // 16 or 32
	sectors     uint32 // total sectors
	clusterSecs uint32 // sectors per cluster
	reserved    uint32 // reserved sectors before the first FAT
	fatSecs     uint32 // sectors per FAT
	rootEntries uint32 // FAT16: entries of the fixed root directory
	clusters    uint32 // data clusters, numbered 2 to clusters+1
}

func (g geometry) clusterSize() int64 { return int64(g.clusterSecs) * sectorSize }
func (g geometry) rootSecs() uint32   { return g.rootEntries * 32 / sectorSize }
func (g geometry) fatOff(i int) int64 {
	return int64(g.reserved+uint32(i)*g.fatSecs) * sectorSize
}
func (g geometry) rootOff() int64 { return g.fatOff(2) }
func (g geometry) dataOff() int64 {
	return int64(g.reserved+2*g.fatSecs+g.rootSecs()) * sectorSize
}
func (g geometry) clusterOff(c uint32) int64 {
	return g.dataOff() + int64(c-2)*g.clusterSize()
}

// autoBits is the FAT variant Type 0 gives a filesystem of size bytes.
func autoBits(size int64) int {
	if size >= fat32Threshold {
		return 32
	}
	return 16
}

// fat32ClusterSize follows mkfs.fat, which follows Microsoft's format
// command (fatgen103): FAT32 cluster sizes by volume size.
func fat32ClusterSize(size int64) int64 {
	switch mb := size >> 20; {
	case mb > 32<<10:
		return 32 << 10
	case mb > 16<<10:
		return 16 << 10
	case mb > 8<<10:
		return 8 << 10
	case mb > 260:
		return 4 << 10
	}
	return 512
}

// newGeometry lays out a filesystem of size bytes with the given FAT
// variant, cluster size and minimum root directory entries (FAT16). A
// cluster size of 0 chooses as mkfs.fat does: for FAT32 by volume size,
// for FAT16 the smallest from 2 KiB up to 32 KiB that keeps the cluster
// count in range, going down to 512 bytes for volumes too small for 2 KiB
// clusters (where mkfs.fat would make FAT12).
func newGeometry(size int64, bits int, clusterSize int64, rootEntries int) (geometry, error) {
	switch {
	case clusterSize != 0:
		return layout(size, bits, clusterSize, rootEntries)
	case bits == 32:
		return layout(size, bits, fat32ClusterSize(size), rootEntries)
	}
	cs := int64(2 << 10)
	g, err := layout(size, bits, cs, rootEntries)
	for ; err != nil && g.clusters > maxClusters16 && cs < 32<<10; g, err = layout(size, bits, cs, rootEntries) {
		cs *= 2
	}
	for ; err != nil && g.clusters < minClusters16 && cs > 512; g, err = layout(size, bits, cs, rootEntries) {
		cs /= 2
	}
	return g, err
}

// layout lays out a filesystem with a given cluster size. The data area
// starts on a cluster boundary (at least 4 KiB) relative to the
// filesystem, as mkfs.fat aligns it by default: with the partition itself
// aligned, clusters then never straddle a flash page or a bmap block. On a
// cluster count out of range it returns the geometry with the error, so
// callers can try another cluster size.
func layout(size int64, bits int, clusterSize int64, rootEntries int) (geometry, error) {
	if size%sectorSize != 0 {
		return geometry{}, fmt.Errorf("size %d is not a multiple of %d", size, sectorSize)
	}
	if size/sectorSize > 0xffffffff {
		return geometry{}, fmt.Errorf("size %d is beyond FAT's 2 TiB limit", size)
	}
	if clusterSize < sectorSize || clusterSize > 64<<10 || clusterSize&(clusterSize-1) != 0 {
		return geometry{}, fmt.Errorf("cluster size %d: want a power of two from 512 to 65536", clusterSize)
	}
	g := geometry{bits: bits, sectors: uint32(size / sectorSize), clusterSecs: uint32(clusterSize / sectorSize)}
	reserved := uint32(1)
	if bits == 32 {
		// 32 as mkfs.fat and Windows: boot sector, FSInfo, backup boot
		// sector at 6 and its FSInfo at 7, and room to spare.
		reserved = 32
	} else {
		g.rootEntries = uint32(max(rootEntries, 512)+15) &^ 15
	}
	align := max(g.clusterSecs, 8)
	// fit lays out FATs of fat sectors and reports how many sectors the
	// clusters that leaves would need.
	fit := func(fat uint32) (need uint32, err error) {
		g.fatSecs = fat
		g.reserved = reserved
		if pad := (reserved + 2*fat + g.rootSecs()) % align; pad != 0 {
			g.reserved += align - pad
		}
		meta := uint64(g.reserved) + 2*uint64(fat) + uint64(g.rootSecs())
		if meta >= uint64(g.sectors) {
			return 0, fmt.Errorf("size %d is too small for FAT%d with %d-byte clusters", size, bits, clusterSize)
		}
		g.clusters = (g.sectors - uint32(meta)) / g.clusterSecs
		return uint32(((uint64(g.clusters)+2)*uint64(bits/8) + sectorSize - 1) / sectorSize), nil
	}
	// Grow the FAT until it covers the clusters, then shrink it while a
	// smaller one still covers what it leaves; fewer FAT sectors mean more
	// clusters, so this settles.
	fat := uint32(1)
	for {
		need, err := fit(fat)
		if err != nil {
			return geometry{}, err
		}
		if need > fat {
			fat = need
			continue
		}
		if need < fat {
			if again, err := fit(need); err == nil && again <= need {
				fat = need
				continue
			}
			if _, err := fit(fat); err != nil {
				return geometry{}, err
			}
		}
		break
	}
	lo, hi := uint32(minClusters16), uint32(maxClusters16)
	if bits == 32 {
		lo, hi = minClusters32, maxClusters32
	}
	switch {
	case g.clusters < lo:
		return g, fmt.Errorf("size %d gives %d clusters of %d bytes, FAT%d needs at least %d", size, g.clusters, clusterSize, bits, lo)
	case g.clusters > hi:
		return g, fmt.Errorf("size %d gives %d clusters of %d bytes, FAT%d allows at most %d", size, g.clusters, clusterSize, bits, hi)
	}
	return g, nil
}
