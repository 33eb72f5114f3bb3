package qemu

import (
	"cmp"
	"encoding/xml"
	"fmt"
	"io"
	"time"
)

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Skipped   int         `xml:"skipped,attr"`
	Time      string      `xml:"time,attr"`
	Timestamp string      `xml:"timestamp,attr"`
	Cases     []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut junitText     `xml:"system-out"`
}

// junitText is element text kept readable as CDATA (escaped text would
// turn every newline of a console log into &#xA;).
type junitText struct {
	Text string `xml:",cdata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",cdata"`
}

// WriteJUnit writes r as a JUnit XML report: one test case for the boot
// (its expectations and the login), named name in class class, with the
// whole serial console as its output; then one for each command run after
// logging in, named "$ COMMAND", with the command's output. Commands not
// reached are skipped.
func WriteJUnit(w io.Writer, class, name string, r *Result) error {
	secs := func(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }
	failed := r.Failed()
	boot := junitCase{Name: name, Classname: class, Time: secs(cmp.Or(r.BootDuration, r.Duration)), SystemOut: junitText{xmlSafe(r.Console)}}
	suite := junitSuite{Name: "ocidisk test", Time: secs(r.Duration), Timestamp: r.Start.UTC().Format("2006-01-02T15:04:05")}
	if !r.Passed && failed == nil {
		boot.Failure = &junitFailure{Message: xmlSafe(r.Reason), Type: "BootFailure", Text: xmlSafe(r.Tail)}
		suite.Failures++
	}
	suite.Cases = append(suite.Cases, boot)
	for i := range r.Commands {
		c := &r.Commands[i]
		tc := junitCase{Name: "$ " + xmlSafe(c.Command), Classname: class, Time: secs(c.Duration), SystemOut: junitText{xmlSafe(c.Output)}}
		switch {
		case !c.Ran:
			tc.Skipped = &junitSkipped{Message: "not run: an earlier step failed"}
			suite.Skipped++
		case !c.Passed():
			tc.Failure = &junitFailure{Message: xmlSafe(c.Failure), Type: "CommandFailure", Text: xmlSafe(c.Output)}
			suite.Failures++
		}
		suite.Cases = append(suite.Cases, tc)
	}
	suite.Tests = len(suite.Cases)
	doc := junitSuites{Suites: []junitSuite{suite}}
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
