package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ocidisk/ocidisk/boards"
)

func boardsCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "boards [flags]",
		Short: "list the boards ocidisk knows (use one with --board NAME, or --board FILE.yaml for your own)",
		Args:  exactArgs(0, "no arguments"),
		RunE:  func(*cobra.Command, []string) error { return runBoards(e) },
	}
	return c
}

func runBoards(e *env) error {
	bs, err := boards.Catalog()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
	for _, b := range bs {
		fmt.Fprintf(tw, "%s\t%s\n", b.Name, b.Description)
	}
	return tw.Flush()
}
