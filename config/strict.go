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
	digits := strings.TrimLeft(t, "+-")
	if len(t)-len(digits) > 1 {
		return 0, fmt.Errorf("want an integer, got %q", s)
	}
	base := 10
	if h, ok := strings.CutPrefix(digits, "0x"); ok {
		digits, base = h, 16
	} else if h, ok := strings.CutPrefix(digits, "0X"); ok {
		digits, base = h, 16
	} else if len(digits) > 1 && digits[0] == '0' && strings.Trim(digits, "0123456789") == "" {
		return 0, fmt.Errorf("%q has a leading zero, which some tools read as octal: write it without (or as 0x hex)", s)
	}
	if digits == "" || strings.ContainsAny(digits, "+-_") {
		return 0, fmt.Errorf("want an integer (decimal, or hex after 0x), got %q", s)
	}
	u, err := strconv.ParseUint(digits, base, 64)
	if errors.Is(err, strconv.ErrRange) || err == nil && (u > 1<<63 || u == 1<<63 && t[0] != '-') {
		return 0, fmt.Errorf("%s is out of range", t)
	}
	if err != nil {
		return 0, fmt.Errorf("want an integer (decimal, or hex after 0x), got %q", s)
	}
	if t[0] == '-' {
		return int64(-u), nil
	}
	return int64(u), nil
}

// parseBool reads true or false, in any case.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
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
