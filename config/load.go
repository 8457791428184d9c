package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/cast"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// Load reads the configuration: the defaults of Keys, then the file named by
// --config (or NATREVEAL_CONFIG), then NATREVEAL_* variables, then flags
// that were set. A key the file names but Keys lacks, and a value of the
// wrong kind, are rejected by the decoder; fromKeys checks the rest.
func Load(fs *pflag.FlagSet, getenv func(string) string) (*Config, error) {
	k, err := loadKeys(fs, getenv)
	if err != nil {
		return nil, err
	}
	c, err := fromKeys(k)
	if c != nil {
		c.File, _ = fs.GetString("config")
		if c.File == "" && getenv != nil {
			c.File = getenv(EnvPrefix + "_CONFIG")
		}
	}
	return c, err
}

// loadKeys merges defaults, file, environment and flags into Keys.
func loadKeys(fs *pflag.FlagSet, getenv func(string) string) (*Keys, error) {
	v := viper.New()
	for _, k := range keyList {
		v.SetDefault(k.Name, k.defaultValue())
	}
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	v.AllowEmptyEnv(true) // NATREVEAL_X= means the empty value, not the default
	for _, k := range keyList {
		if f := fs.Lookup(k.Flag); f != nil {
			if err := v.BindPFlag(k.Name, f); err != nil {
				return nil, fmt.Errorf("config: bind flag %s: %w", k.Flag, err)
			}
		}
	}
	var ferr error // checkFile's: reported after unknown keys
	file, _ := fs.GetString("config")
	if file == "" && getenv != nil {
		file = getenv(EnvPrefix + "_CONFIG")
	}
	if file != "" {
		fi, err := os.Stat(file)
		if err != nil {
			return nil, bad("config", "cannot read %s: %v", file, err)
		}
		// Whoever can write the file chooses what a root daemon runs with (its
		// key and map files, its listeners): refuse one any user can write.
		if fi.Mode().Perm()&0o002 != 0 {
			return nil, bad("config", "%s is writable by every user (mode %04o); remove that (chmod o-w)", file, fi.Mode().Perm())
		}
		// Read here, not with viper's ReadInConfig: its codec registry
		// would link every format viper knows (TOML, dotenv: about 320 KB
		// of the mips router binary) for the one natreveal reads.
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, bad("config", "cannot read %s: %v", file, err)
		}
		// Parsed once: the map for viper, the nodes for checkFile.
		var doc yaml.Node
		m := map[string]any{}
		err = yaml.Unmarshal(b, &doc)
		if err == nil && len(doc.Content) > 0 {
			err = doc.Decode(&m)
		}
		if err != nil {
			return nil, bad("config", "%s: %v", file, err)
		}
		if err := v.MergeConfigMap(m); err != nil {
			return nil, bad("config", "%s: %v", file, err)
		}
		ferr = checkFile(&doc)
	}
	var k Keys
	err := v.Unmarshal(&k, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true // a typo in a key must not fall back to a default
		dc.DecodeHook = decodeHook
	})
	if err != nil {
		err = decodeError(err, file)
	}
	if e, ok := err.(*Error); ok && strings.HasPrefix(e.Msg, "unknown key") {
		return nil, err // a typo first, as the likelier mistake
	}
	if ferr != nil {
		return nil, ferr // a null, or a number as written in the file
	}
	if err != nil {
		return nil, err
	}
	return &k, nil
}

var stringsType = reflect.TypeOf([]string(nil))

// decodeHook converts what viper holds for a key (a YAML value, an
// environment string, a flag's value) to its field's type, and says what it
// wanted when it cannot. Strings and lists take any scalar; integers and
// booleans only their own kind, or a string parseInt or parseBool reads
// (strict.go).
func decodeHook(from, to reflect.Type, data any) (any, error) {
	switch {
	case to == stringsType:
		return splitList(data)
	case to.Kind() == reflect.String:
		s, err := cast.ToStringE(data)
		if err != nil {
			return nil, fmt.Errorf("want a string, got %v", data)
		}
		return strings.TrimSpace(s), nil
	case to.Kind() == reflect.Int || to.Kind() == reflect.Int64:
		// An integer, or a string parseInt reads; a float or a boolean is
		// refused, not truncated or counted (a file's numbers are checked
		// as written first: checkFile).
		n, err := parseInt(fmt.Sprint(data))
		if err == nil && reflect.Zero(to).OverflowInt(n) {
			err = fmt.Errorf("%d is out of range", n)
		}
		if err != nil {
			return nil, err
		}
		return n, nil
	case to.Kind() == reflect.Bool:
		return parseBool(fmt.Sprint(data))
	}
	return data, nil
}

// splitList reads a list given as a YAML sequence, a flag slice or an
// environment string; elements may also be comma- or space-separated.
func splitList(data any) ([]string, error) {
	var items []string
	switch x := data.(type) {
	case nil:
	case string:
		items = []string{x}
	case []string:
		items = x
	case []any:
		for _, e := range x {
			s, err := cast.ToStringE(e)
			if err != nil {
				return nil, fmt.Errorf("list element %v is not a string", e)
			}
			items = append(items, s)
		}
	default:
		return nil, fmt.Errorf("want a list, got %T", data)
	}
	out := []string{}
	for _, it := range items {
		out = append(out, strings.FieldsFunc(it, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })...)
	}
	return out, nil
}

// decodeError turns the decoder's error into one *Error naming a key: an
// unknown key first (as a typo is the likelier mistake), else the first
// value of the wrong kind.
func decodeError(err error, file string) error {
	var unknown, wrong *Error // the first unknown key by name; the first wrong value
	for _, de := range decodeErrors(err) {
		msg := de.Unwrap().Error()
		if names, ok := strings.CutPrefix(msg, "has invalid keys: "); ok {
			for _, n := range strings.Split(names, ", ") {
				if de.Name() != "" {
					n = de.Name() + "." + n
				}
				if unknown == nil || n < unknown.Key {
					m := "unknown key"
					if file != "" {
						m += " in " + file
					}
					unknown = bad(n, "%s", m)
				}
			}
			continue
		}
		if wrong != nil {
			continue
		}
		if isKey(de.Name()) {
			wrong = bad(de.Name(), "%s", msg)
		} else {
			// a section given as a scalar, e.g. "queue: 5"
			wrong = bad(de.Name(), "want a mapping of its keys: %s", msg)
		}
	}
	if unknown != nil {
		return unknown
	}
	if wrong != nil {
		return wrong
	}
	return bad("config", "%v", err)
}

// decodeErrors flattens the decoder's joined errors.
func decodeErrors(err error) []*mapstructure.DecodeError {
	if de, ok := err.(*mapstructure.DecodeError); ok {
		return []*mapstructure.DecodeError{de}
	}
	var out []*mapstructure.DecodeError
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, decodeErrors(e)...)
		}
	} else if e := errors.Unwrap(err); e != nil {
		out = append(out, decodeErrors(e)...)
	}
	return out
}

func isKey(name string) bool { return keyKind(name) != reflect.Invalid }
