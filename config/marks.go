package config

import (
	"strings"

	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/method/all"
)

// selectMarks reads the ct mark bits of selected flows and checks them
// against the others when a payload insertion method is enabled.
func (c *Config) selectMarks(k *Keys) error {
	var err error
	if c.Marks.Select, err = markBit("marks.select", k.Marks.Select); err != nil {
		return err
	}
	if c.Marks.SeqAdj, err = markBit("marks.seqadj", k.Marks.SeqAdj); err != nil {
		return err
	}
	if c.Selects() {
		if c.Marks.Select == c.Marks.Track || c.Marks.Select == c.Marks.Done {
			return bad("marks.select", "must differ from marks.track and marks.done")
		}
		if m := c.Marks.SeqAdj; m == c.Marks.Select || m == c.Marks.Track || m == c.Marks.Done {
			return bad("marks.seqadj", "must differ from marks.select, marks.track and marks.done")
		}
		if c.Placement != "pre-nat" {
			return bad("placement", "%s need pre-nat placement", strings.Join(all.Names(func(m method.Method) bool {
				n, ok := c.Configs.Needs(m.Name)
				return ok && n.Select
			}), " and "))
		}
	}
	return nil
}
