package config

import (
	"bufio"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// FromUCI converts the first `config natreveal` section of an OpenWrt UCI
// file (/etc/config/natreveal) into the YAML configuration `run` reads.
// Option names are the YAML keys with dots as underscores
// (hostid_key_file: hostid.key_file); `list` options become sequences.
// Options of the init script (enabled, respawn_*) are skipped; an unknown
// option is an error naming it, as an unknown key in a YAML file is.
func FromUCI(r io.Reader) ([]byte, error) {
	byName := map[string]string{}
	for _, k := range keyList {
		byName[strings.ReplaceAll(k.Name, ".", "_")] = k.Name
	}
	skip := map[string]bool{"enabled": true, "respawn_threshold": true, "respawn_timeout": true, "respawn_retry": true}

	vals := map[string][]string{}
	in, found := false, false
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		f, err := uciFields(sc.Text())
		if err != nil {
			return nil, bad("uci", "line %d: %v", n, err)
		}
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "package":
			continue
		case "config":
			if len(f) < 2 {
				return nil, bad("uci", "line %d: config without a type", n)
			}
			if in = f[1] == "natreveal"; !in {
				continue // another package's section: not ours to read
			}
			// One section, named main: the init script reads enabled from
			// it, so any other would convert but never start the service.
			if found {
				return nil, bad("uci", "a second `config natreveal` section; natreveal reads one, named main (line %d)", n)
			}
			if len(f) < 3 || f[2] != "main" {
				return nil, bad("uci", "name the section main (config natreveal 'main'): the init script reads enabled from it (line %d)", n)
			}
			found = true
			continue
		case "option", "list":
			if len(f) != 3 {
				return nil, bad("uci", "line %d: want %s NAME VALUE", n, f[0])
			}
		default:
			return nil, bad("uci", "line %d: unknown statement %q", n, f[0])
		}
		if !in || skip[f[1]] {
			continue
		}
		key, ok := byName[f[1]]
		if !ok {
			return nil, bad(f[1], "unknown UCI option (line %d)", n)
		}
		if f[0] == "list" {
			if !isList(key) {
				return nil, bad(f[1], "takes one value: write option %s, not list (line %d)", f[1], n)
			}
			vals[key] = append(vals[key], f[2])
		} else {
			vals[key] = []string{f[2]}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, bad("uci", "%v", err)
	}
	if !found {
		return nil, bad("uci", "no `config natreveal` section")
	}

	// Emit nested YAML, sections sorted; every scalar quoted except booleans.
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# generated from UCI by natreveal uci2yaml: edit /etc/config/natreveal instead\n")
	section := ""
	for _, k := range keys {
		name, indent := k, ""
		if i := strings.IndexByte(k, '.'); i >= 0 {
			if k[:i] != section {
				section = k[:i]
				b.WriteString(section + ":\n")
			}
			name, indent = k[i+1:], "  "
		} else {
			section = ""
		}
		v, val := vals[k], ""
		switch {
		case isList(k):
			var items []string
			for _, x := range v {
				// A list option may also hold "a b" or "a,b" (UCI habit); config splits.
				items = append(items, strconv.Quote(x))
			}
			val = "[" + strings.Join(items, ", ") + "]"
		case isBool(k):
			bv, err := uciBool(v[0])
			if err != nil {
				return nil, bad(k, "%v", err)
			}
			val = strconv.FormatBool(bv)
		default:
			val = strconv.Quote(v[0])
		}
		b.WriteString(indent + name + ": " + val + "\n")
	}
	return []byte(b.String()), nil
}

func isList(k string) bool { return keyKind(k) == reflect.Slice }
func isBool(k string) bool { return keyKind(k) == reflect.Bool }

func keyKind(name string) reflect.Kind {
	if t := keyType(name); t != nil {
		return t.Kind()
	}
	return reflect.Invalid
}

// uciBool reads UCI's boolean spellings (config_get_bool).
func uciBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "1", "on", "true", "yes", "enabled":
		return true, nil
	case "0", "off", "false", "no", "disabled":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a UCI boolean (0/1, on/off, true/false, yes/no)", s)
}

// uciFields splits a UCI line into words: 'single' and "double" quotes,
// backslash escapes outside single quotes, # comments.
func uciFields(line string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '#' && !inWord:
			return out, nil
		case c == ' ' || c == '\t' || c == '\r':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated quote")
			}
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) {
					i++
				}
				cur.WriteByte(line[i])
			}
			if i >= len(line) {
				return nil, fmt.Errorf("unterminated quote")
			}
			inWord = true
		case c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}
