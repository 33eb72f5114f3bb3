#!/usr/bin/env bash
# The image build a user would script without ocidisk, timed by bench/run:
# the same disk as `ocidisk build --board qemu-virt-arm64 --kernel deb:DEB
# oci:LAYOUT` (or --kernel dir:DIR), made from the image in a registry with
# the usual tools, as root (tar -x and mke2fs -d need real ownership on the
# host).
#
#   pipeline.sh CRANE IMAGE-REF KERNEL.deb|KERNEL-DIR BOOT-DIR SFDISK-LAYOUT WORK OUT.img
#
# BOOT-DIR holds the boot partition's files (kernel Image, initramfs,
# extlinux/extlinux.conf) and SFDISK-LAYOUT the partition table (sfdisk -d),
# both taken from an ocidisk image beforehand: the pipeline's job is the
# assembly, and with the same table the image boots the same way. WORK must
# be an empty directory on the output's filesystem.
set -euo pipefail

crane=$1 ref=$2 kernel=$3 bootdir=$4 layout=$5 work=$6 out=$7
root=$work/root
mkdir -p "$root" "$work/kernel"

# The root tree: the image flattened by crane, extracted with owners,
# modes and xattrs (file capabilities) kept. crane export writes the top
# layer first, so a hardlink to a file of a lower layer comes before its
# target, and a link whose first name an upper layer deleted has none: tar
# cannot make those links and says so. The user's tree lacks them; any
# other complaint from tar fails the run.
{
  "$crane" export "$ref" - | tar -x -C "$root" --numeric-owner -p --xattrs --xattrs-include='*' 2>"$work/tar.log"
  status=("${PIPESTATUS[@]}")
} || true
[ "${status[0]}" = 0 ] || { echo "pipeline: crane export failed" >&2; exit 1; }
if grep -v -e 'Cannot hard link' -e 'Exiting with failure status' "$work/tar.log" >&2; then
  echo "pipeline: tar -x failed" >&2
  exit 1
fi

# The kernel's modules, into the root, and their index: unpacked from the
# package and moved, or copied from a kernel directory, which stays as it is.
mkdir -p "$root/lib/modules"
if [ -d "$kernel" ]; then
  cp -a "$kernel"/lib/modules/* "$root/lib/modules/"
else
  dpkg-deb -x "$kernel" "$work/kernel"
  mv "$work/kernel"/lib/modules/* "$root/lib/modules/"
fi
for m in "$root"/lib/modules/*; do
  depmod -b "$root" "$(basename "$m")"
done

# Partition sizes and offsets from the table, in 512-byte sectors.
read -r boot_start boot_size root_start root_size < <(
  awk -F'[=,]' '/start=/ { gsub(/ /, ""); s = s $2 " " $4 " " } END { print s }' "$layout")

mke2fs -q -F -t ext4 -L root -d "$root" "$work/root.img" "$((root_size / 2))k"
mkfs.vfat -C -n BOOT "$work/boot.img" "$((boot_size / 2))" >/dev/null
mcopy -s -i "$work/boot.img" "$bootdir"/* ::/

truncate -s "$(((root_start + root_size) * 512))" "$out"
sfdisk -q "$out" <"$layout"
dd if="$work/boot.img" of="$out" bs=1M seek="$((boot_start * 512))" oflag=seek_bytes conv=sparse,notrunc status=none
dd if="$work/root.img" of="$out" bs=1M seek="$((root_start * 512))" oflag=seek_bytes conv=sparse,notrunc status=none
