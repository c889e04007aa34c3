package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decoder turns a YAML node tree into Go values strictly: unknown and
// duplicate keys, wrong shapes and unparseable scalars are all recorded as
// problems with their key path, and decoding carries on so that one run
// reports everything.
type decoder struct {
	env      func(string) (string, bool)
	problems *problems
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	secretType   = reflect.TypeOf(Secret(""))
	dsnType      = reflect.TypeOf(DSN(""))
)

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// presetter is a section whose defaults are set before its keys are read,
// so that a key given as zero stays zero rather than taking the default.
type presetter interface{ preset() }

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.DocumentNode || n.Kind == yaml.AliasNode {
		if n.Kind == yaml.DocumentNode {
			if len(n.Content) == 0 {
				return
			}
			n = n.Content[0]
		} else {
			n = n.Alias
		}
	}
	if path != "" {
		d.problems.seen(path, n.Line)
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an explicit null leaves the default in place
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
			if p, ok := v.Interface().(presetter); ok {
				p.preset()
			}
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.problems.add(path, n.Line, "expected a list, found %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.problems.add(path, n.Line, "expected a mapping, found %s", describe(n))
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			key := k.Value
			if seen[key] {
				d.problems.add(join(path, key), k.Line, "key given twice")
				continue
			}
			seen[key] = true
			elem := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, elem, join(path, key))
			v.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), elem)
		}
	default:
		d.decodeScalar(n, v, path)
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.problems.add(path, n.Line, "expected a mapping, found %s", describe(n))
		return
	}
	fields := map[string]int{}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = i
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := k.Value
		idx, ok := fields[key]
		switch {
		case !ok:
			d.problems.add(join(path, key), k.Line, "unknown key (known keys here: %s)", knownKeys(fields))
		case seen[key]:
			d.problems.add(join(path, key), k.Line, "key given twice")
		default:
			seen[key] = true
			d.decode(val, v.Field(idx), join(path, key))
		}
	}
}

func knownKeys(fields map[string]int) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return "a single value"
	}
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.problems.add(path, n.Line, "expected a single value, found %s", describe(n))
		return
	}
	secret := v.Type() == secretType || v.Type() == dsnType
	s, err := expand(n.Value, d.env)
	if err != nil {
		d.problems.add(path, n.Line, "%v", err)
		return
	}
	if s != n.Value {
		d.problems.expandedValue(n.Value, s)
	}
	// quote shows the offending value, except for secrets and values that
	// came from the environment (a secret put in the wrong variable must
	// not be printed either).
	quote := func(s string) string {
		switch {
		case secret:
			return "(value hidden)"
		case s != n.Value:
			return fmt.Sprintf("%s (its value is not shown)", strings.TrimSpace(n.Value))
		}
		return strconv.Quote(s)
	}
	switch {
	case v.Type() == durationType:
		dur, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			d.problems.add(path, n.Line, "invalid duration %s (use a number with a unit, e.g. 30s, 5m, 1h)", quote(s))
			return
		}
		v.SetInt(int64(dur))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			d.problems.add(path, n.Line, "invalid boolean %s (use true or false)", quote(s))
		}
	case v.CanInt():
		i, err := strconv.ParseInt(strings.TrimSpace(s), 10, v.Type().Bits())
		if err != nil {
			d.problems.add(path, n.Line, "invalid whole number %s", quote(s))
			return
		}
		v.SetInt(i)
	case v.CanFloat():
		f, err := strconv.ParseFloat(strings.TrimSpace(s), v.Type().Bits())
		if err != nil {
			d.problems.add(path, n.Line, "invalid number %s", quote(s))
			return
		}
		v.SetFloat(f)
	default:
		// A programming error in the Config types, not an operator's mistake.
		panic(fmt.Sprintf("config: no decoder for %s at %s", v.Type(), path))
	}
}
