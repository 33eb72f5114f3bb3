package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ocidisk/ocidisk/internal/bytesize"
	"github.com/ocidisk/ocidisk/source"
)

func cacheCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "cache du|prune",
		Short: "show what the cache of blobs and uncompressed layers holds, or remove its least recently used entries",
		Args:  exactArgs(0, "du or prune"),
		RunE:  func(*cobra.Command, []string) error { return usagef("want du or prune") },
	}
	c.AddCommand(cacheDuCommand(e), cachePruneCommand(e))
	return c
}

func cacheDuCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "du",
		Short: "list the cache's entries, least recently used first, with the space each takes and when a build last used it, then the total",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(*cobra.Command, []string) error {
			dir, err := source.CacheDir(source.Options{})
			if err != nil {
				return err
			}
			ents, err := source.CacheEntries(dir)
			if err != nil {
				return fmt.Errorf("cache %s: %w", dir, err)
			}
			var total int64
			if len(ents) > 0 {
				fmt.Fprintf(e.stdout, "%-16s  %-6s  %10s  %s\n", "LAST USE (UTC)", "KIND", "SIZE", "DIGEST")
			}
			for _, en := range ents {
				total += en.Size
				fmt.Fprintf(e.stdout, "%-16s  %-6s  %10s  %s\n", en.LastUse.UTC().Format("2006-01-02 15:04"), en.Kind, bytesize.Human(en.Size), en.Digest)
			}
			fmt.Fprintf(e.stdout, "total %s in %d entries, in %s (%s)\n", bytesize.Human(total), len(ents), dir,
				describeBound(source.CacheMaxSize(source.Options{}, dir)))
			return nil
		},
	}
}

func cachePruneCommand(e *env) *cobra.Command {
	var olderThan string
	var maxSize int64
	opts := []option{
		{flag: "older-than", arg: "D", usage: "remove the entries not used for this long (e.g. 72h or 30d)", value: newString(&olderThan, "", func(s string) error {
			_, err := parseAge(s)
			return err
		})},
		{flag: "max-size", arg: "S", usage: "then remove the least recently used entries until the cache takes at most S (e.g. 5GiB); with neither flag, prune to the bound builds keep",
			value: newSize(&maxSize, 0, "a size such as 5GiB", nil)},
	}
	c := &cobra.Command{
		Use:   "prune [flags]",
		Short: "remove cache entries by age, then the least recently used ones by size; entries used in the last 10 minutes stay",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			dir, err := source.CacheDir(source.Options{})
			if err != nil {
				return err
			}
			po := source.PruneOptions{MaxSize: maxSize, InUseSince: time.Now().Add(-source.InUseMargin)}
			if olderThan != "" {
				po.OlderThan, _ = parseAge(olderThan)
			}
			if olderThan == "" && !c.Flags().Changed("max-size") {
				po.MaxSize = max(source.CacheMaxSize(source.Options{}, dir), 0)
			}
			if c.Flags().Changed("max-size") && maxSize <= 0 {
				return usagef("--max-size: want a size above 0")
			}
			removed, err := source.PruneCache(dir, po)
			var freed int64
			for _, en := range removed {
				freed += en.Size
				e.log.Debug("removed", "entry", en.Path, "bytes", en.Size, "last use", en.LastUse)
			}
			if err != nil {
				return fmt.Errorf("cache %s: %w", dir, err)
			}
			left, err := source.CacheEntries(dir)
			if err != nil {
				return fmt.Errorf("cache %s: %w", dir, err)
			}
			var total int64
			for _, en := range left {
				total += en.Size
			}
			if !e.quiet {
				fmt.Fprintf(e.stdout, "removed %d entries, %s; %s left in %d entries, in %s (entries used in the last %s are kept)\n",
					len(removed), bytesize.Human(freed), bytesize.Human(total), len(left), dir, source.InUseMargin)
			}
			return nil
		},
	}
	declare(c.Flags(), opts)
	return withSynopsis(c, opts, "")
}

// describeBound says how large builds let the cache grow.
func describeBound(bound int64) string {
	if bound < 0 {
		return "no bound"
	}
	return "builds keep it under " + bytesize.Human(bound)
}

// parseAge parses a duration as Go writes them (90m, 72h), or a number of
// days (30d).
func parseAge(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(d, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("want a duration such as 72h or 30d")
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want a duration such as 72h or 30d")
	}
	return d, nil
}
