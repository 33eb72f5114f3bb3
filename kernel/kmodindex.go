package kernel

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
)

// kmod's modprobe does not read the text modules.dep: it looks modules up
// in modules.dep.bin and aliases in modules.alias.bin, the trie indexes
// depmod writes. Without them Debian's modprobe reports every module as
// "not found", so Tree writes them too, in depmod's format (kmod's
// libkmod-index: big-endian words, path-compressed trie, children by
// byte).

const (
	indexMagic   = 0xB007F457
	indexVersion = 2<<16 | 1 // major 2, minor 1

	nodePrefix = 0x80000000
	nodeValues = 0x40000000
	nodeChilds = 0x20000000

	childMax = 128 // keys are ASCII
)

type indexValue struct {
	priority uint32
	value    string
}

type indexNode struct {
	prefix      string
	values      []indexValue
	first, last int // range of children; first == childMax when none
	children    [childMax]*indexNode
}

func newIndexNode(prefix string) *indexNode {
	return &indexNode{prefix: prefix, first: childMax}
}

// kmodIndex is an index being built.
type kmodIndex struct{ root *indexNode }

func newKmodIndex() *kmodIndex { return &kmodIndex{root: newIndexNode("")} }

// insert adds value under key, keeping a node's values sorted by priority
// and skipping exact duplicates, as depmod does.
func (ix *kmodIndex) insert(key, value string, priority uint32) error {
	for i := 0; i < len(key); i++ {
		if key[i] >= childMax || key[i] == 0 {
			return fmt.Errorf("index key %q: byte %#x", key, key[i])
		}
	}
	n := ix.root
	i := 0
	for {
		// Split n when its prefix is not a prefix of key[i:].
		j := 0
		for ; j < len(n.prefix); j++ {
			if i+j >= len(key) || n.prefix[j] != key[i+j] {
				ch := n.prefix[j]
				child := *n
				child.prefix = n.prefix[j+1:]
				*n = *newIndexNode(n.prefix[:j])
				n.first, n.last = int(ch), int(ch)
				n.children[ch] = &child
				break
			}
		}
		i += j
		if i == len(key) {
			n.addValue(value, priority)
			return nil
		}
		ch := key[i]
		if n.children[ch] == nil {
			n.first, n.last = min(n.first, int(ch)), max(n.last, int(ch))
			c := newIndexNode(key[i+1:])
			c.addValue(value, priority)
			n.children[ch] = c
			return nil
		}
		n = n.children[ch]
		i++
	}
}

func (n *indexNode) addValue(value string, priority uint32) {
	for _, v := range n.values {
		if v.value == value {
			return
		}
	}
	at := len(n.values)
	for k, v := range n.values {
		if v.priority > priority {
			at = k
			break
		}
	}
	n.values = slices.Insert(n.values, at, indexValue{priority, value})
}

// bytes serialises the index: header, then every node after its
// children, the root last.
func (ix *kmodIndex) bytes() []byte {
	var b bytes.Buffer
	be := binary.BigEndian
	b.Write(be.AppendUint32(be.AppendUint32(be.AppendUint32(nil, indexMagic), indexVersion), 0))
	root := ix.write(&b, ix.root)
	out := b.Bytes()
	be.PutUint32(out[8:], root)
	return out
}

func (ix *kmodIndex) write(b *bytes.Buffer, n *indexNode) uint32 {
	var childOffs []uint32
	if n.first < childMax {
		for c := n.first; c <= n.last; c++ {
			var off uint32
			if n.children[c] != nil {
				off = ix.write(b, n.children[c])
			}
			childOffs = append(childOffs, off)
		}
	}
	off := uint32(b.Len())
	be := binary.BigEndian
	if n.prefix != "" {
		b.WriteString(n.prefix)
		b.WriteByte(0)
		off |= nodePrefix
	}
	if len(childOffs) > 0 {
		b.WriteByte(byte(n.first))
		b.WriteByte(byte(n.last))
		for _, c := range childOffs {
			b.Write(be.AppendUint32(nil, c))
		}
		off |= nodeChilds
	}
	if len(n.values) > 0 {
		b.Write(be.AppendUint32(nil, uint32(len(n.values))))
		for _, v := range n.values {
			b.Write(be.AppendUint32(nil, v.priority))
			b.WriteString(v.value)
			b.WriteByte(0)
		}
		off |= nodeValues
	}
	return off
}

// aliasNormalize spells an alias as depmod keys it: dashes become
// underscores outside bracket expressions.
func aliasNormalize(a string) string {
	out := []byte(a)
	inBracket := false
	for i, c := range out {
		switch {
		case c == '[':
			inBracket = true
		case c == ']':
			inBracket = false
		case c == '-' && !inBracket:
			out[i] = '_'
		}
	}
	return string(out)
}

// depIndex returns modules.dep.bin for mods: each module's name maps to
// its modules.dep line.
func (ms *Modules) depIndex(mods []*Module) ([]byte, error) {
	ix := newKmodIndex()
	for i, m := range mods {
		line := m.Path + ":"
		for _, d := range ms.Deps(m) {
			line += " " + d.Path
		}
		if err := ix.insert(m.Name, line, uint32(i)); err != nil {
			return nil, err
		}
	}
	return ix.bytes(), nil
}

// aliasIndex returns modules.alias.bin for mods: each normalized alias
// maps to the names of the modules that have it.
func (ms *Modules) aliasIndex(mods []*Module) ([]byte, error) {
	ix := newKmodIndex()
	for i, m := range mods {
		for _, a := range m.Aliases {
			if err := ix.insert(aliasNormalize(a), m.Name, uint32(i)); err != nil {
				return nil, fmt.Errorf("module %s: %w", m.Name, err)
			}
		}
	}
	return ix.bytes(), nil
}

// builtinIndex returns modules.builtin.bin: the names of the modules built
// into the kernel, so that modprobe of one succeeds without loading.
func (ms *Modules) builtinIndex() ([]byte, error) {
	names := make([]string, 0, len(ms.builtin))
	for n := range ms.builtin {
		names = append(names, n)
	}
	slices.Sort(names)
	ix := newKmodIndex()
	for _, n := range names {
		if err := ix.insert(n, "", 0); err != nil {
			return nil, err
		}
	}
	return ix.bytes(), nil
}
