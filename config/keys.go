package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/natreveal/natreveal/method/all"
)

// Keys is every configuration key, as a file, the environment and the
// command line spell it. It is the one place a key is declared: its name
// (the mapstructure tag, nested by section), its default, its flag and its
// help text all come from here, and so do viper's defaults, the flags, the
// NATREVEAL_* variables, the file's schema (a key not here is rejected by
// the decoder), the UCI option names and docs/configuration.md.
//
// Tags of a leaf field:
//
//	mapstructure  the key's name within its section
//	default       the default, as a flag would spell it (lists comma-separated)
//	flag          the flag's name when it is not the key with '.' and '_' as '-'
//	type          the value's kind in the documentation, when not the Go kind
//	arg           the flag's argument name in --help, a word of help
//	help          what the key means; {methods} lists the methods
//
// Values are checked, and turned into Config, by fromKeys (validate.go).
type Keys struct {
	Inside    []string `mapstructure:"inside" type:"list of prefixes" arg:"prefixes" help:"inside IPv4 and IPv6 prefixes whose hosts get a HOST_ID (required)"`
	Methods   []string `mapstructure:"methods" type:"list of methods" arg:"methods" help:"methods to enable, one or more of: {methods}"`
	Placement string   `mapstructure:"placement" default:"pre-nat" help:"where packets are queued: pre-nat (inside source visible) or post-nat (source carried in the packet mark)"`
	Table     string   `mapstructure:"table" default:"natreveal" arg:"name" help:"name of the nftables tables natreveal installs (families ip and ip6)"`

	HostID struct {
		Source  string `mapstructure:"source" default:"lower16" help:"HOST_ID source: lower16, address, hash, map"`
		KeyFile string `mapstructure:"key_file" arg:"file" help:"key file of the hash source (16 bytes or 32 hex digits)"`
		MapFile string `mapstructure:"map_file" arg:"file" help:"map file of the map source"`
	} `mapstructure:"hostid"`

	all.Keys `mapstructure:",squash"` // the methods' blocks, each under its section (method/all)

	MappingLog struct {
		File        string `mapstructure:"file" flag:"mapping-log" arg:"file" help:"log each translation (conntrack new/destroy) as JSON lines to this file, - for standard output (RFC 6888 §4)"`
		Destination bool   `mapstructure:"destination" default:"false" help:"include the destination in the mapping log (off by default, RFC 6888 §4)"`
	} `mapstructure:"mapping_log"`

	Queue struct {
		Num      int  `mapstructure:"num" default:"0" help:"first NFQUEUE number: queues num .. num+count-1, and num+count .. num+2*count-1 for selected flows (http-header, proxy-protocol)"`
		Count    int  `mapstructure:"count" default:"0" help:"number of queues (fan-out by CPU; 0: one per CPU, each served by a thread pinned to it); with http-header or proxy-protocol as many again follow for selected flows, always fail closed"`
		FailOpen bool `mapstructure:"fail_open" default:"true" help:"the kernel accepts packets unmarked instead of dropping them when a queue is full (NFQA_CFG_F_FAIL_OPEN); selected flows' queues always drop"`
		MaxLen   int  `mapstructure:"max_len" default:"4096" help:"packets the kernel holds per queue at most"`
		Workers  int  `mapstructure:"workers" default:"0" help:"packet workers, spread over the queues, at least one each (0: one per CPU; as many again for selected flows' queues)"`
		Backlog  int  `mapstructure:"backlog" default:"1024" help:"packets waiting for a worker at most (as many again for selected flows' queues); past that, a packet is accepted unchanged (dropped with fail_open false, and always for selected flows)"`
	} `mapstructure:"queue"`

	Flows struct {
		Max int `mapstructure:"max" default:"65536" help:"flows the packet path follows at most (tracked and selected flows)"`
	} `mapstructure:"flows"`

	Marks struct {
		Track  int64 `mapstructure:"track" default:"0x00010000" type:"mark bit" help:"ct mark bit of flows natreveal follows"`
		Done   int64 `mapstructure:"done" default:"0x00020000" type:"mark bit" help:"ct mark bit of flows natreveal is done with (none of their packets is queued any more)"`
		Select int64 `mapstructure:"select" default:"0x00040000" type:"mark bit" help:"ct mark bit of flows a payload method (http-header, proxy-protocol) selected"`
		SeqAdj int64 `mapstructure:"seqadj" default:"0x00080000" type:"mark bit" help:"ct mark bit of http-header flows whose server segments the kernel's sequence adjustment maps, so they are not queued"`
	} `mapstructure:"marks"`

	Metrics struct {
		Listen   string `mapstructure:"listen" default:"127.0.0.1:9850" type:"host:port" arg:"address" help:"address of the Prometheus /metrics endpoint of run (empty: none; a build with the natreveal_router tag, as the OpenWrt package's, has none)"`
		Textfile string `mapstructure:"textfile" default:"" type:"path" arg:"file" help:"file run rewrites with its metrics in the Prometheus text format (node exporter's textfile collector: /var/prometheus/natreveal.prom on OpenWrt); empty: none"`
		Interval int    `mapstructure:"interval" default:"15" type:"seconds" arg:"seconds" help:"seconds between two writes of metrics.textfile (1-3600)"`
	} `mapstructure:"metrics"`

	Log struct {
		Format string `mapstructure:"format" default:"text" help:"log format: text or json"`
	} `mapstructure:"log"`

	Status struct {
		Socket string `mapstructure:"socket" default:"/run/natreveal/control.sock" type:"path" arg:"file" help:"unix socket file where run answers natreveal status (empty: none)"`
	} `mapstructure:"status"`
}

