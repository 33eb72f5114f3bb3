package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// buildVersion is what the binary says it is: the module version and the
// VCS revision and time it was built from, as the Go toolchain records
// them.
type buildVersion struct {
	Module, Revision, Time, Go string
	Modified                   bool
}

func version() buildVersion {
	v := buildVersion{Module: "(devel)"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v.Go = bi.GoVersion
	if bi.Main.Version != "" {
		v.Module = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func (v buildVersion) String() string {
	s := "ocidisk " + v.Module
	if v.Revision != "" {
		s += ", revision " + v.Revision
		if v.Modified {
			s += " (modified)"
		}
	}
	if v.Time != "" {
		s += ", " + v.Time
	}
	if v.Go != "" {
		s += ", " + v.Go
	}
	return s
}

func versionCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version of ocidisk, the revision it was built from and the Go that built it",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintln(e.stdout, version())
			return nil
		},
	}
}
