// Package cli is what natreveal's binaries share around cobra: exit codes
// (0 done, 1 failed, 2 bad input), the one-line error, --version, and the
// loggers.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/natreveal/natreveal/config"
)

// Exit codes.
const (
	ExitFailed = 1 // the command could not do its job
	ExitUsage  = 2 // bad input: a flag, an argument, a configuration value
)

// ExitError carries a process exit code out of a command.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// UsageErr marks bad input: exit code 2.
func UsageErr(err error) error { return &ExitError{Code: ExitUsage, Err: err} }

// Failed marks a command that ran and failed: exit code 1.
func Failed(err error) error { return &ExitError{Code: ExitFailed, Err: err} }

// Code is the exit code of a command's error: 0 for nil, 2 for bad input
// (UsageErr, a config.Error), the ExitError's code, else 1.
func Code(err error) int {
	var ee *ExitError
	var ce *config.Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.Code
	case errors.As(err, &ce):
		return ExitUsage
	}
	return ExitFailed
}

// FlagErrorsAreUsage makes cmd's flag parsing errors (unknown flag, bad
// number) usage errors: exit 2. Prepare does it for a whole tree.
func FlagErrorsAreUsage(cmd *cobra.Command) {
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return UsageErr(err) })
}

// NoArgs is the argument check of a command that takes none, a usage
// error naming the command; cobra.NoArgs calls an argument an unknown
// command, which a command without subcommands has no use for.
//
//go:noinline
func NoArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	path := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
	return UsageErr(fmt.Errorf("%s: takes no arguments (got %q)", path, args[0]))
}

// Prepare readies a binary's command tree: errors are returned, not
// printed (Main prints one line); --version prints "NAME VERSION" as the
// version command does; every kind of bad input (an unknown flag, an
// unknown command, a wrong number of arguments) is a usage error, exit 2.
func Prepare(root *cobra.Command, version string) {
	root.SilenceUsage, root.SilenceErrors = true, true
	root.AddCommand(versionCmd(root.Name(), version))
	FlagErrorsAreUsage(root) // inherited by every subcommand without its own
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		switch {
		case c.HasSubCommands() && !c.Runnable():
			// A command group: without arguments its help, else an
			// unknown subcommand (cobra would print help and exit 0).
			c.Args = unknownSubcommand
			if c.SuggestionsMinimumDistance <= 0 {
				c.SuggestionsMinimumDistance = 2 // cobra's default
			}
			c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
		case c.Args != nil:
			args := c.Args
			c.Args = func(c *cobra.Command, a []string) error {
				if err := args(c, a); err != nil && Code(err) != ExitUsage {
					return UsageErr(err)
				} else if err != nil {
					return err
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	versionFlag(root, version)
}

// versionFlag gives root a --version flag that prints what the version
// command prints. Not cobra's own: its "NAME VERSION" form needs a
// SetVersionTemplate, and executing a text/template makes the linker keep
// every exported method of every type (reflect's MethodByName): about
// 2.7 MB of the mips router binary.
func versionFlag(root *cobra.Command, version string) {
	show := root.Flags().Bool("version", false, "print the version")
	run := root.RunE
	root.RunE = func(c *cobra.Command, args []string) error {
		if *show {
			_, err := fmt.Fprintln(c.OutOrStdout(), root.Name(), version)
			return err
		}
		if run != nil {
			return run(c, args)
		}
		return c.Help()
	}
}

// unknownSubcommand is a command group's argument check: one line, with
// cobra's suggestions ("did you mean") where it has any.
func unknownSubcommand(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		for i := range s {
			s[i] = strconv.Quote(s[i])
		}
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	} else {
		msg += fmt.Sprintf("; see %q", c.CommandPath()+" --help")
	}
	return UsageErr(errors.New(msg))
}

func versionCmd(name, version string) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), name, version)
		},
	}
}

// Run executes root with args and returns the exit code, after printing
// an error as one line, "NAME: error", to stderr.
func Run(root *cobra.Command, args []string, stderr io.Writer) int {
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	// Whatever a library wrapped in, the error stays one line.
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		msg = strings.Join(strings.Fields(msg), " ")
	}
	fmt.Fprintf(stderr, "%s: %s\n", root.Name(), msg)
	return Code(err)
}

// Main is a binary's main: Prepare, run with the process's arguments, exit.
func Main(root *cobra.Command, version string) {
	Prepare(root, version)
	os.Exit(Run(root, os.Args[1:], os.Stderr))
}
