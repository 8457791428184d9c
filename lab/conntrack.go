package lab

import (
	"fmt"

	ct "github.com/ti-mo/conntrack"
)

// FlushConntrack deletes every conntrack entry in namespace ns (each one
// sends a destroy event to listeners).
func FlushConntrack(ns string) error {
	err := Do(ns, func() error {
		c, err := ct.Dial(nil)
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Flush()
	})
	if err != nil {
		return fmt.Errorf("lab: flushing conntrack in %s: %w", ns, err)
	}
	return nil
}
