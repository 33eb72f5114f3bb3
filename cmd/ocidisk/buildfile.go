package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/ocidisk/ocidisk/internal/bytesize"
	"github.com/ocidisk/ocidisk/source"
)

// defaultBuildFile is the build file ocidisk build reads from the current
// directory when -f is not given.
const defaultBuildFile = "ocidisk.yaml"

// sourceKey is the build file's key for SOURCE, the one value that is an
// argument rather than a flag.
const sourceKey = "source"

// buildFile is ocidisk.yaml: the options of ocidisk build kept in a file
// under version control. Its keys are the options' keys (option.key), and
// each value is set through the option's flag, so it is checked exactly
// as the flag is.
type buildFile struct {
	name   string
	dir    string
	source string
	// values are the options' values, in file order, by flag name.
	values []fileValue
}

// fileValue is one value of the file for a flag, with where it was.
type fileValue struct {
	opt  *option
	vals []string
	line int
}

// readBuildFile reads the build file name (or ./ocidisk.yaml when name is
// "" and it exists; nil without one).
func readBuildFile(name string, opts []option, lookup func(string) (string, bool)) (*buildFile, error) {
	if name == "" {
		if _, err := os.Stat(defaultBuildFile); err != nil {
			return nil, nil
		}
		name = defaultBuildFile
	} else if st, err := os.Stat(name); err == nil && st.IsDir() {
		name = filepath.Join(name, defaultBuildFile)
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("build file: %w", err)
	}
	return parseBuildFile(name, data, opts, lookup)
}

// buildFileError is a build file that is not what it should be: a usage
// error, named with its file and line.
func buildFileError(name string, line int, format string, a ...any) error {
	where := "build file " + name
	if line > 0 {
		where += fmt.Sprintf(": line %d", line)
	}
	return usageError{fmt.Errorf("%s: %s", where, fmt.Sprintf(format, a...))}
}

// parseBuildFile reads data: every key must be an option's key (or
// source), every value of the option's shape; ${VAR} in values is
// replaced through lookup.
func parseBuildFile(name string, data []byte, opts []option, lookup func(string) (string, bool)) (*buildFile, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		return nil, buildFileError(name, 0, "%s", strings.ReplaceAll(msg, "\n", "; "))
	}
	if len(doc.Content) == 0 {
		return nil, buildFileError(name, 0, "empty")
	}
	bf := &buildFile{name: name, dir: filepath.Dir(name)}
	keys := map[string]*option{}
	for i := range opts {
		if opts[i].key != "" {
			keys[opts[i].key] = &opts[i]
		}
	}
	if err := bf.walk(doc.Content[0], "", keys, lookup); err != nil {
		return nil, err
	}
	return bf, nil
}

// walk visits a mapping of the file at key path prefix.
func (bf *buildFile) walk(n *yaml.Node, prefix string, keys map[string]*option, lookup func(string) (string, bool)) error {
	if n.Kind != yaml.MappingNode {
		what := "the file"
		if prefix != "" {
			what = strings.TrimSuffix(prefix, ".")
		}
		return buildFileError(bf.name, n.Line, "%s: want a mapping of keys, got a %s", what, bytesize.KindName(n.Kind))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := prefix + k.Value
		if o := keys[key]; o != nil {
			vals, err := bf.scalars(key, v, o.value.kind() == repeated, lookup)
			if err != nil {
				return err
			}
			for j := range vals {
				vals[j] = bf.resolve(o.path, vals[j])
			}
			bf.values = append(bf.values, fileValue{opt: o, vals: vals, line: v.Line})
			continue
		}
		if key == sourceKey {
			vals, err := bf.scalars(key, v, false, lookup)
			if err != nil {
				return err
			}
			bf.source = bf.resolve(specPath, vals[0])
			continue
		}
		if isPrefix(keys, key+".") {
			if err := bf.walk(v, key+".", keys, lookup); err != nil {
				return err
			}
			continue
		}
		return buildFileError(bf.name, k.Line, "unknown key %s%s", key, suggestKey(keys, key))
	}
	return nil
}

