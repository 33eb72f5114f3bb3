package main

import (
	"strings"
	"testing"
)

// TestUsage holds the contract's exit statuses for how ocidisk is called,
// and where its help goes: asked for, to stdout; after a mistake, to stderr.
func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args           []string
		code           int
		stdout, stderr string // substrings expected; "" expects the stream empty
	}{
		{nil, exitUsage, "", "Usage:"},
		{[]string{"--help"}, exitOK, "Usage:", ""},
		{[]string{"-h"}, exitOK, "Usage:", ""},
		{[]string{"help"}, exitOK, "Usage:", ""},
		{[]string{"help", "build"}, exitOK, "--root-size", ""},
		{[]string{"help", "frob"}, exitUsage, "", `unknown command "frob"`},
		{[]string{"frob"}, exitUsage, "", `unknown command "frob"`},
		{[]string{"build", "--help"}, exitOK, "--compress", ""},
		{[]string{"flatten", "-h"}, exitOK, "--format", ""},
		{[]string{"build"}, exitUsage, "", "want one SOURCE"},
		{[]string{"build", "--bogus", "x"}, exitUsage, "", "unknown flag: --bogus"},
		{[]string{"build", "--table", "apm", "oci:x"}, exitUsage, "", "--table"},
		{[]string{"flatten", "--format", "zip", "-o", "x", "oci:x"}, exitUsage, "", "--format"},
		{[]string{"test", "--timeout", "soon", "x.img"}, exitUsage, "", "--timeout"},
		// Shell completion, cobra's scripts.
		{[]string{"completion", "bash"}, exitOK, "bash completion V2 for ocidisk", ""},
		{[]string{"completion", "zsh"}, exitOK, "#compdef ocidisk", ""},
		{[]string{"completion", "fish"}, exitOK, "complete -c ocidisk", ""},
		{[]string{"completion"}, exitUsage, "", "name a shell: bash, fish, powershell or zsh"},
		{[]string{"completion", "tcsh"}, exitUsage, "", `unknown shell "tcsh"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tc.code, errOut)
			}
			for _, s := range []struct{ name, got, want string }{{"stdout", out, tc.stdout}, {"stderr", errOut, tc.stderr}} {
				if s.want == "" && s.got != "" {
					t.Errorf("%s: %q, want nothing", s.name, s.got)
				}
				if !strings.Contains(s.got, s.want) {
					t.Errorf("%s: %q, want it to contain %q", s.name, s.got, s.want)
				}
			}
		})
	}
}
