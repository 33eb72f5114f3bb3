package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/ocidisk/ocidisk/boards"
)

func boardsCommand() command {
	return command{
		name:    "boards",
		args:    "",
		summary: "list the boards ocidisk knows (use one with --board NAME, or --board FILE.yaml for your own)",
		run:     runBoards,
	}
}

func runBoards(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "boards")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("boards takes no arguments")
	}
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
