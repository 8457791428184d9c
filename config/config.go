// Package config loads natreveal's configuration from a YAML file, NATREVEAL_*
// environment variables and command-line flags (flag > env > file > default)
// with viper, and validates every key before anything is installed.
package config

import (
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Methods the SYN path knows.
const (
	MethodTCPOption = "tcp-option"
	MethodIPID      = "ip-id"
	MethodIPOption  = "ip-option"
	MethodIdent     = "ident"
	MethodDestOpt   = "dest-opt"
)

// allMethods lists the methods in the order messages name them.
var allMethods = []string{MethodTCPOption, MethodIPID, MethodIPOption, MethodDestOpt, MethodIdent}

// PacketMethods reports whether a method that rewrites packets is enabled
// (ident answers queries and needs no queue).
func (c *Config) PacketMethods() bool {
	return c.Has(MethodTCPOption) || c.Has(MethodIPID) || c.Has(MethodIPOption) || c.Has(MethodDestOpt) || c.Selects()
}

// IP-ID scopes (which packets carry the HOST_ID in their Identification).
const (
	ScopeSYN = "syn" // the SYN only
	ScopeNew = "new" // the client's packets until the server acknowledges data
	ScopeAll = "all" // every TCP packet from the inside hosts
)

// Config is the validated configuration.
type Config struct {
	Inside    []netip.Prefix
	Methods   []string
	Placement string // "pre-nat" or "post-nat"
	Table     string

	HostID struct {
		Source  string
		KeyFile string
		MapFile string
	}
	TCPOption struct {
		Length      int  // HOST_ID bytes: 2 or 4 (RFC 7974 §3)
		MaxSegments int  // client packets after the SYN that may carry it (conntrack's count: a GSO packet once)
		CGN         bool // operator states this NAT is a CGN (RFC 7974 §8)
	}
	IPID struct {
		Scope      string
		UDPPackets int // first packets of each UDP flow carrying it; 0: no UDP
	}
	IPOption struct {
		Type       byte // RFC 4727 experimental option type: 30, 94, 158 or 222
		Length     int  // HOST_ID bytes: 2 or 4
		UDPPackets int  // first packets of each UDP flow carrying it; 0: no UDP
	}
	DestOpt struct {
		Type       byte // IPv6 option type, RFC 4727 experimental: low 5 bits 0x1E
		Length     int  // HOST_ID bytes: 2 or 4
		UDPPackets int  // first packets of each IPv6 UDP flow carrying it; 0: no UDP
	}
	Ident struct {
		Listen string // address of the RFC 1413 responder, e.g. ":113"
	}
	Queue struct {
		Num      uint16
		Count    uint16
		FailOpen bool
		MaxLen   uint32
		Workers  int
		Backlog  int
	}
	Flows struct {
		Max int
	}
	Marks struct {
		Track  uint32
		Done   uint32
		Select uint32 // payload insertion: the ct mark bit of selected flows (config/payload.go)
		// SeqAdj: the ct mark bit of http-header flows whose server segments
		// the kernel's sequence adjustment maps, so they are not queued.
		SeqAdj uint32
	}
	HTTPHeader    HTTPHeaderConfig    // http-header method (config/payload.go)
	ProxyProtocol ProxyProtocolConfig // proxy-protocol method (config/payload.go)
	Metrics       struct {
		Listen string // Prometheus endpoint of run; empty: none
	}
	Log struct {
		Format string // "text" or "json"
	}
	PortSet    PortSetConfig    // port-set method (config/portset.go)
	IPIDKernel IPIDKernelConfig // in-kernel ip-id path (config/ipidkernel.go)
	MappingLog MappingLogConfig // mapping log of run (config/portset.go)
}

// HasIPv4 and HasIPv6 report whether Inside holds prefixes of that family.
func (c *Config) HasIPv4() bool { return c.hasFamily(true) }
func (c *Config) HasIPv6() bool { return c.hasFamily(false) }

func (c *Config) hasFamily(v4 bool) bool {
	for _, p := range c.Inside {
		if p.Addr().Is4() == v4 {
			return true
		}
	}
	return false
}

// Has reports whether method m is enabled.
func (c *Config) Has(m string) bool {
	for _, x := range c.Methods {
		if x == m {
			return true
		}
	}
	return false
}

// Error is a bad configuration value: the key and what is wrong with it.
type Error struct {
	Key string
	Msg string
}

func (e *Error) Error() string { return e.Key + ": " + e.Msg }

func bad(key, format string, a ...any) *Error {
	return &Error{Key: key, Msg: fmt.Sprintf(format, a...)}
}

// defaults for every key; a key absent here is unknown in a file.
var defaults = map[string]any{
	"inside":                  []string{},
	"methods":                 []string{},
	"placement":               "pre-nat",
	"table":                   "natreveal",
	"hostid.source":           "lower16",
	"hostid.key_file":         "",
	"hostid.map_file":         "",
	"tcp_option.length":       2,
	"tcp_option.max_segments": 8,
	"tcp_option.cgn":          false,
	"ip_id.scope":             ScopeSYN,
	"ip_id.udp_packets":       3,
	"ip_option.type":          30,
	"ip_option.length":        2,
	"ip_option.udp_packets":   3,
	"dest_opt.type":           0x1E,
	"dest_opt.length":         2,
	"dest_opt.udp_packets":    3,
	"ident.listen":            ":113",
	"queue.num":               0,
	"queue.count":             0, // 0: one per CPU
	"queue.fail_open":         true,
	"queue.max_len":           4096,
	"queue.workers":           0, // 0: one per CPU
	"queue.backlog":           1024,
	"flows.max":               65536,
	"marks.track":             0x00010000,
	"marks.done":              0x00020000,
}

// flags maps command-line flags to keys.
var flags = map[string]string{
	"inside":                      "inside",
	"methods":                     "methods",
	"placement":                   "placement",
	"hostid-source":               "hostid.source",
	"hostid-key-file":             "hostid.key_file",
	"hostid-map-file":             "hostid.map_file",
	"tcp-option-length":           "tcp_option.length",
	"ip-id-scope":                 "ip_id.scope",
	"ip-option-type":              "ip_option.type",
	"ip-option-length":            "ip_option.length",
	"dest-opt-type":               "dest_opt.type",
	"dest-opt-length":             "dest_opt.length",
	"ident-listen":                "ident.listen",
	"http-header-ports":           "http_header.ports",
	"http-header-destinations":    "http_header.destinations",
	"proxy-protocol-destinations": "proxy_protocol.destinations",
	"queue-num":                   "queue.num",
	"queue-count":                 "queue.count",
}

// AddFlags registers the configuration flags on fs.
func AddFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "YAML configuration file")
	fs.StringSlice("inside", nil, "inside IPv4 and IPv6 prefixes whose hosts get a HOST_ID (required)")
	fs.StringSlice("methods", nil, "methods to enable: tcp-option, ip-id, ip-option, dest-opt, ident")
	fs.String("placement", "pre-nat", "where packets are queued: pre-nat (inside source visible) or post-nat (source carried in the packet mark)")
	fs.String("hostid-source", "lower16", "HOST_ID source: lower16, address, hash, map")
	fs.String("hostid-key-file", "", "key file of the hash source (16 bytes or 32 hex digits)")
	fs.String("hostid-map-file", "", "map file of the map source")
	fs.Int("tcp-option-length", 2, "HOST_ID bytes in the RFC 7974 option: 2 or 4")
	fs.String("ip-id-scope", ScopeSYN, "packets whose IP-ID carries the HOST_ID: syn, new, all")
	fs.Int("ip-option-type", 30, "IPv4 option type of the ip-option method (RFC 4727): 30, 94, 158 or 222")
	fs.Int("ip-option-length", 2, "HOST_ID bytes in the IPv4 option: 2 or 4")
	fs.Int("dest-opt-type", 0x1E, "IPv6 Destination Option type of the dest-opt method (RFC 4727 experimental, low 5 bits 0x1E)")
	fs.Int("dest-opt-length", 2, "HOST_ID bytes in the IPv6 Destination Option: 2 or 4")
	fs.String("ident-listen", ":113", "address of the ident (RFC 1413) responder of the ident method")
	fs.StringSlice("http-header-ports", []string{"80"}, "destination ports whose flows http-header selects")
	fs.StringSlice("http-header-destinations", nil, "PREFIX:PORT destinations whose flows http-header selects (port 0: any)")
	fs.StringSlice("proxy-protocol-destinations", nil, "PREFIX:PORT[+ack] destinations whose flows proxy-protocol selects")
	fs.Uint16("queue-num", 0, "first NFQUEUE number")
	fs.Uint16("queue-count", 0, "number of queues (fan-out by CPU; 0: one per CPU, each served by a thread pinned to it)")
	addIPIDKernelFlags(fs)
}

