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

	"github.com/ocidisk/ocidisk/internal/heapgoal"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// Exit statuses: the command-line contract. 2 means the command line or a
// build file is malformed; 1 everything found wrong while working.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// env is what a subcommand gets from the process: its streams, a logger and
// whether stderr is a terminal (progress is drawn only then).
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	log            *slog.Logger
	tty            bool
	quiet, verbose bool
	logFormat      string
	// status is the terminal's progress line, which log lines are written
	// above; nil when stderr is not a terminal.
	status *progress
}

// progress returns the progress line to draw on, or nil when none is
// drawn (no terminal, or -q).
func (e *env) progress() *progress {
	if e.quiet {
		return nil
	}
	return e.status
}

// usageError marks an error in how ocidisk was called: exit status 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func main() {
	heapgoal.Install(heapgoal.Default)
	// A signal that ends the process (Ctrl-C, kill, a closed terminal)
	// cancels the command, which removes its temporaries and partial
	// outputs as it returns. A second signal ends the process at once;
	// the next run sweeps what it left.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, isTerminal(os.Stderr))
	stop()
	os.Exit(code)
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// run executes one ocidisk invocation and returns its exit status. Tests
// call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, tty bool) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, tty: tty}
	if tty {
		e.status = newProgress(stderr)
		defer e.status.done()
	}
	e.log = newLogger(e)
	root := rootCommand(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	name := strings.TrimPrefix(cmd.CommandPath(), "ocidisk ")
	if cmd == root {
		fmt.Fprintf(stderr, "ocidisk: %s\n", oneLine(err.Error()))
	} else {
		fmt.Fprintf(stderr, "ocidisk: %s: %s\n", name, oneLine(err.Error()))
	}
	var u usageError
	if errors.As(err, &u) {
		return exitUsage
	}
	return exitFailure
}

// oneLine keeps an error on one line so that scripts can grep it.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// rootCommand is ocidisk and its subcommands.
func rootCommand(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "ocidisk",
		Short: "ocidisk turns OCI container images into bootable disk images for ARM boards.",
		// Without a subcommand: usage on stderr and exit 2; an unknown
		// one gets suggestions.
		Args: cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				printUsage(e.stderr, c)
				return usageError{errors.New("no command given")}
			}
			return unknownCommand(c, args[0])
		},
		SilenceErrors:     true,
		SilenceUsage:      true,
		Version:           version().String(),
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	var help bool
	declare(root.PersistentFlags(), []option{
		{flag: "quiet", short: "q", usage: "print only errors", value: newBool(&e.quiet, false)},
		{flag: "verbose", short: "v", usage: "log each step", value: newBool(&e.verbose, false)},
		{flag: "log-format", arg: strings.Join(logFormats, "|"), usage: "how log lines look: human on a terminal and logfmt elsewhere (auto), or as named",
			value: newChoice(&e.logFormat, "auto", logFormats, nil)},
		{flag: "help", short: "h", usage: "show this help", value: newBool(&help, false)},
	})
	root.PersistentPreRun = func(*cobra.Command, []string) { e.log = newLogger(e) }
	root.SetFlagErrorFunc(flagError)
	root.SetHelpFunc(func(c *cobra.Command, _ []string) { printHelp(c.OutOrStdout(), c) })
	root.SetHelpCommand(helpCommand(e))
	root.SuggestionsMinimumDistance = 2
	root.AddCommand(
		buildCommand(e),
		testCommand(e),
		runCommand(e),
		flattenCommand(e),
		commitCommand(e),
		boardsCommand(e),
		flashCommand(e),
		inspectCommand(e),
		cacheCommand(e),
		versionCommand(e),
	)
	completionArgs(e, root)
	return root
}

// completionArgs makes "ocidisk completion" without a shell, or with one
// cobra does not know, a usage error; cobra's own shows its help and
// exits 0.
func completionArgs(e *env, root *cobra.Command) {
	// cobra's completion commands write where the root writes when they
	// are made.
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.InitDefaultCompletionCmd()
	c, _, err := root.Find([]string{"completion"})
	if err != nil || c.Name() != "completion" {
		return
	}
	var shells []string
	for _, s := range c.Commands() {
		shells = append(shells, s.Name())
	}
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			printUsage(e.stderr, c)
			return usagef("name a shell: %s", orList(shells))
		}
		return usagef("unknown shell %q: want %s", args[0], orList(shells))
	}
}

