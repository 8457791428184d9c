package config

// MappingLogConfig is the mapping log (RFC 6888 §4) of run.
type MappingLogConfig struct {
	File        string // "" off, "-" standard output, else a file appended to
	Destination bool   // also log the destination (RFC 6888 §4 advises against)
}

// HasPortSetPolicy reports whether a port-set policy is configured.
func (c *Config) HasPortSetPolicy() bool { return len(c.PortSet.Policy.Inside) > 0 }
