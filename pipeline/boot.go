package pipeline

import (
	"context"
	"fmt"
	"strings"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/bootfs"
	"github.com/ocidisk/ocidisk/bootfs/initramfs"
	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/fstree"
)

// assembleBoot assembles the boot partitions of layout l: the kernel and
// initramfs, the firmware, and the boot configs naming the partitions of
// disk by PARTUUID.
func assembleBoot(ctx context.Context, l *boards.Layout, in *inputs, disk *diskimage.Layout, prep *prepared, cfg Config, vr *verityRoot) (*bootfs.Result, error) {
	var bootOverlay *fstree.Tree
	if len(cfg.BootOverlays) > 0 {
		bootOverlay = fstree.New()
		for _, dir := range cfg.BootOverlays {
			if err := in.overlay(ctx, bootOverlay, dir); err != nil {
				return nil, err
			}
		}
	}
	var v *bootfs.Verity
	if vr != nil {
		v = vr.boot
	}
	var initrd func(initramfs.Spec) ([]byte, error)
	if in.initrd != nil {
		initrd = in.initrd.build
	}
	boot, err := bootfs.Assemble(l, in.kernel, bootfs.Options{
		PartUUID:       func(name string) string { return disk.PartUUID(disk.Index(name)) },
		CmdlineAppend:  cfg.CmdlineAppend,
		CheckRoot:      prep.checkRoot,
		BootOverlay:    bootOverlay,
		Firmware:       in.firmware,
		FirmwareSource: firmwareSource(cfg),
		ConfigAppend:   cfg.ConfigTxtAppend,
		DTOverlays:     cfg.DTOverlays,
		Verity:         v,
		Root:           in.root.Tree,
		Time:           in.epoch,
		Initramfs:      initrd,
		Log:            cfg.Log,
	})
	if err != nil {
		return nil, fmt.Errorf("boot partition: %w", err)
	}
	for _, t := range boot.Partitions {
		t.ClampTimes(in.epoch)
	}
	if tried := missingInit(in.root.Tree, boot.Cmdline); tried != nil {
		cfg.Log.Warn("the root has no init to run, so the image will stop after the initramfs; add one, or name it with init=PATH on the kernel command line",
			"root", cfg.Source, "tried", strings.Join(tried, ", "))
	}
	return boot, nil
}
