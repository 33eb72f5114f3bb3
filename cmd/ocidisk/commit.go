package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ocidisk/ocidisk/commit"
	"github.com/ocidisk/ocidisk/internal/bytesize"
	"github.com/ocidisk/ocidisk/source"
)

// commitArgs are ocidisk commit's options, as parsed.
type commitArgs struct {
	opts     commit.Options
	platform string
	copies   []string
	out      string
}

// commitOptions declares ocidisk commit's options once. --run and --script
// add to one list of steps, in the order given.
func commitOptions(a *commitArgs) []option {
	o := &a.opts
	return []option{
		{flag: "kernel", arg: "SRC", field: "Kernel",
			usage: "kernel to boot the guest with (deb:linux-image-...deb, an OCI image, dir:DIR); default: the image's own /boot", value: newString(&o.Kernel, "", nil)},
		{flag: "platform", arg: "P", field: "Sources",
			usage: "platform to pick from an image index: linux/arm64 (the default), linux/arm/v7 or v6", value: newString(&a.platform, "", nil)},
		{flag: "run", arg: "CMD", field: "Steps",
			usage: "shell command to run as root in the image, by /bin/sh -c (repeatable; with --script, in the order given)", value: &stepValue{steps: &o.Steps}},
		{flag: "script", arg: "FILE", field: "Steps",
			usage: "host script to run as root in the image: by its #! line, else by /bin/sh", value: &stepValue{steps: &o.Steps, script: true}},
		{flag: "copy", arg: "HOST:GUEST", field: "Copies",
			usage: "copy a host file or directory into the image before the first step, owned by root (repeatable)",
			value: newList(&a.copies, func(s string) error { _, err := commit.ParseCopy(s); return err })},
		{flag: "net", arg: "user|none", field: "Net",
			usage: "network for the steps: user (QEMU's user-mode network, reaching what the host reaches) or none", value: newChoice(&o.Net, commit.NetNone, []string{commit.NetUser, commit.NetNone}, nil)},
		{flag: "env", arg: "K=V", field: "Env",
			usage: "environment variable for the steps, over the image's (repeatable)", value: newList(&o.Env, checkEnv)},
		{flag: "timeout", arg: "DUR", field: "Timeout",
			usage: "time allowed for the guest, boot to power-off", value: newDuration(&o.Timeout, time.Hour)},
		{flag: "compress", arg: "gzip|zstd", field: "Compression",
			usage: "compression of the new layer", value: newChoice(&o.Compression, commit.Gzip, []string{commit.Gzip, commit.Zstd}, map[string]string{"gz": commit.Gzip, "zst": commit.Zstd})},
		{flag: "output", short: "o", arg: "DEST", usage: "where the image goes: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF] or a registry reference (required)",
			value: newString(&a.out, "", nil)},
	}
}

func checkEnv(s string) error {
	if k, _, ok := strings.Cut(s, "="); !ok || k == "" {
		return errors.New("want K=V")
	}
	return nil
}

// stepValue adds --run and --script values to one list of steps.
type stepValue struct {
	steps  *[]commit.Step
	script bool
	given  bool
}

func (v *stepValue) Set(s string) error {
	if v.script {
		if v.given {
			return errors.New("give one --script; more commands go in it or in --run")
		}
		v.given = true
		*v.steps = append(*v.steps, commit.Step{Script: s})
		return nil
	}
	*v.steps = append(*v.steps, commit.Step{Run: s})
	return nil
}

func (v *stepValue) String() string { return "" }
func (v *stepValue) Type() string   { return "string" }
func (v *stepValue) kind() valueKind {
	if v.script {
		return single
	}
	return repeated
}

func commitCommand(e *env) *cobra.Command {
	var a commitArgs
	opts := commitOptions(&a)
	c := &cobra.Command{
		Use:   "commit [flags] -o DEST SOURCE",
		Short: "run commands in an image, in its own architecture under QEMU, and add what they change as a layer",
		Long: `The guest is QEMU's virt machine of the image's architecture (KVM on an arm64 host
with /dev/kvm, else emulated), booted with the kernel and ocidisk's initramfs. The
image's root is the read-only lower layer of an overlayfs; the steps run as root
in the merged root with /proc, /sys and /dev, and with --net user a network and a
resolv.conf (not committed). Their output is shown as it comes. What they change
becomes one layer with OCI whiteouts, its times clamped to SOURCE_DATE_EPOCH (else
the image's creation time), added to the image's layers, which are kept as they
are. A step that fails fails the commit, and nothing is written to DEST.`,
		Args: exactArgs(1, "one SOURCE"),
		RunE: func(c *cobra.Command, args []string) error { return runCommit(c.Context(), e, &a, opts, args[0]) },
	}
	declare(c.Flags(), opts)
	return withSynopsis(c, opts, "SOURCE")
}

func runCommit(ctx context.Context, e *env, a *commitArgs, opts []option, src string) error {
	if a.out == "" {
		return usagef("-o DEST is required")
	}
	dest, err := commit.ParseDest(a.out)
	if err != nil {
		return usagef("-o: %v", err)
	}
	o := a.opts
	if len(o.Steps) == 0 && len(a.copies) == 0 {
		return usagef("nothing to do: give --run CMD, --script FILE or --copy HOST:GUEST")
	}
	o.Source = src
	for _, s := range a.copies {
		cp, _ := commit.ParseCopy(s) // checked when parsed
		o.Copies = append(o.Copies, cp)
	}
	if o.Epoch, err = sourceDateEpoch(); err != nil {
		return usagef("%v", err)
	}
	o.Log = e.log
	o.Sources = source.Options{Platform: a.platform, Log: e.log}
	if !e.quiet {
		o.Output = e.stdout
	}
	res, err := commit.Run(ctx, o)
	if err != nil {
		return commitError(err, opts)
	}
	defer res.Close()
	if err := commit.Write(ctx, res.Image, dest, commit.WriteOptions{Log: e.log}); err != nil {
		return err
	}
	if !e.quiet {
		printCommitResult(e, dest, res)
	}
	return nil
}

// commitError names the option behind a library error about an
// Options field; errors in how a source is named are usage errors.
func commitError(err error, opts []option) error {
	if errors.Is(err, source.ErrUsage) {
		return usageError{err}
	}
	var ce *commit.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	if ce.Field == "Source" {
		return usageError{err}
	}
	if o := byField(opts, ce.Field); o != nil {
		return fmt.Errorf("--%s: %w", o.flag, err)
	}
	return err
}

func printCommitResult(e *env, dest commit.Dest, res *commit.Result) {
	d, err := res.Image.Digest()
	if err != nil {
		return
	}
	l, t := res.Layer, res.Times
	fmt.Fprintf(e.stdout, "%s: image %s\n", dest, d)
	fmt.Fprintf(e.stdout, "  new layer %s, %s, %d entries, %d whiteouts\n", l.Digest, bytesize.Human(l.Size), l.Entries, l.Whiteouts)
	how := "emulated"
	if t.KVM {
		how = "under KVM"
	}
	r := func(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }
	fmt.Fprintf(e.stdout, "  steps %s in the guest (%s); ocidisk %s: prepare %s, boot %s, shutdown %s, pack %s, compress %s\n",
		r(t.Steps), how, r(t.Overhead()), r(t.Prepare), r(t.Boot), r(t.Shutdown), r(t.Pack), r(t.Compress))
}
