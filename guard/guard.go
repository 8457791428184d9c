// Package guard lets a server act on the HOST_IDs natreveal reveals: it keeps
// one nftables table of its own (inet natreveal_guard) that drops or rejects
// the new connections of blocked (public address, HOST_ID) pairs and,
// optionally, limits each pair's rate of new connections, so that one abuser
// behind a shared address is stopped and its neighbours are not (RFC 6269
// §13.1, RFC 6967 §1).
//
// Trust model (RFC 6967 §5): anyone can write a HOST_ID option, so guard acts
// only on identifiers from the NAT prefixes it is told to trust; a packet from
// another source is never matched by a pair rule.
//
// The kernel's table is the whole state: install creates it in one batch,
// block and unblock add and delete set elements, list reads them back with
// their expiry and counters, remove deletes the table.
package guard

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/nftables"

	"github.com/natreveal/natreveal/hostid"
	"github.com/natreveal/natreveal/method/all"
)

// Conn is the part of *nftables.Conn guard uses: the syscall edge.
type Conn interface {
	AddTable(*nftables.Table) *nftables.Table
	DelTable(*nftables.Table)
	AddSet(*nftables.Set, []nftables.SetElement) error
	AddChain(*nftables.Chain) *nftables.Chain
	AddRule(*nftables.Rule) *nftables.Rule
	SetAddElements(*nftables.Set, []nftables.SetElement) error
	SetDeleteElements(*nftables.Set, []nftables.SetElement) error
	GetSets(*nftables.Table) ([]*nftables.Set, error)
	GetSetElements(*nftables.Set) ([]nftables.SetElement, error)
	ListTableOfFamily(name string, family nftables.TableFamily) (*nftables.Table, error)
	Flush() error
}

// InputError is bad input: a value the user gave or a state the command
// needs (no table installed). Commands exit 2 on it.
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

func badInput(format string, a ...any) error { return &InputError{Msg: fmt.Sprintf(format, a...)} }

// ErrNotInstalled: the guard table is not there.
var ErrNotInstalled = &InputError{Msg: "guard is not installed (run guard install first)"}

// Validate checks c and fills its defaults.
func (c *Config) Validate() error {
	if len(c.NAT) == 0 {
		return badInput("--nat: at least one trusted NAT prefix is required (HOST_IDs are trusted only from there)")
	}
	for i, p := range c.NAT {
		if !p.IsValid() {
			return badInput("--nat: invalid prefix")
		}
		if p != p.Masked() { // as natreveal's inside does
			return badInput("--nat: %s has host bits set (did you mean %s?)", p, p.Masked())
		}
		for _, q := range c.NAT[:i] {
			if q.Overlaps(c.NAT[i]) {
				return badInput("--nat: %s overlaps %s", c.NAT[i], q)
			}
		}
	}
	if len(c.Methods) == 0 {
		c.Methods = slices.Clone(Methods)
	}
	for _, m := range c.Methods {
		if !slices.Contains(Methods, m) {
			return badInput("--methods: unknown method %q (guard acts on %s)", m, strings.Join(Methods, ", "))
		}
	}
	// Each option carrier's type: the registry entry's default, or one of
	// its RFC 4727 experimental types (method.Decoder.Types).
	types := map[string]byte{}
	for _, name := range Methods {
		m, _ := all.Lookup(name)
		if len(m.Decoder.Types) == 0 {
			continue
		}
		t, ok := c.Types[name]
		if !ok {
			t = m.Decoder.Types[0]
		}
		if !slices.Contains(m.Decoder.Types, t) {
			return badInput("--%s-type: %s is not an RFC 4727 experimental type (%s)", name, TypeText(m.Decoder, t), TypeList(m.Decoder))
		}
		types[name] = t
	}
	c.Types = types
	if c.Limit != nil && (c.Limit.N == 0 || c.Limit.Burst == 0) {
		return badInput("--limit: the rate and the burst must be at least 1")
	}
	if len(variantsFor(c)) == 0 {
		return badInput("--methods: none of %s applies to the families of --nat", strings.Join(c.Methods, ", "))
	}
	return nil
}

// variantsFor are the variants c installs: its methods' variants of the
// families --nat holds.
func variantsFor(c *Config) []variant {
	var out []variant
	for _, v := range variants(c.Methods) {
		if c.hasFamily(v.v6) {
			out = append(out, v)
		}
	}
	return out
}

