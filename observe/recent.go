package observe

import (
	"container/list"
	"net/netip"
	"sync"
	"time"

	"github.com/natreveal/natreveal/reveal"
)

// Recent answers "which HOST_ID opened the connection from ADDR:PORT?": an
// application logs the (public address, port) of an abuser, and the server
// acts on the host behind it (RFC 6269 §13.1). It keeps the newest record of
// each source (address, port), at most max of them and none older than ttl:
// least recently added first out. Safe for concurrent use.
type Recent struct {
	max int
	ttl time.Duration

	mu   sync.Mutex
	byAP map[netip.AddrPort]*list.Element
	lru  list.List // of *Seen, newest at the front
}

// Seen is what Recent remembers of one connection.
type Seen struct {
	Src     netip.AddrPort `json:"src"`
	HostID  string         `json:"host_id"`
	Method  reveal.Method  `json:"method"`
	Proto   string         `json:"proto"`
	DstPort uint16         `json:"dst_port,omitempty"`
	Time    time.Time      `json:"time"`
}

// Defaults of Recent: a busy server sees a few thousand connections a
// second; a log line reaches fail2ban within seconds.
const (
	DefaultRecentMax = 65536
	DefaultRecentTTL = 10 * time.Minute
)

// NewRecent makes an empty table (max ≤ 0: DefaultRecentMax; ttl ≤ 0:
// DefaultRecentTTL).
func NewRecent(max int, ttl time.Duration) *Recent {
	if max <= 0 {
		max = DefaultRecentMax
	}
	if ttl <= 0 {
		ttl = DefaultRecentTTL
	}
	return &Recent{max: max, ttl: ttl, byAP: make(map[netip.AddrPort]*list.Element)}
}

// Add notes r. Records without a HOST_ID or without ports are ignored. A
// second record of the same packet (another method found in it) keeps the
// first; a newer connection from the same (address, port) replaces it.
func (t *Recent) Add(r reveal.Record) {
	if r.Method == "" || r.Src.Port() == 0 {
		return
	}
	src := netip.AddrPortFrom(r.Src.Addr().Unmap(), r.Src.Port())
	s := &Seen{Src: src, HostID: r.HostID, Method: r.Method, Proto: r.Proto, DstPort: r.DstPort, Time: r.Time}
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.byAP[src]; ok {
		if old := e.Value.(*Seen); old.Time.Equal(s.Time) {
			return
		}
		e.Value = s
		t.lru.MoveToFront(e)
	} else {
		t.byAP[src] = t.lru.PushFront(s)
	}
	t.expire(s.Time)
	for t.lru.Len() > t.max {
		t.drop(t.lru.Back())
	}
}

// Lookup returns what was seen of src at most ttl before now.
func (t *Recent) Lookup(src netip.AddrPort, now time.Time) (Seen, bool) {
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire(now)
	e, ok := t.byAP[src]
	if !ok {
		return Seen{}, false
	}
	return *e.Value.(*Seen), true
}

// Len is the number of entries held.
func (t *Recent) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lru.Len()
}

// expire drops entries older than ttl from the back, the oldest added.
func (t *Recent) expire(now time.Time) {
	for e := t.lru.Back(); e != nil && now.Sub(e.Value.(*Seen).Time) > t.ttl; e = t.lru.Back() {
		t.drop(e)
	}
}

func (t *Recent) drop(e *list.Element) {
	delete(t.byAP, e.Value.(*Seen).Src)
	t.lru.Remove(e)
}
