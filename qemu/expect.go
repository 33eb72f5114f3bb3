package qemu

import (
	"bytes"
	"regexp"
	"strings"

	"github.com/ocidisk/ocidisk/bootfs/initramfs/protocol"
)

// failPatterns end a test at once: the boot cannot reach its
// expectations any more.
var failPatterns = []*regexp.Regexp{
	regexp.MustCompile(`Kernel panic - not syncing.*`),
	regexp.MustCompile(regexp.QuoteMeta(protocol.FailPrefix) + `.*`),
}

// matcher follows a serial console stream: expectations must match in
// order, each after the end of the previous match; a failure pattern on a
// complete line ends the test.
type matcher struct {
	expect  []*regexp.Regexp
	next    int          // index of the expectation being waited for
	log     bytes.Buffer // the console, with carriage returns dropped
	from    int          // where the next expectation may start
	checked int          // end of the last line checked for failures
}

// feed adds console output and reports whether every expectation has
// matched, or the failure line seen.
func (m *matcher) feed(p []byte) (done bool, failure string) {
	m.log.Write(bytes.ReplaceAll(p, []byte("\r"), nil))
	b := m.log.Bytes()
	for m.next < len(m.expect) {
		loc := m.expect[m.next].FindIndex(b[m.from:])
		if loc == nil {
			break
		}
		m.from += loc[1]
		m.next++
	}
	if m.next == len(m.expect) {
		return true, ""
	}
	if end := bytes.LastIndexByte(b, '\n'); end >= m.checked {
		lines := b[m.checked:end]
		m.checked = end + 1
		for _, re := range failPatterns {
			if f := re.Find(lines); f != nil {
				return false, string(f)
			}
		}
	}
	return false, ""
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
