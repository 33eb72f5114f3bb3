// Package bench measures ocidisk end to end against the tools a user would
// otherwise script (crane export, tar, dpkg-deb, mke2fs -d, mkfs.vfat,
// mcopy, sfdisk, dd) and against the floor, the time to decompress every
// compressed input once. bench/run is the one command; this package holds
// the harness it runs (a child's wall and CPU time, peak RSS and bytes
// written, and the table of medians) and Go benchmarks of pipeline.Build.
package bench
