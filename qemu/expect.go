package qemu

import (
	"bytes"
	"regexp"
	"strings"

	"github.com/ocidisk/ocidisk/bootfs/initramfs/protocol"
)

// failPatterns end a test at once: the boot cannot reach its
// expectations any more. A block of a dm-verity root that does not match
// its hash tree is one: dm-verity returns an I/O error for it, and
// whatever read it fails later with less to say.
var failPatterns = []*regexp.Regexp{
	regexp.MustCompile(`Kernel panic - not syncing.*`),
	regexp.MustCompile(regexp.QuoteMeta(protocol.FailPrefix) + `.*`),
	regexp.MustCompile(`device-mapper: verity: \S+: (data|metadata) block \d+ is corrupted`),
}

// matcher follows a serial console stream: expectations must match in
// order, each after the end of the previous match; a failure pattern on a
// complete line ends the test, except on the lines up to the last
// expectation's match (a test may expect a panic).
type matcher struct {
	expect    []*regexp.Regexp
	next      int          // index of the expectation being waited for
	log       bytes.Buffer // the console, with carriage returns dropped
	from      int          // where the next expectation may start
	lastStart int          // where the last expectation's match started
	checked   int          // end of the last line checked for failures
}

// feed adds console output and reports whether every expectation has
// matched, and the failure line seen, if any.
func (m *matcher) feed(p []byte) (done bool, failure string) {
	m.log.Write(bytes.ReplaceAll(p, []byte("\r"), nil))
	b := m.log.Bytes()
	if m.next < len(m.expect) {
		for m.next < len(m.expect) {
			loc := m.expect[m.next].FindIndex(b[m.from:])
			if loc == nil {
				break
			}
			m.lastStart = m.from + loc[0]
			m.from += loc[1]
			m.next++
		}
		if m.next == len(m.expect) {
			// The expectations judged the lines they matched.
			if i := bytes.IndexByte(b[m.from:], '\n'); i >= 0 {
				m.checked = max(m.checked, m.from+i+1)
			}
			return true, ""
		}
	}
	done = m.next == len(m.expect)
	if end := bytes.LastIndexByte(b, '\n'); end >= m.checked {
		lines := b[m.checked:end]
		m.checked = end + 1
		// The first failure on the console is the cause; what follows
		// is its consequence.
		var first []int
		for _, re := range failPatterns {
			if loc := re.FindIndex(lines); loc != nil && (first == nil || loc[0] < first[0]) {
				first = loc
			}
		}
		if first != nil {
			return done, string(lines[first[0]:first[1]])
		}
	}
	return done, ""
}

// tail returns the last n lines of the console.
func (m *matcher) tail(n int) string {
	s := strings.TrimRight(m.log.String(), "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
