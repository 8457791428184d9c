package handler

import (
	"net"
	"sync"
	"time"
)

// MTUs caches interface MTUs by index, re-reading each at most every ttl.
type MTUs struct {
	ttl time.Duration
	mu  sync.RWMutex
	m   map[uint32]mtuEntry
}

type mtuEntry struct {
	mtu int
	at  time.Time
}

// NewMTUs returns an empty cache.
func NewMTUs(ttl time.Duration) *MTUs { return &MTUs{ttl: ttl, m: map[uint32]mtuEntry{}} }

// MTU of interface idx; 0 when unknown (no limit is applied then).
func (c *MTUs) MTU(idx uint32) int {
	if idx == 0 {
		return 0
	}
	now := time.Now()
	c.mu.RLock()
	e, ok := c.m[idx]
	c.mu.RUnlock()
	if ok && now.Sub(e.at) < c.ttl {
		return e.mtu
	}
	mtu := 0
	if ifc, err := net.InterfaceByIndex(int(idx)); err == nil {
		mtu = ifc.MTU
	}
	c.mu.Lock()
	c.m[idx] = mtuEntry{mtu: mtu, at: now}
	c.mu.Unlock()
	return mtu
}
