package main

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/pipeline"
)

func boardsCommand(e *env) *cobra.Command {
	var asJSON bool
	opts := []option{{flag: "json", usage: "print JSON for scripts", value: newBool(&asJSON, false)}}
	c := &cobra.Command{
		Use:   "boards [flags]",
		Short: "list the boards ocidisk knows (use one with --board NAME, or --board FILE.yaml for your own)",
		Args:  exactArgs(0, "no arguments (ocidisk boards show NAME shows one)"),
		RunE:  func(*cobra.Command, []string) error { return runBoards(e, asJSON) },
	}
	declare(c.Flags(), opts)
	c.AddCommand(boardsShowCommand(e))
	c.Long = "ocidisk boards show NAME prints one board's pack, to copy and edit."
	return withSynopsis(c, opts, "")
}

// boardJSON is a board as ocidisk boards --json lists it.
type boardJSON struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Arch        string          `json:"arch"`
	Platform    string          `json:"platform"`
	Table       string          `json:"table"`
	Partitions  []partitionJSON `json:"partitions"`
	// QEMU is the machine ocidisk test boots the image on, "" for none.
	QEMU string `json:"qemu"`
	// AB says how the firmware picks a slot ("shared", "per-slot"), ""
	// when the board cannot have slots.
	AB string `json:"ab"`
}

type partitionJSON struct {
	Name string `json:"name"`
	Role string `json:"role"`
	FS   string `json:"fs"`
	// Size in bytes; 0 sizes the partition to its content.
	Size int64 `json:"size"`
}

func runBoards(e *env, asJSON bool) error {
	bs, err := boards.Catalog()
	if err != nil {
		return err
	}
	if asJSON {
		out := []boardJSON{}
		for _, b := range bs {
			j := boardJSON{Name: b.Name, Description: b.Description, Arch: b.Arch, Platform: pipeline.Platform(b), Table: b.Disk.Table}
			for _, p := range b.Disk.Partitions {
				j.Partitions = append(j.Partitions, partitionJSON{Name: p.Name, Role: string(p.Role), FS: string(p.FS), Size: int64(p.Size)})
			}
			if b.QEMU != nil {
				j.QEMU = b.QEMU.Machine
			}
			if b.AB != nil {
				j.AB = b.AB.Boot
			}
			out = append(out, j)
		}
		return writeJSON(e.stdout, out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
	for _, b := range bs {
		fmt.Fprintf(tw, "%s\t%s\n", b.Name, b.Description)
	}
	return tw.Flush()
}

func boardsShowCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "print a board's pack as YAML, ready to copy, edit and use with --board FILE.yaml",
		Args:  exactArgs(1, "one board NAME"),
		RunE: func(_ *cobra.Command, args []string) error {
			data, err := boards.Pack(args[0])
			if errors.Is(err, boards.ErrUnknown) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			_, err = e.stdout.Write(data)
			return err
		},
	}
}
