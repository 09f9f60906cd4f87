package config

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// keyIndex lists every key of a document with the path that names array
// elements by index ("hosts[2].cpu"), so that decode errors, which carry
// only the bare path ("hosts.cpu") and a line, can name the element.
type keyIndex struct {
	keys []keyAt
}

type keyAt struct {
	path string // with indexes: hosts[2].cpu
	bare string // without: hosts.cpu
	line int
	kind unstable.Kind // value kind; Table or ArrayTable for headers
}

// indexKeys walks data with the TOML parser. On a syntax error it returns
// what it saw before it.
func indexKeys(data []byte) *keyIndex {
	x := &keyIndex{}
	var p unstable.Parser
	p.Reset(data)
	counts := map[string]int{} // array table path (with indexes) -> elements
	var table, bare []string   // the current table header
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table, bare = table[:0], bare[:0]
			it := e.Key()
			var line int
			for it.Next() {
				k := it.Node()
				if line == 0 {
					line = p.Shape(k.Raw).Start.Line
				}
				name := string(k.Data)
				bare = append(bare, name)
				full := strings.Join(append(table, name), ".")
				n, isArray := counts[full]
				if e.Kind == unstable.ArrayTable && it.IsLast() {
					counts[full] = n + 1
					name = fmt.Sprintf("%s[%d]", name, n)
				} else if isArray && n > 0 {
					name = fmt.Sprintf("%s[%d]", name, n-1)
				}
				table = append(table, name)
			}
			x.keys = append(x.keys, keyAt{strings.Join(table, "."), strings.Join(bare, "."), line, e.Kind})
		case unstable.KeyValue:
			x.keyValue(&p, e, table, bare)
		}
	}
	return x
}

// keyValue records a key-value and, inside inline tables and arrays of
// inline tables, the keys it holds.
func (x *keyIndex) keyValue(p *unstable.Parser, e *unstable.Node, table, bare []string) {
	path, bpath := append([]string{}, table...), append([]string{}, bare...)
	it := e.Key()
	line := 0
	for it.Next() {
		k := it.Node()
		if line == 0 {
			line = p.Shape(k.Raw).Start.Line
		}
		path, bpath = append(path, string(k.Data)), append(bpath, string(k.Data))
	}
	v := e.Value()
	x.keys = append(x.keys, keyAt{strings.Join(path, "."), strings.Join(bpath, "."), line, v.Kind})
	switch v.Kind {
	case unstable.InlineTable:
		for c := v.Children(); c.Next(); {
			x.keyValue(p, c.Node(), path, bpath)
		}
	case unstable.Array:
		i := 0
		for c := v.Children(); c.Next(); i++ {
			if n := c.Node(); n.Kind == unstable.InlineTable {
				elem := append([]string{}, path...)
				elem[len(elem)-1] = fmt.Sprintf("%s[%d]", elem[len(elem)-1], i)
				for cc := n.Children(); cc.Next(); {
					x.keyValue(p, cc.Node(), elem, bpath)
				}
			}
		}
	}
}

// locate returns the indexed path of the key with the given bare path at or
// before line, or bare itself when the document does not show it.
func (x *keyIndex) locate(bare string, line int) string {
	best, bestLine := "", -1
	for _, k := range x.keys {
		match := k.bare == bare || strings.HasSuffix(k.bare, "."+bare)
		if match && k.line <= line && k.line > bestLine {
			best, bestLine = k.path, k.line
		}
	}
	if best == "" {
		return bare
	}
	return best
}

var (
	durationType = reflect.TypeFor[Duration]()
	sizeType     = reflect.TypeFor[Size]()
	// schema maps the bare path of every known key to its Go type.
	schema = schemaOf(reflect.TypeFor[Config](), "", map[string]reflect.Type{})
)

func schemaOf(t reflect.Type, prefix string, m map[string]reflect.Type) map[string]reflect.Type {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		key := prefix + name
		m[key] = f.Type
		ft := f.Type
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			schemaOf(ft, key+".", m)
		}
	}
	return m
}

// expected describes the value a key takes.
func expected(bare string) string {
	t, ok := schema[bare]
	if !ok {
		return "a value of the right type"
	}
	switch {
	case t == durationType:
		return `a duration string, like "4s"`
	case t == sizeType:
		return `a size string, like "8GiB"`
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Int:
		return "an integer"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return "an array of strings"
	case t.Kind() == reflect.Slice:
		return "[[" + bare + "]] tables"
	case t.Kind() == reflect.Struct:
		return "a [" + bare + "] table"
	}
	return "a value of the right type"
}
