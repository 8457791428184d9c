package config

import (
	"errors"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// checkFile checks the YAML file's text as written, before viper's typed
// values hide it: a key with no value (YAML null: "listen:" or "~") is refused,
// as neither its default nor "" can be assumed silently, and an integer
// key's number is checked as written (parseInt: 010, 1e3, 7.9 and numbers
// past 64 bits are refused, not read as octal, truncated or wrapped).
func checkFile(doc *yaml.Node) error {
	if len(doc.Content) == 0 {
		return nil
	}
	if root := doc.Content[0]; root.Kind == yaml.MappingNode {
		return checkNode(root, "")
	}
	return nil
}

// checkNode checks the mapping n of the section prefix ("" at the top,
// else "queue."); a key it does not know is left to the decoder.
func checkNode(n *yaml.Node, prefix string) error {
	for i := 1; i < len(n.Content); i += 2 {
		name, v := prefix+strings.ToLower(n.Content[i-1].Value), n.Content[i]
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		t := keyType(name)
		kind := reflect.Invalid // a section, or unknown
		if t != nil {
			kind = t.Kind()
		}
		if v.ShortTag() == "!!null" {
			return nullError(name, kind)
		}
		var err error
		switch kind {
		case reflect.Invalid:
			if v.Kind == yaml.MappingNode && prefix == "" {
				if err := checkNode(v, name+"."); err != nil {
					return err
				}
			}
		case reflect.Slice:
			for _, e := range v.Content { // a sequence's items
				if e.ShortTag() == "!!null" {
					err = errors.New("an item has no value (YAML null)")
				}
			}
		default: // integers and booleans, as written: 010, 7.9, true, 1e30, 1
			if v.Kind == yaml.ScalarNode && v.ShortTag() != "!!str" && kind != reflect.String {
				_, err = decodeHook(nil, t, v.Value)
			}
		}
		if err != nil {
			return bad(name, "%v", err)
		}
	}
	return nil
}

// nullError says what to write instead of a null for key name of kind.
func nullError(name string, kind reflect.Kind) error {
	how := `a value, or remove the key for its default`
	switch kind {
	case reflect.Invalid:
		how = "its keys, or remove it"
	case reflect.String:
		how = `"" for an empty value, or remove the key for its default`
	case reflect.Slice:
		how = `[] for an empty list, or remove the key for its default`
	}
	return bad(name, "no value (YAML null); write %s", how)
}

// keyType is the Go type of key name's field; nil for a section or an
// unknown key.
func keyType(name string) reflect.Type {
	for _, k := range keyList {
		if k.Name == name {
			return k.kind
		}
	}
	return nil
}