// Load reads the configuration: defaults, then the file named by --config (if
// any), then NATREVEAL_* variables, then flags that were set.
func Load(fs *pflag.FlagSet, getenv func(string) string) (*Config, error) {
	v := viper.New()
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	v.SetEnvPrefix("NATREVEAL")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	for name, key := range flags {
		if f := fs.Lookup(name); f != nil {
			if err := v.BindPFlag(key, f); err != nil {
				return nil, fmt.Errorf("config: bind flag %s: %w", name, err)
			}
		}
	}
	file, _ := fs.GetString("config")
	if file == "" && getenv != nil {
		file = getenv("NATREVEAL_CONFIG")
	}
	if file != "" {
		if err := readFile(v, file); err != nil {
			return nil, err
		}
	}
	return fromViper(v)
}

func readFile(v *viper.Viper, file string) error {
	fi, err := os.Stat(file)
	if err != nil {
		return bad("config", "cannot read %s: %v", file, err)
	}
	// Whoever can write the file chooses what a root daemon runs with (its
	// key and map files, its listeners): refuse one any user can write.
	if fi.Mode().Perm()&0o002 != 0 {
		return bad("config", "%s is writable by every user (mode %04o); remove that (chmod o-w)", file, fi.Mode().Perm())
	}
	v.SetConfigFile(file)
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil {
		return bad("config", "%s: %v", file, err)
	}
	// A typo in a key must not silently fall back to a default.
	fv := viper.New()
	fv.SetConfigFile(file)
	fv.SetConfigType("yaml")
	if err := fv.ReadInConfig(); err != nil {
		return bad("config", "%s: %v", file, err)
	}
	var unknown []string
	for _, k := range fv.AllKeys() {
		if _, ok := defaults[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return bad(unknown[0], "unknown key in %s", file)
	}
	return nil
}