// Key describes one configuration key, derived from its field in Keys.
type Key struct {
	Name    string // dotted: tcp_option.length
	Flag    string // without the dashes: tcp-option-length
	Env     string // NATREVEAL_TCP_OPTION_LENGTH
	Type    string // for people: int, bool, string, list, duration...
	Default string // as a flag spells it; "" for none
	Help    string // what the key means
	Arg     string // the flag's argument name in --help; "" for its Go kind

	index []int        // field path in Keys
	kind  reflect.Type // the field's Go type
}

// usage is Help with Arg in back quotes, which pflag shows as the
// argument name (pflag.UnquoteUsage).
func (k Key) usage() string {
	for i := 0; k.Arg != ""; {
		j := strings.Index(k.Help[i:], k.Arg)
		if j < 0 {
			break
		}
		j += i
		end := j + len(k.Arg)
		if (j == 0 || !isWordByte(k.Help[j-1])) && (end == len(k.Help) || !isWordByte(k.Help[end])) {
			return k.Help[:j] + "`" + k.Arg + "`" + k.Help[end:]
		}
		i = end
	}
	return k.Help
}

func isWordByte(b byte) bool {
	return b == '_' || b == '-' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

// KeyList returns every key in declaration order.
func KeyList() []Key { return keyList }

var keyList = walkKeys(reflect.TypeOf(Keys{}), "", nil)

// walkKeys lists the leaf fields of t, a struct within Keys at prefix.
func walkKeys(t reflect.Type, prefix string, index []int) []Key {
	var out []Key
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("mapstructure")
		idx := append(append([]int(nil), index...), i)
		if name == ",squash" && f.Anonymous {
			// Embedded blocks (method/all.Keys) add their sections here.
			out = append(out, walkKeys(f.Type, prefix, idx)...)
			continue
		}
		if name == "" {
			panic("config: field " + f.Name + " of Keys has no mapstructure tag")
		}
		if prefix != "" {
			name = prefix + "." + name
		}
		if f.Type.Kind() == reflect.Struct {
			out = append(out, walkKeys(f.Type, name, idx)...)
			continue
		}
		k := Key{
			Name:    name,
			Flag:    f.Tag.Get("flag"),
			Env:     EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(name, ".", "_")),
			Type:    f.Tag.Get("type"),
			Default: f.Tag.Get("default"),
			Help:    strings.ReplaceAll(f.Tag.Get("help"), "{methods}", strings.Join(allMethods, ", ")),
			Arg:     f.Tag.Get("arg"),
			index:   idx,
			kind:    f.Type,
		}
		if k.Flag == "" {
			k.Flag = strings.NewReplacer(".", "-", "_", "-").Replace(name)
		}
		if k.Type == "" {
			k.Type = goKind(f.Type)
		}
		out = append(out, k)
	}
	return out
}

func goKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Slice:
		return "list"
	case reflect.Int, reflect.Int64:
		return "int"
	}
	return t.Kind().String()
}

// EnvPrefix begins the environment variable of each key; EnvPrefix+"_CONFIG"
// names the configuration file.
const EnvPrefix = "NATREVEAL"

// defaultValue is k's default as the Go value viper holds.
func (k Key) defaultValue() any {
	d := k.Default
	switch k.kind.Kind() {
	case reflect.Slice:
		if d == "" {
			return []string{}
		}
		return strings.Split(d, ",")
	case reflect.Bool:
		return d == "true"
	case reflect.Int, reflect.Int64:
		if d == "" {
			return 0
		}
		n, err := strconv.ParseInt(d, 0, 64)
		if err != nil {
			panic(fmt.Sprintf("config: default of %s: %v", k.Name, err))
		}
		if k.kind.Kind() == reflect.Int {
			return int(n)
		}
		return n
	}
	return d
}

// addFlag registers k's flag on fs unless fs has it already.
func (k Key) addFlag(fs *pflag.FlagSet) {
	if fs.Lookup(k.Flag) != nil {
		return
	}
	switch d := k.defaultValue().(type) {
	case []string:
		fs.StringSlice(k.Flag, d, k.usage())
	case bool:
		fs.VarPF(&boolFlag{d}, k.Flag, "", k.usage()).NoOptDefVal = "true"
	case int:
		fs.Var(&intFlag{int64(d), "int"}, k.Flag, k.usage())
	case int64:
		fs.Var(&intFlag{d, "int64"}, k.Flag, k.usage())
	case string:
		fs.String(k.Flag, d, k.usage())
	}
	if k.Default != "" && k.kind.Kind() != reflect.Slice && k.kind.Kind() != reflect.Bool {
		// --help shows the default as written here (0x00010000, not 65536).
		fs.Lookup(k.Flag).DefValue = k.Default
	}
}

// AddFlags registers --config and a flag for every key on fs.
func AddFlags(fs *pflag.FlagSet) {
	if fs.Lookup("config") == nil {
		fs.String("config", "", "YAML configuration `file` (also "+EnvPrefix+"_CONFIG)")
	}
	for _, k := range keyList {
		k.addFlag(fs)
	}
}
