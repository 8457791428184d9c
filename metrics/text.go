package metrics

import (
	"bytes"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The Prometheus text exposition format, version 0.0.4: per family one
// "# HELP name text" and one "# TYPE name type" line, then one line per
// sample, `name{label="value",...} value`. HELP text escapes backslash and
// newline; label values escape backslash, double quote and newline.
const contentType = "text/plain; version=0.0.4; charset=utf-8"

// family is one metric family: its name, help text, type ("counter" or
// "gauge") and label names, sorted by name as Prometheus clients print them.
type family struct {
	Name, Help, Type string
	Labels           []string
}

func counterFamily(name, help string, labels ...string) *family {
	return &family{Name: name, Help: help, Type: "counter", Labels: labels}
}

func gaugeFamily(name, help string, labels ...string) *family {
	return &family{Name: name, Help: help, Type: "gauge", Labels: labels}
}

// sample is one line of a family; values holds one value per label name.
type sample struct {
	f      *family
	values []string
	v      float64
}

// exposition gathers the samples of one scrape.
type exposition struct{ samples []sample }

func (e *exposition) add(f *family, v float64, values ...string) {
	if len(values) != len(f.Labels) {
		panic("metrics: " + f.Name + ": " + strconv.Itoa(len(values)) + " label values for " + strconv.Itoa(len(f.Labels)) + " labels")
	}
	e.samples = append(e.samples, sample{f: f, values: values, v: v})
}

// write prints the samples grouped by family, families in name order and
// samples in label-value order, so that a scrape reads the same every time.
func (e *exposition) write(w io.Writer) error {
	slices.SortStableFunc(e.samples, func(a, b sample) int {
		if c := strings.Compare(a.f.Name, b.f.Name); c != 0 {
			return c
		}
		return slices.Compare(a.values, b.values)
	})
	var b bytes.Buffer
	var last *family
	for _, s := range e.samples {
		if s.f != last {
			last = s.f
			b.WriteString("# HELP " + s.f.Name + " ")
			helpEscaper.WriteString(&b, s.f.Help)
			b.WriteString("\n# TYPE " + s.f.Name + " " + s.f.Type + "\n")
		}
		b.WriteString(s.f.Name)
		for i, l := range s.f.Labels {
			if i == 0 {
				b.WriteByte('{')
			} else {
				b.WriteByte(',')
			}
			b.WriteString(l + `="`)
			labelEscaper.WriteString(&b, s.values[i])
			b.WriteByte('"')
		}
		if len(s.f.Labels) > 0 {
			b.WriteByte('}')
		}
		b.WriteByte(' ')
		b.Write(appendValue(b.AvailableBuffer(), s.v))
		b.WriteByte('\n')
	}
	_, err := w.Write(b.Bytes())
	return err
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

// appendValue prints v as Prometheus clients do: shortest float, with
// +Inf, -Inf and NaN spelled out.
func appendValue(dst []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(dst, "NaN"...)
	case math.IsInf(v, 1):
		return append(dst, "+Inf"...)
	case math.IsInf(v, -1):
		return append(dst, "-Inf"...)
	}
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}
