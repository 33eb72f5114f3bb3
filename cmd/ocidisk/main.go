// Command ocidisk turns OCI container images into bootable disk images for
// ARM boards and boots them under QEMU.
//
// This package holds flags, subcommands, terminal output and exit codes;
// everything a test would want to call lives in the library packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// Exit statuses: the command-line contract.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// command is one subcommand.
type command struct {
	name    string
	args    string // synopsis after the name, for usage
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

func commands() []command {
	return []command{
		// Each subcommand adds its line here once it works end to end.
		buildCommand(),
		testCommand(),
		runCommand(),
		flattenCommand(),
		boardsCommand(),
		flashCommand(),
		inspectCommand(),
	}
}

// env is what a subcommand gets from the process: its streams, a logger and
// whether stderr is a terminal (progress is drawn only then).
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	log            *slog.Logger
	tty            bool
	quiet, verbose bool
}

// usageError marks an error in how ocidisk was called: exit status 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, isTerminal(os.Stderr))
	stop()
	os.Exit(code)
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// run executes one ocidisk invocation and returns its exit status. Tests
// call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, tty bool) int {
	cmds := commands()
	if len(args) == 0 {
		printUsage(stderr, cmds)
		return exitUsage
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		// Help that was asked for goes to stdout, so that it pages and greps;
		// "help COMMAND" is "COMMAND --help".
		if args[0] != "help" || len(args) == 1 {
			printUsage(stdout, cmds)
			return exitOK
		}
		args = []string{args[1], "--help"}
	}
	var cmd *command
	for i := range cmds {
		if cmds[i].name == args[0] {
			cmd = &cmds[i]
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "ocidisk: unknown command %q (see ocidisk --help)\n", args[0])
		return exitUsage
	}
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, tty: tty}
	e.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	err := cmd.run(ctx, e, args[1:])
	if errors.Is(err, pflag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "ocidisk: %s: %s\n", cmd.name, oneLine(err.Error()))
		var u usageError
		if errors.As(err, &u) {
			return exitUsage
		}
		return exitFailure
	}
	return exitOK
}

// oneLine keeps an error on one line so that scripts can grep it.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

func printUsage(w io.Writer, cmds []command) {
	fmt.Fprintln(w, "ocidisk turns OCI container images into bootable disk images for ARM boards.")
	fmt.Fprintln(w, "\nUsage:")
	for _, c := range cmds {
		fmt.Fprintf(w, "  ocidisk %s %s\n      %s\n", c.name, c.args, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'ocidisk COMMAND --help' for a command's flags. Exit status: 0 success, 1 failure, 2 usage error.")
}

// newFlags returns a flag set for a subcommand with the flags every command
// shares (--quiet, --verbose); parse it with parseFlags.
func newFlags(e *env, name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	// With ContinueOnError pflag prints only the help that -h asks for.
	fs.SetOutput(e.stdout)
	fs.SortFlags = false
	fs.BoolVarP(&e.quiet, "quiet", "q", false, "print only errors")
	fs.BoolVarP(&e.verbose, "verbose", "v", false, "log each step")
	fs.Usage = func() {
		w := fs.Output()
		for _, c := range commands() {
			if c.name == name {
				fmt.Fprintf(w, "Usage: ocidisk %s %s\n\n%s.\n", c.name, c.args, c.summary)
				if strings.Contains(c.args, "SOURCE") {
					fmt.Fprint(w, "\nSOURCE: REF, docker://REF, oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG],\n"+
						"docker-archive:FILE[:REF], tar:FILE (plain, gz, zst, xz), deb:FILE, dir:DIR\n")
				}
			}
		}
		fmt.Fprintf(w, "\nFlags:\n%s", fs.FlagUsages())
	}
	return fs
}

// parseFlags parses args and applies --quiet/--verbose to the logger. Flag
// errors are usage errors.
func parseFlags(e *env, fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	level := slog.LevelInfo
	if e.quiet {
		level = slog.LevelError
	}
	if e.verbose {
		level = slog.LevelDebug
	}
	if !e.tty && !e.verbose {
		level = max(level, slog.LevelWarn)
	}
	e.log = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	return nil
}
