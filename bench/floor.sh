#!/usr/bin/env bash
# The floor bench/run compares against: decompressing every compressed
# input of the build once, to /dev/null, one after the other, as zcat and xz
# do it. No build can read its input in less.
#
#   floor.sh KERNEL-DATA-ARCHIVE|- LAYER-BLOB...
#
# "-" is a kernel from a directory: then the floor is the issue's own, the
# layers alone.
set -euo pipefail

data=$1
shift
for layer in "$@"; do
  zcat -- "$layer" >/dev/null
done
case $data in
  *.xz) xz -dc -- "$data" >/dev/null ;;
  *.zst) zstd -qdc -- "$data" >/dev/null ;;
  *.gz) zcat -- "$data" >/dev/null ;;
  *.tar | -) ;;
  *) echo "floor: unknown compression: $data" >&2; exit 1 ;;
esac
