package main

import (
	"github.com/ocidisk/ocidisk/internal/bytesize"

	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/inspect"
)

func inspectCommand(e *env) *cobra.Command {
	var asJSON, cat bool
	var board string
	opts := []option{
		{flag: "json", usage: "print JSON for scripts", value: newBool(&asJSON, false)},
		{flag: "cat", usage: "print the bytes of the file PATH names, as cat does", value: newBool(&cat, false)},
		{flag: "board", arg: "B", usage: "also recognise this board (a name or a board file) besides the catalog's", value: newString(&board, "", nil)},
	}
	c := &cobra.Command{
		Use:   "inspect [flags] IMAGE[.zst|.xz|.gz] [PATH]",
		Short: "show an image's partitions, filesystems, slots, boot files and kernel command line, or list PATH (boot:/, root:/etc, /etc), or print it (--cat)",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usagef("want IMAGE and an optional PATH, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if cat {
				if len(args) != 2 || asJSON {
					return usagef("--cat wants IMAGE and the PATH of a file, and no --json")
				}
				return catFile(e, args[0], args[1])
			}
			return runInspect(e, asJSON, board, args)
		},
	}
	declare(c.Flags(), opts)
	return withSynopsis(c, opts, "IMAGE[.zst|.xz|.gz] [PATH]")
}

func runInspect(e *env, asJSON bool, board string, args []string) error {
	im, err := inspect.Open(args[0])
	if err != nil {
		return err
	}
	defer im.Close()

	if len(args) == 2 {
		l, err := im.List(args[1])
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(e.stdout, l)
		}
		printListing(e.stdout, l)
		return nil
	}

	catalog, err := boards.Catalog()
	if err != nil {
		return err
	}
	if board != "" {
		b, err := boards.Load(board)
		if err != nil {
			return err
		}
		catalog = append([]*boards.Board{b}, catalog...)
	}
	r := im.Report(catalog)
	if asJSON {
		if err := writeJSON(e.stdout, r); err != nil {
			return err
		}
	} else {
		printReport(e.stdout, r)
	}
	// A damaged filesystem is reported above and fails the command.
	return im.Err()
}

// catFile copies the file spec names in the image to stdout.
func catFile(e *env, image, spec string) error {
	im, err := inspect.Open(image)
	if err != nil {
		return err
	}
	defer im.Close()
	f, err := im.Open(spec)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(e.stdout, f); err != nil {
		return fmt.Errorf("%s: %s: %w", image, spec, err)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printReport(w io.Writer, r *inspect.Report) {
	table := strings.ToUpper(r.Table)
	if r.Table == "none" {
		table = "no partition table (a bare filesystem)"
	}
	fmt.Fprintf(w, "%s: %s, %s", r.Image, bytesize.Human(r.Size), table)
	if r.DiskID != "" {
		fmt.Fprintf(w, ", disk ID %s", r.DiskID)
	}
	fmt.Fprintln(w)
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tboot\tstart\tsize\ttype\tPARTUUID\trole\tfilesystem\tlabel\tUUID\tused")
	for _, p := range r.Partitions {
		typ := p.Type
		if p.TypeName != "" {
			typ += " " + p.TypeName
		}
		if p.Name != "" {
			typ += " \"" + p.Name + "\""
		}
		boot := ""
		if p.Bootable {
			boot = "*"
		}
		f := p.Filesystem
		used := ""
		if f.Size > 0 {
			used = fmt.Sprintf("%s of %s (%d%%)", bytesize.Human(f.Used), bytesize.Human(f.Size), f.Used*100/f.Size)
		}
		if f.Error != "" {
			used = "ERROR: " + f.Error
		}
		role := p.Role
		if p.Slot != "" {
			role += " " + p.Slot
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Number, boot, bytesize.Human(p.Start), bytesize.Human(p.Size),
			dash(typ), dash(p.PartUUID), dash(role), f.Type, dash(f.Label), dash(f.UUID), used)
	}
	tw.Flush()
	if r.Board != "" {
		fmt.Fprintf(w, "board: %s (its boot partition holds every file the board's pack names)\n", r.Board)
	}
	for _, sl := range r.Slots {
		state := ""
		switch {
		case sl.Name == r.Active && sl.Name == r.Tryboot:
			state = ": boots"
		case sl.Name == r.Active:
			state = ": boots"
			if r.Tryboot != "" {
				state += " (tryboot boots slot " + r.Tryboot + " once)"
			}
		case sl.Name == r.Tryboot:
			state = ": boots once after reboot \"0 tryboot\""
		}
		fmt.Fprintf(w, "slot %s: boot partition %d, root partition %d%s\n", sl.Name, sl.Boot, sl.Root, state)
	}
	for _, p := range r.Partitions {
		v := p.Verity
		if v == nil {
			continue
		}
		state := "verified, every block matches"
		switch {
		case v.Error != "":
			state = "FAILED: " + v.Error
		case !v.Verified:
			state = "empty, nothing to verify yet"
		}
		slot := ""
		if p.Slot != "" {
			slot = " (slot " + p.Slot + ")"
		}
		fmt.Fprintf(w, "root partition %d%s: dm-verity root hash %s: %s\n", p.Number, slot, v.RootHash, state)
	}
	for _, bl := range r.Blobs {
		state := "present"
		if !bl.Present {
			state = "MISSING (zeros)"
		}
		fmt.Fprintf(w, "blob at %s: %s, %s\n", bytesize.Human(bl.Offset), bl.File, state)
	}
	if r.Boot == nil {
		return
	}
	fmt.Fprintf(w, "boot files on partition %d:\n", r.Boot.Partition)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	overlays, overlayBytes := 0, int64(0)
	files := slices.Clone(r.Boot.Files)
	order := []string{"kernel", "initramfs", "config", "dtb", "overlay", "firmware", "bootloader"}
	slices.SortStableFunc(files, func(a, b inspect.BootFile) int {
		return slices.Index(order, a.Kind) - slices.Index(order, b.Kind)
	})
	for _, f := range files {
		if f.Kind == "overlay" {
			overlays++
			overlayBytes += f.Size
			continue
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", f.Kind, f.Path, bytesize.Human(f.Size))
	}
	if overlays > 0 {
		fmt.Fprintf(tw, "  overlay\t%d device tree overlays\t%s\n", overlays, bytesize.Human(overlayBytes))
	}
	tw.Flush()
	if r.Boot.Cmdline != "" {
		fmt.Fprintf(w, "kernel command line (%s):\n  %s\n", r.Boot.CmdlineFrom, r.Boot.Cmdline)
	} else {
		fmt.Fprintln(w, "kernel command line: not found")
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printListing(w io.Writer, l *inspect.Listing) {
	rows := make([][]string, len(l.Entries))
	widths := make([]int, 4)
	for i, en := range l.Entries {
		size := fmt.Sprint(en.Size)
		if en.Type == "char" || en.Type == "block" {
			size = fmt.Sprintf("%d, %d", en.Major, en.Minor)
		}
		rows[i] = []string{fmt.Sprint(en.Links), fmt.Sprint(en.UID), fmt.Sprint(en.GID), size}
		for j, c := range rows[i] {
			widths[j] = max(widths[j], len(c))
		}
	}
	for i, en := range l.Entries {
		name := en.Name
		if en.Target != "" {
			name += " -> " + en.Target
		}
		r := rows[i]
		fmt.Fprintf(w, "%s %*s %-*s %-*s %*s %s %s\n", en.LsMode(), widths[0], r[0], widths[1], r[1], widths[2], r[2],
			widths[3], r[3], en.Mtime.UTC().Format("2006-01-02 15:04"), name)
	}
}