// scalars returns a value's scalars, expanded: one, or a list's for an
// option that takes several.
func (bf *buildFile) scalars(key string, v *yaml.Node, list bool, lookup func(string) (string, bool)) ([]string, error) {
	var items []*yaml.Node
	switch {
	case v.Kind == yaml.ScalarNode && v.Tag != "!!null":
		items = []*yaml.Node{v}
	case v.Kind == yaml.SequenceNode && list:
		items = v.Content
	case list:
		return nil, buildFileError(bf.name, v.Line, "%s: want a list of values, got a %s", key, bytesize.KindName(v.Kind))
	default:
		got := bytesize.KindName(v.Kind)
		if v.Tag == "!!null" {
			got = "nothing"
		}
		return nil, buildFileError(bf.name, v.Line, "%s: want one value, got a %s", key, got)
	}
	var out []string
	for _, it := range items {
		if it.Kind != yaml.ScalarNode {
			return nil, buildFileError(bf.name, it.Line, "%s: want a list of values, got a %s in it", key, bytesize.KindName(it.Kind))
		}
		s, err := expand(it.Value, lookup)
		if err != nil {
			return nil, buildFileError(bf.name, it.Line, "%s: %v", key, err)
		}
		out = append(out, s)
	}
	return out, nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand replaces ${VAR} in s; an unset variable is an error naming it.
func expand(s string, lookup func(string) (string, bool)) (string, error) {
	var err error
	out := envRef.ReplaceAllStringFunc(s, func(ref string) string {
		v, ok := lookup(ref[2 : len(ref)-1])
		if !ok && err == nil {
			err = fmt.Errorf("%s is not set in the environment", ref)
		}
		return v
	})
	return out, err
}

// resolve makes a relative path of the file relative to its directory.
func (bf *buildFile) resolve(kind pathKind, v string) string {
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(bf.dir, p)
	}
	switch kind {
	case filePath:
		if p, ok := strings.CutPrefix(v, "@"); ok { // config.txt additions: @FILE
			return "@" + rel(p)
		}
		return rel(v)
	case boardRef:
		if strings.Contains(v, "/") || strings.HasSuffix(v, ".yaml") || strings.HasSuffix(v, ".yml") {
			return rel(v)
		}
	case specPath:
		return source.ResolvePath(v, rel)
	case userFilePath:
		if user, file, ok := strings.Cut(v, ":"); ok {
			return user + ":" + rel(file)
		}
	}
	return v
}

// apply sets every flag that the command line left unset from the file.
func (bf *buildFile) apply(fs *pflag.FlagSet) error {
	for _, fv := range bf.values {
		f := fs.Lookup(fv.opt.flag)
		if f.Changed {
			continue
		}
		for _, v := range fv.vals {
			if err := f.Value.Set(v); err != nil {
				if fv.opt.secret {
					return buildFileError(bf.name, fv.line, "%s: %v", fv.opt.key, err)
				}
				return buildFileError(bf.name, fv.line, "%s: %q: %v", fv.opt.key, v, err)
			}
		}
	}
	return nil
}

// where names an option's value in the file, for errors about it found
// later; "" when the file does not set it.
func (bf *buildFile) where(o *option) string {
	if bf == nil {
		return ""
	}
	for _, fv := range bf.values {
		if fv.opt.flag == o.flag {
			return fmt.Sprintf("build file %s: line %d: %s", bf.name, fv.line, o.key)
		}
	}
	return ""
}

func isPrefix(keys map[string]*option, prefix string) bool {
	for k := range keys {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// suggestKey names the known key closest to an unknown one, if close.
func suggestKey(keys map[string]*option, key string) string {
	best, dist := "", min(4, len(key)/2)
	for k := range keys {
		if d := editDistance(k, key); d < dist || d == dist && k < best {
			best, dist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return " (did you mean " + best + "?)"
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

var errNoSource = errors.New("want one SOURCE")
