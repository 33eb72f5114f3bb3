package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/ocidisk/ocidisk/internal/bytesize"
)

// option is one option of a command, declared once: its flag, its key in
// a build file, its placeholder in the synopsis, its help and the value
// that parses and checks what it is given. The flag set, the build file
// reader, the synopsis and the mapping of library errors back to flags
// all read the same declaration, so that they cannot drift apart.
type option struct {
	flag  string // long name, without dashes
	short string // one letter, or ""
	// key is the option's path in a build file ("partitions.root.size");
	// "" for an option no build file sets.
	key string
	// arg is the value's placeholder in the synopsis ("S|auto"); "" for
	// a switch.
	arg   string
	usage string
	value value
	// field is the library field the option sets (of pipeline.Config,
	// or of qemu.Config and qemu.TestOptions), which library errors
	// (pipeline.ConfigError, qemu.ConfigError) name.
	field string
	// path says how a build file's relative value is resolved against
	// the file's directory.
	path pathKind
	// secret keeps the value out of error messages: what is given may be
	// a password typed where its hash belongs.
	secret bool
}

// value is what an option parses into: a pflag.Value that knows whether
// it is a switch and whether it may be given more than once.
type value interface {
	pflag.Value
	kind() valueKind
}

type valueKind int

const (
	single valueKind = iota
	repeated
	boolean
)

// pathKind says how a build file's value names a file.
type pathKind int

const (
	notPath      pathKind = iota
	filePath              // a host path: relative to the build file
	specPath              // a SOURCE spelling: its path part is relative to the build file
	boardRef              // a board name, or a board file
	userFilePath          // USER:FILE: the file is relative to the build file
)

// declare adds the options' flags to fs.
func declare(fs *pflag.FlagSet, opts []option) {
	fs.SortFlags = false // help lists them as declared
	for _, o := range opts {
		f := fs.VarPF(shown{o.value, o.arg, o.secret}, o.flag, o.short, o.usage)
		switch o.value.kind() {
		case boolean:
			f.NoOptDefVal = "true"
		case repeated:
			f.DefValue = "" // help says nothing of an empty list
		}
	}
}

// shown is a value as help shows it: "--overlay DIR", "--bmap".
type shown struct {
	value
	arg    string
	secret bool // option.secret
}

// isSecret reports whether a flag's value must stay out of messages.
func isSecret(v pflag.Value) bool {
	s, ok := v.(shown)
	return ok && s.secret
}

func (s shown) Type() string {
	if s.kind() == boolean {
		return "bool" // what cobra's GetBool of --help wants
	}
	return s.arg
}

// synopsis renders the options for a usage line: [--flag ARG],
// [--flag ARG]... for a repeatable one, [--switch].
func synopsis(opts []option) []string {
	var parts []string
	for _, o := range opts {
		s := "--" + o.flag
		if o.short != "" {
			s = "-" + o.short
		}
		switch o.value.kind() {
		case boolean:
			parts = append(parts, "["+s+"]")
		case repeated:
			parts = append(parts, "["+s+" "+o.arg+"]...")
		default:
			parts = append(parts, "["+s+" "+o.arg+"]")
		}
	}
	return parts
}

// byField returns the option that sets a pipeline.Config field, or nil.
func byField(opts []option, field string) *option {
	for i := range opts {
		if opts[i].field == field {
			return &opts[i]
		}
	}
	return nil
}

// stringValue is a plain string option, checked by check when set.
type stringValue struct {
	p     *string
	check func(string) error
}

func newString(p *string, def string, check func(string) error) *stringValue {
	*p = def
	return &stringValue{p, check}
}

func (v *stringValue) Set(s string) error {
	if v.check != nil {
		if err := v.check(s); err != nil {
			return err
		}
	}
	*v.p = s
	return nil
}
func (v *stringValue) String() string  { return *v.p }
func (v *stringValue) Type() string    { return "string" }
func (v *stringValue) kind() valueKind { return single }

// choiceValue is one of a fixed set of words; aliases name some of them
// another way ("gzip" for "gz").
type choiceValue struct {
	p       *string
	allowed []string
	aliases map[string]string
}

func newChoice(p *string, def string, allowed []string, aliases map[string]string) *choiceValue {
	*p = def
	return &choiceValue{p, allowed, aliases}
}

func (v *choiceValue) Set(s string) error {
	if a, ok := v.aliases[s]; ok {
		s = a
	}
	if !slices.Contains(v.allowed, s) {
		return fmt.Errorf("want one of %s", strings.Join(v.allowed, ", "))
	}
	*v.p = s
	return nil
}
func (v *choiceValue) String() string  { return *v.p }
func (v *choiceValue) Type() string    { return "string" }
func (v *choiceValue) kind() valueKind { return single }