// Install creates guard's table in one batch. An installed table is refused
// unless replace is set; then it is replaced atomically and the blocked
// pairs of sets that both have are kept, with the time they had left.
func Install(conn Conn, c Config, replace bool) error {
	if err := c.Validate(); err != nil {
		return err
	}
	b := build(&c)
	old, err := readBlocked(conn, b.table.Name)
	switch {
	case errors.Is(err, ErrNotInstalled):
	case err != nil:
		return fmt.Errorf("guard: read table %s: %w", b.table.Name, err)
	case !replace:
		return badInput("guard is already installed (guard install --replace, or guard remove first)")
	default:
		conn.DelTable(b.table)
	}
	conn.AddTable(b.table)
	for _, s := range b.sets {
		els := b.elements[s.Name]
		for _, e := range old {
			if e.set == s.Name {
				els = append(els, nftables.SetElement{Key: e.key, Timeout: e.left, Comment: e.note})
			}
		}
		if err := conn.AddSet(s, els); err != nil {
			return fmt.Errorf("guard: set %s: %w", s.Name, err)
		}
	}
	conn.AddChain(b.chain)
	for _, r := range b.rules {
		conn.AddRule(r)
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("guard: install table %s: %w", b.table.Name, err)
	}
	return nil
}

// Remove deletes guard's table and everything in it.
func Remove(conn Conn, table string) error {
	t, err := findTable(conn, table)
	if err != nil {
		return err
	}
	conn.DelTable(t)
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("guard: remove table %s: %w", t.Name, err)
	}
	return nil
}

// Pair is one blocked (public address, HOST_ID).
type Pair struct {
	Addr   netip.Addr
	HostID uint32
}

// Block adds p to the block set of every installed variant of p's family
// that holds a HOST_ID of its width, for d (0: until unblocked or removed).
// p.Addr must be in a trusted NAT prefix.
func Block(conn Conn, table string, p Pair, d time.Duration) error {
	return BlockNote(conn, table, p, d, "")
}

// BlockNote is Block with a note kept with the pair (an element comment):
// where the pair came from, e.g. "from 192.0.2.1:40000" for a pair found
// through observe, so that it can be unblocked by the same words.
func BlockNote(conn Conn, table string, p Pair, d time.Duration, note string) error {
	if len(note) > 128 {
		return badInput("note: %d bytes, at most 128", len(note))
	}
	sets, err := pairSets(conn, table, p)
	if err != nil {
		return err
	}
	if d < 0 {
		return badInput("--for: %s is negative", d)
	}
	for _, s := range sets {
		v, _ := variantOf(s.Name)
		if err := conn.SetAddElements(s, []nftables.SetElement{{Key: key(v, p.Addr, p.HostID), Timeout: d, Comment: note}}); err != nil {
			return fmt.Errorf("guard: block in %s: %w", s.Name, err)
		}
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("guard: block %s %s: %w", p.Addr, idText(p.HostID), err)
	}
	return nil
}

// Unblock deletes p from every block set that holds it; a pair blocked
// nowhere is bad input.
func Unblock(conn Conn, table string, p Pair) error {
	sets, err := pairSets(conn, table, p)
	if err != nil {
		return err
	}
	n := 0
	for _, s := range sets {
		v, _ := variantOf(s.Name)
		k := key(v, p.Addr, p.HostID)
		els, err := conn.GetSetElements(s)
		if err != nil {
			return fmt.Errorf("guard: read %s: %w", s.Name, err)
		}
		if !slices.ContainsFunc(els, func(e nftables.SetElement) bool { return bytes.Equal(e.Key, k) }) {
			continue
		}
		if err := conn.SetDeleteElements(s, []nftables.SetElement{{Key: k}}); err != nil {
			return fmt.Errorf("guard: unblock in %s: %w", s.Name, err)
		}
		n++
	}
	if n == 0 {
		return badInput("%s %s is not blocked", p.Addr, idText(p.HostID))
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("guard: unblock %s %s: %w", p.Addr, idText(p.HostID), err)
	}
	return nil
}

// idText writes a HOST_ID for messages as the rest of natreveal does
// (hostid.Format): 0x0002, or 8 digits where it needs more than 16 bits.
func idText(id uint32) string {
	if id > 0xffff {
		return hostid.Format(id, 32)
	}
	return hostid.Format(id, 16)
}

// Entry is one blocked pair in one method's set, as `guard list` prints it.
type Entry struct {
	Addr    netip.Addr `json:"addr"`
	HostID  string     `json:"host_id"` // hex, as wide as the method's field
	Method  string     `json:"method"`
	IDBytes int        `json:"id_bytes"`
	Expires *time.Time `json:"expires,omitempty"` // nil: until unblocked
	Packets uint64     `json:"packets_dropped"`
	Bytes   uint64     `json:"bytes_dropped"`
	Note    string     `json:"note,omitempty"` // BlockNote's note
}

// List returns every blocked pair, sorted by address, HOST_ID and method.
func List(conn Conn, table string, now time.Time) ([]Entry, error) {
	bl, err := readBlocked(conn, table)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(bl))
	for _, b := range bl {
		e := Entry{Addr: b.addr, HostID: fmt.Sprintf("0x%0*x", 2*b.v.idLen, b.id), Method: b.v.method,
			IDBytes: b.v.idLen, Packets: b.packets, Bytes: b.bytes, Note: b.note}
		if b.left > 0 {
			t := now.Add(b.left).UTC().Truncate(time.Millisecond)
			e.Expires = &t
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c < 0
		}
		if a.HostID != b.HostID {
			return a.HostID < b.HostID
		}
		return a.Method < b.Method
	})
	return out, nil
}

