package config

import (
	"os"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// checkFile reads the YAML file as written, before viper's typed values
// hide it: a key with no value (YAML null: "listen:" or "~") is refused,
// as neither its default nor "" can be assumed silently, and an integer
// key's number is checked as written (parseInt: 010, 1e3, 7.9 and numbers
// past 64 bits are refused, not read as octal, truncated or wrapped).
// nil when the file cannot be parsed: viper has said why.
func checkFile(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return nil
	}
	return checkNode(doc.Content[0], "")
}

// checkNode checks the mapping n of the section prefix ("" at the top).
func checkNode(n *yaml.Node, prefix string) error {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		return nil // the decoder says what it wanted
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		name, v := strings.ToLower(n.Content[i].Value), deref(n.Content[i+1])
		if name == "<<" {
			continue // a merge key: its mapping's keys are checked where written
		}
		if prefix != "" {
			name = prefix + "." + name
		}
		k, ok := keyNamed(name)
		switch {
		case ok:
			if err := checkValue(k, v); err != nil {
				return err
			}
		case isSection(name) && isNull(v):
			return bad(name, "no value (YAML null); give its keys, or remove it")
		case isSection(name):
			if err := checkNode(v, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkValue checks the value v of key k.
func checkValue(k Key, v *yaml.Node) error {
	if isNull(v) {
		how := "a value"
		switch k.kind.Kind() {
		case reflect.String:
			how = `"" for an empty value`
		case reflect.Slice:
			how = "[] for an empty list"
		}
		def := k.Default
		if def == "" {
			def = "empty"
		}
		return bad(k.Name, "no value (YAML null); write %s, or remove the key for the default (%s)", how, def)
	}
	switch k.kind.Kind() {
	case reflect.Slice:
		if v.Kind == yaml.SequenceNode {
			for j, e := range v.Content {
				if isNull(deref(e)) {
					return bad(k.Name, "item %d has no value (YAML null)", j+1)
				}
			}
		}
	case reflect.Int, reflect.Int64:
		if v.Kind != yaml.ScalarNode {
			return nil // the decoder says what it wanted
		}
		switch v.ShortTag() {
		case "!!int":
			if _, err := parseInt(v.Value); err != nil {
				return bad(k.Name, "%v", err)
			}
		case "!!float":
			if _, err := parseInt(v.Value); err != nil && strings.Contains(err.Error(), "out of range") {
				return bad(k.Name, "%v", err) // too many digits for YAML's integers
			}
			return bad(k.Name, "want an integer, got %s", v.Value)
		case "!!bool":
			return bad(k.Name, "want an integer, got %s", v.Value)
		}
	case reflect.Bool:
		if v.Kind == yaml.ScalarNode && (v.ShortTag() == "!!int" || v.ShortTag() == "!!float") {
			return bad(k.Name, "want true or false, got %s", v.Value)
		}
	}
	return nil
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func keyNamed(name string) (Key, bool) {
	for _, k := range keyList {
		if k.Name == name {
			return k, true
		}
	}
	return Key{}, false
}

// isSection reports whether name is a section of keys (queue, tcp_option).
func isSection(name string) bool {
	for _, k := range keyList {
		if strings.HasPrefix(k.Name, name+".") {
			return true
		}
	}
	return false
}
