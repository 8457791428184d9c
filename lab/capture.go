package lab

import (
	"bufio"
	"fmt"
	"os"
	"sync"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Capture writes every frame of one interface to a pcap file (AF_PACKET,
// no libpcap), like `tcpdump -w`.
type Capture struct {
	h    *pcapgo.EthernetHandle
	f    *os.File
	bw   *bufio.Writer
	wg   sync.WaitGroup
	once sync.Once
	err  error
}

// StartCapture captures on ifname in namespace ns into file.
func StartCapture(ns, ifname, file string) (*Capture, error) {
	c := &Capture{}
	err := Do(ns, func() error {
		var err error
		c.h, err = pcapgo.NewEthernetHandle(ifname)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: capture on %s in %s: %w", ifname, ns, err)
	}
	if c.f, err = os.Create(file); err != nil {
		c.h.Close()
		return nil, fmt.Errorf("lab: capture file: %w", err)
	}
	c.bw = bufio.NewWriter(c.f)
	w := pcapgo.NewWriter(c.bw)
	if err := w.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		c.h.Close()
		c.f.Close()
		return nil, fmt.Errorf("lab: capture file: %w", err)
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			data, ci, err := c.h.ReadPacketData()
			if err != nil {
				return // closed
			}
			if err := w.WritePacket(ci, data); err != nil && c.err == nil {
				c.err = err
			}
		}
	}()
	return c, nil
}

// Stop ends the capture and completes the file.
func (c *Capture) Stop() error {
	c.once.Do(func() {
		c.h.Close()
		c.wg.Wait()
		if err := c.bw.Flush(); err != nil && c.err == nil {
			c.err = err
		}
		if err := c.f.Close(); err != nil && c.err == nil {
			c.err = err
		}
	})
	return c.err
}
