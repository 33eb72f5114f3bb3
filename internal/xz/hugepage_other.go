//go:build !linux

package xz

// hugePages is advice only Linux takes (see hugepage_linux.go).
func hugePages[T any](b []T) {}
