package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/natreveal/natreveal/config"
)

// tree is a small binary: a leaf with a flag, a group with one subcommand.
func tree() *cobra.Command {
	root := &cobra.Command{Use: "tool"}
	run := &cobra.Command{Use: "run", Args: cobra.NoArgs, RunE: func(*cobra.Command, []string) error { return nil }}
	run.Flags().Int("n", 1, "a number")
	fail := &cobra.Command{Use: "fail", Args: cobra.NoArgs, RunE: func(*cobra.Command, []string) error { return errors.New("it broke") }}
	bad := &cobra.Command{Use: "bad", Args: cobra.NoArgs, RunE: func(*cobra.Command, []string) error {
		return &config.Error{Key: "inside", Msg: "required"}
	}}
	group := &cobra.Command{Use: "rules"}
	group.AddCommand(&cobra.Command{Use: "print", Args: cobra.NoArgs, RunE: func(*cobra.Command, []string) error { return nil }})
	root.AddCommand(run, fail, bad, group)
	Prepare(root, "1.2.3")
	return root
}

func TestRunExitCodes(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		out  string // stdout, or the one stderr line's start
	}{
		{[]string{"--version"}, 0, "tool 1.2.3\n"},
		{[]string{"version"}, 0, "tool 1.2.3\n"},
		{[]string{"run", "--n", "3"}, 0, ""},
		{[]string{"fail"}, 1, "tool: it broke"},
		{[]string{"bad"}, 2, "tool: inside: required"},
		{[]string{"--verison"}, 2, "tool: unknown flag: --verison"},
		{[]string{"run", "--bogus"}, 2, "tool: unknown flag: --bogus"},
		{[]string{"run", "--n", "x"}, 2, `tool: invalid argument "x" for "--n" flag`},
		{[]string{"run", "extra"}, 2, `tool: unknown command "extra" for "tool run"`},
		{[]string{"rn"}, 2, `tool: unknown command "rn" for "tool"; did you mean "run"?`},
		{[]string{"zzz"}, 2, `tool: unknown command "zzz" for "tool"; see "tool --help"`},
		{[]string{"rules", "prnt"}, 2, `tool: unknown command "prnt" for "tool rules"; did you mean "print"?`},
		{[]string{"version", "x"}, 2, `tool: version: takes no arguments (got "x")`},
	} {
		root := tree()
		var stdout, stderr bytes.Buffer
		root.SetOut(&stdout)
		code := Run(root, c.args, &stderr)
		if code != c.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", c.args, code, c.code, stderr.String())
		}
		if c.code == 0 {
			if stdout.String() != c.out || stderr.Len() != 0 {
				t.Errorf("%v: stdout %q stderr %q, want stdout %q", c.args, stdout.String(), stderr.String(), c.out)
			}
			continue
		}
		if lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], c.out) {
			t.Errorf("%v: stderr %q, want one line starting %q", c.args, stderr.String(), c.out)
		}
	}
}

// A group without arguments prints its help and succeeds, as cobra does.
func TestGroupHelp(t *testing.T) {
	root := tree()
	var stdout, stderr bytes.Buffer
	root.SetOut(&stdout)
	if code := Run(root, []string{"rules"}, &stderr); code != 0 || !strings.Contains(stdout.String(), "print") {
		t.Errorf("rules: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}

func TestCode(t *testing.T) {
	for _, c := range []struct {
		err  error
		code int
	}{
		{nil, 0},
		{errors.New("x"), 1},
		{UsageErr(errors.New("x")), 2},
		{Failed(errors.New("x")), 1},
		{&config.Error{Key: "k", Msg: "m"}, 2},
		{errors.Join(errors.New("ctx"), &config.Error{Key: "k", Msg: "m"}), 2},
	} {
		if got := Code(c.err); got != c.code {
			t.Errorf("Code(%v) = %d, want %d", c.err, got, c.code)
		}
	}
}

// An error whose text spans lines is still printed as one.
func TestRunOneLine(t *testing.T) {
	root := &cobra.Command{Use: "tool", RunE: func(*cobra.Command, []string) error {
		return errors.New("first\n\tsecond")
	}}
	Prepare(root, "dev")
	var stderr bytes.Buffer
	if code := Run(root, nil, &stderr); code != 1 || stderr.String() != "tool: first second\n" {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}
