package qemu

import (
	"encoding/xml"
	"fmt"
	"io"
)

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Time      string      `xml:"time,attr"`
	Timestamp string      `xml:"timestamp,attr"`
	Cases     []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	SystemOut junitText     `xml:"system-out"`
}

// junitText is element text kept readable as CDATA (escaped text would
// turn every newline of a console log into &#xA;).
type junitText struct {
	Text string `xml:",cdata"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",cdata"`
}

// WriteJUnit writes r as a JUnit XML report of one test case, named name
// in class class, with the whole serial console as its output.
func WriteJUnit(w io.Writer, class, name string, r *Result) error {
	secs := fmt.Sprintf("%.3f", r.Duration.Seconds())
	c := junitCase{Name: name, Classname: class, Time: secs, SystemOut: junitText{xmlSafe(r.Console)}}
	failures := 0
	if !r.Passed {
		failures = 1
		c.Failure = &junitFailure{Message: xmlSafe(r.Reason), Type: "BootFailure", Text: xmlSafe(r.Tail)}
	}
	doc := junitSuites{Suites: []junitSuite{{
		Name: "ocidisk test", Tests: 1, Failures: failures, Time: secs,
		Timestamp: r.Start.UTC().Format("2006-01-02T15:04:05"), Cases: []junitCase{c},
	}}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// xmlSafe drops the control characters XML 1.0 cannot hold (a serial
// console has escape sequences).
func xmlSafe(s string) string {
	b := make([]rune, 0, len(s))
	for _, r := range s {
		if r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r != 0xfffd) {
			b = append(b, r)
		}
	}
	return string(b)
}