// blocked is one element of a block set.
type blocked struct {
	set     string
	v       variant
	key     []byte
	addr    netip.Addr
	id      uint32
	left    time.Duration // 0: no timeout
	packets uint64
	bytes   uint64
	note    string
}

// readBlocked reads every block set's elements.
func readBlocked(conn Conn, table string) ([]blocked, error) {
	sets, err := tableSets(conn, table)
	if err != nil {
		return nil, err
	}
	var out []blocked
	for _, s := range sets {
		v, ok := variantOf(s.Name)
		if !ok {
			continue
		}
		els, err := conn.GetSetElements(s)
		if err != nil {
			return nil, fmt.Errorf("guard: read %s: %w", s.Name, err)
		}
		for _, e := range els {
			addr, id, ok := parseKey(v, e.Key)
			if !ok {
				continue
			}
			b := blocked{set: s.Name, v: v, key: e.Key, addr: addr, id: id, left: e.Expires, note: e.Comment}
			if e.Counter != nil {
				b.packets, b.bytes = e.Counter.Packets, e.Counter.Bytes
			}
			out = append(out, b)
		}
	}
	return out, nil
}

// pairSets checks p against the installed table (a trusted source, an
// installed method of its family with room for the HOST_ID) and returns the
// block sets it belongs in.
func pairSets(conn Conn, table string, p Pair) ([]*nftables.Set, error) {
	if !p.Addr.IsValid() {
		return nil, badInput("invalid address")
	}
	p.Addr = p.Addr.Unmap()
	sets, err := tableSets(conn, table)
	if err != nil {
		return nil, err
	}
	natName := natSet4
	if p.Addr.Is6() {
		natName = natSet6
	}
	trusted := false
	var out []*nftables.Set
	sameFamily, fits := 0, 0
	for _, s := range sets {
		if s.Name == natName {
			els, err := conn.GetSetElements(s)
			if err != nil {
				return nil, fmt.Errorf("guard: read %s: %w", s.Name, err)
			}
			trusted = inIntervals(els, p.Addr.AsSlice())
			continue
		}
		v, ok := variantOf(s.Name)
		if !ok || v.v6 != p.Addr.Is6() {
			continue
		}
		sameFamily++
		if v.idLen == 2 && p.HostID > 0xffff {
			continue
		}
		fits++
		out = append(out, s)
	}
	switch {
	case !trusted:
		return nil, badInput("%s is not in a trusted NAT prefix (guard install --nat)", p.Addr)
	case sameFamily == 0:
		return nil, badInput("no installed method carries a HOST_ID over IPv%d", map[bool]int{false: 4, true: 6}[p.Addr.Is6()])
	case fits == 0:
		return nil, badInput("HOST_ID %s is too wide for the installed methods (16 bits)", idText(p.HostID))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// variantOf finds the variant of a block set's name.
func variantOf(set string) (variant, bool) {
	name, ok := strings.CutPrefix(set, "block_")
	if !ok {
		return variant{}, false
	}
	return variantByName(name)
}

// findTable returns guard's table, or ErrNotInstalled.
func findTable(conn Conn, table string) (*nftables.Table, error) {
	if table == "" {
		table = DefaultTable
	}
	t, err := conn.ListTableOfFamily(table, nftables.TableFamilyINet)
	if err != nil || t == nil {
		return nil, ErrNotInstalled
	}
	return t, nil
}

// tableSets returns the sets of guard's table, or ErrNotInstalled.
func tableSets(conn Conn, table string) ([]*nftables.Set, error) {
	t, err := findTable(conn, table)
	if err != nil {
		return nil, err
	}
	sets, err := conn.GetSets(t)
	if err != nil {
		return nil, fmt.Errorf("guard: list sets: %w", err)
	}
	return sets, nil
}

// inIntervals reports whether addr lies in the interval set elements els: a
// start element opens a range that the next IntervalEnd element (sorted by
// key) closes; a start without an end runs to the top of the space.
func inIntervals(els []nftables.SetElement, addr []byte) bool {
	els = slices.Clone(els)
	sort.SliceStable(els, func(i, j int) bool { return bytes.Compare(els[i].Key, els[j].Key) < 0 })
	for i, e := range els {
		if e.IntervalEnd || len(e.Key) != len(addr) || bytes.Compare(addr, e.Key) < 0 {
			continue
		}
		if i+1 >= len(els) || !els[i+1].IntervalEnd || bytes.Compare(addr, els[i+1].Key) < 0 {
			return true
		}
	}
	return false
}