// listValue collects a repeatable option's values in order; a build
// file's list is replaced, not extended, by values given as flags.
type listValue struct {
	p     *[]string
	check func(string) error
}

func newList(p *[]string, check func(string) error) *listValue { return &listValue{p, check} }

func (v *listValue) Set(s string) error {
	if v.check != nil {
		if err := v.check(s); err != nil {
			return err
		}
	}
	*v.p = append(*v.p, s)
	return nil
}
func (v *listValue) String() string  { return "[" + strings.Join(*v.p, ",") + "]" }
func (v *listValue) Type() string    { return "stringArray" }
func (v *listValue) kind() valueKind { return repeated }

// boolValue is a switch: --bmap, or --keep-raw=false.
type boolValue struct{ p *bool }

func newBool(p *bool, def bool) *boolValue {
	*p = def
	return &boolValue{p}
}

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false")
	}
	*v.p = b
	return nil
}
func (v *boolValue) String() string  { return strconv.FormatBool(*v.p) }
func (v *boolValue) Type() string    { return "bool" }
func (v *boolValue) kind() valueKind { return boolean }

// sizeValue is a size in bytes ("512MiB"), or a word from words meaning
// the value words gives it ("auto": -1).
type sizeValue struct {
	p     *int64
	words map[string]int64
	what  string // "a size such as 512MiB or 2GiB"
}

func newSize(p *int64, def int64, what string, words map[string]int64) *sizeValue {
	*p = def
	return &sizeValue{p, words, what}
}

func (v *sizeValue) Set(s string) error {
	if n, ok := v.words[strings.ToLower(s)]; ok {
		*v.p = n
		return nil
	}
	n, err := bytesize.Parse(s)
	if err != nil || n <= 0 {
		words := slices.Sorted(func(yield func(string) bool) {
			for w := range v.words {
				if !yield(w) {
					return
				}
			}
		})
		return fmt.Errorf("want %s", orList(append([]string{v.what}, words...)))
	}
	*v.p = int64(n)
	return nil
}

func (v *sizeValue) String() string {
	for w, n := range v.words {
		if *v.p == n {
			return w
		}
	}
	if *v.p == 0 {
		return ""
	}
	return bytesize.Size(*v.p).String()
}
func (v *sizeValue) Type() string    { return "size" }
func (v *sizeValue) kind() valueKind { return single }

// orList renders "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// durationValue is a time span: "90s", "2m".
type durationValue struct{ p *time.Duration }

func newDuration(p *time.Duration, def time.Duration) *durationValue {
	*p = def
	return &durationValue{p}
}

func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("want a positive duration such as 90s or 5m")
	}
	*v.p = d
	return nil
}
func (v *durationValue) String() string  { return v.p.String() }
func (v *durationValue) Type() string    { return "duration" }
func (v *durationValue) kind() valueKind { return single }

// mibValue is an amount of memory in MiB: a plain number is MiB, a size
// with a unit ("2GiB") is converted.
type mibValue struct{ p *int }

func newMiB(p *int, def int) *mibValue {
	*p = def
	return &mibValue{p}
}

func (v *mibValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		size, perr := bytesize.Parse(s)
		if perr != nil || size%(1<<20) != 0 {
			return fmt.Errorf("want a number of MiB, or a size such as 512MiB or 2GiB")
		}
		n = int(size >> 20)
	}
	if n <= 0 {
		return fmt.Errorf("want a positive amount of memory")
	}
	*v.p = n
	return nil
}

func (v *mibValue) String() string {
	if *v.p == 0 {
		return ""
	}
	return bytesize.Size(int64(*v.p) << 20).String()
}
func (v *mibValue) Type() string    { return "mib" }
func (v *mibValue) kind() valueKind { return single }

// countValue is a positive whole number.
type countValue struct{ p *int }

func newCount(p *int, def int) *countValue {
	*p = def
	return &countValue{p}
}

func (v *countValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return fmt.Errorf("want a positive whole number")
	}
	*v.p = n
	return nil
}

func (v *countValue) String() string {
	if *v.p == 0 {
		return ""
	}
	return strconv.Itoa(*v.p)
}
func (v *countValue) Type() string    { return "int" }
func (v *countValue) kind() valueKind { return single }

// inOrder returns opts in the order of flags, then those flags does not
// name: commands that share options list them where their synopsis wants
// them.
func inOrder(opts []option, flags ...string) []option {
	out := make([]option, 0, len(opts))
	for _, f := range flags {
		for _, o := range opts {
			if o.flag == f {
				out = append(out, o)
			}
		}
	}
	for _, o := range opts {
		if !slices.Contains(flags, o.flag) {
			out = append(out, o)
		}
	}
	return out
}