// flagError is the usage error for a flag the command line got wrong:
// `--table "apm": want mbr or gpt`.
func flagError(_ *cobra.Command, err error) error {
	var iv *pflag.InvalidValueError
	if errors.As(err, &iv) {
		if isSecret(iv.GetFlag().Value) {
			return usagef("--%s: %v", iv.GetFlag().Name, iv.Unwrap())
		}
		return usagef("--%s %q: %v", iv.GetFlag().Name, iv.GetValue(), iv.Unwrap())
	}
	return usageError{err}
}

// unknownCommand is the usage error for a command ocidisk does not have,
// with the closest ones it does.
func unknownCommand(root *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q (see ocidisk --help)", name)
	if s := root.SuggestionsFor(name); len(s) > 0 {
		msg += "; did you mean " + orList(s) + "?"
	}
	return usageError{errors.New(msg)}
}

// helpCommand is "ocidisk help [COMMAND]": help to stdout, and an unknown
// COMMAND a usage error.
func helpCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND]",
		Short: "show help for ocidisk or one of its commands",
		Args:  cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			root := c.Root()
			if len(args) == 0 {
				printHelp(e.stdout, root)
				return nil
			}
			sub, rest, err := root.Find(args)
			if err != nil || sub == root || len(rest) > 0 {
				return unknownCommand(root, strings.Join(args, " "))
			}
			printHelp(e.stdout, sub)
			return nil
		},
	}
}

// sourceHelp lists the SOURCE spellings, for the help of commands that
// take one.
const sourceHelp = "SOURCE: PATH (a layout, archive, tar, .deb or directory: told by what it is), REF, docker://REF,\n" +
	"oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG], docker-archive:FILE[:REF], tar:FILE (plain, gz, zst, xz),\n" +
	"deb:FILE, dir:DIR\n"

// printUsage prints the list of commands.
func printUsage(w io.Writer, root *cobra.Command) {
	fmt.Fprintln(w, root.Short)
	fmt.Fprintln(w, "\nUsage:")
	for _, c := range root.Commands() {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		fmt.Fprintf(w, "  ocidisk %s %s\n      %s\n", c.Name(), synopsisOf(c), c.Short)
	}
	fmt.Fprintln(w, "\nAlso: ocidisk help COMMAND, ocidisk completion bash|zsh|fish, ocidisk --version.")
	fmt.Fprintln(w, "Run 'ocidisk COMMAND --help' for a command's flags. Exit status: 0 success, 1 failure, 2 usage error.")
}

// printHelp prints a command's help: its synopsis, what it does and its
// flags; the root's is the list of commands.
func printHelp(w io.Writer, c *cobra.Command) {
	if !c.HasParent() {
		printUsage(w, c)
		return
	}
	fmt.Fprintf(w, "Usage: %s %s\n\n%s.\n", c.CommandPath(), synopsisOf(c), c.Short)
	if c.Long != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.Long))
	}
	if strings.Contains(c.Use, "SOURCE") {
		fmt.Fprint(w, "\n"+sourceHelp)
	}
	if fl := c.LocalFlags().FlagUsagesWrapped(120); fl != "" {
		fmt.Fprintf(w, "\nFlags:\n%s", fl)
	}
	if fl := c.InheritedFlags().FlagUsagesWrapped(120); fl != "" {
		fmt.Fprintf(w, "\nGlobal flags:\n%s", fl)
	}
}

// synopsisOf is a command's usage line after its name: the synopsis of
// its options (from their declaration) and its arguments.
func synopsisOf(c *cobra.Command) string {
	if s, ok := c.Annotations["synopsis"]; ok {
		return s
	}
	_, args, _ := strings.Cut(c.Use, " ")
	return args
}

// withSynopsis records a command's synopsis, built from its options.
func withSynopsis(c *cobra.Command, opts []option, args string) *cobra.Command {
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	parts := synopsis(opts)
	if args != "" {
		parts = append(parts, args)
	}
	c.Annotations["synopsis"] = wrap(parts, len("Usage: ocidisk ")+len(c.Name())+1)
	return c
}

// wrap joins the parts of a synopsis into lines of at most 110 columns,
// continued lines indented by indent.
func wrap(parts []string, indent int) string {
	var b strings.Builder
	col := indent
	for i, w := range parts {
		if i > 0 {
			if col+1+len(w) > 110 {
				b.WriteString("\n" + strings.Repeat(" ", indent))
				col = indent
			} else {
				b.WriteByte(' ')
				col++
			}
		}
		b.WriteString(w)
		col += len(w)
	}
	return b.String()
}

// exactArgs checks the number of arguments: a usage error naming what was
// wanted.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("want %s, got %d arguments", what, len(args))
		}
		return nil
	}
}
