package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// Integers and booleans are read strictly wherever they come from (file,
// environment, flag, UCI): an integer is decimal, or hex after 0x, and a
// leading zero is refused, since some tools read 010 as octal (8) and
// others as 10; a boolean is true or false. A value of another kind (7.9
// or true for an integer, 1 for a boolean) is an error naming the key.

// parseInt reads s strictly: [+-] then decimal digits without a leading
// zero, or 0x and hex digits.
func parseInt(s string) (int64, error) {
	t := strings.TrimSpace(s)
	d := strings.TrimLeft(t, "+-")
	n, err := strconv.ParseInt(t, 0, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("%s is out of range", t)
	}
	if err != nil || strings.IndexByte(d, '_') >= 0 || len(d) > 1 && d[0] == '0' && d[1]|0x20 != 'x' {
		return 0, fmt.Errorf("want an integer: decimal without a leading zero (which some read as octal), or hex after 0x; got %q", s)
	}
	return n, nil
}

// parseBool reads true or false, in any case.
func parseBool(s string) (bool, error) {
	t := strings.TrimSpace(s)
	if strings.EqualFold(t, "true") || strings.EqualFold(t, "false") {
		return len(t) == 4, nil
	}
	return false, fmt.Errorf("want true or false, got %q", s)
}

// intFlag is an integer key's flag, read by parseInt; pflag's own reads
// 010 as octal. Its Type is pflag's, so --help and viper see an int flag.
type intFlag struct {
	v    int64
	kind string // "int" or "int64"
}

func (f *intFlag) String() string { return strconv.FormatInt(f.v, 10) }
func (f *intFlag) Type() string   { return f.kind }
func (f *intFlag) Set(s string) error {
	n, err := parseInt(s)
	if err == nil && f.kind == "int" && int64(int(n)) != n {
		err = fmt.Errorf("%s is out of range", strings.TrimSpace(s))
	}
	if err != nil {
		return err
	}
	f.v = n
	return nil
}

// boolFlag is a boolean key's flag: --name alone is true, else
// --name=true or --name=false (pflag's own takes 1, t, F...).
type boolFlag struct{ v bool }

func (f *boolFlag) String() string   { return strconv.FormatBool(f.v) }
func (f *boolFlag) Type() string     { return "bool" }
func (f *boolFlag) IsBoolFlag() bool { return true }
func (f *boolFlag) Set(s string) (err error) {
	f.v, err = parseBool(s)
	return err
}

var _ pflag.Value = (*intFlag)(nil)
