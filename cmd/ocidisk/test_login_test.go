package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/testimages/debian"
)

// TestTestLogin builds the busybox test root with a login (an --overlay
// giving it busybox's init, a getty and a root password), then has
// `ocidisk test` log in and run commands: passing ones on the writable
// image, a failing one, and ones that use the user-mode network both ways.
func TestTestLogin(t *testing.T) {
	kernel := debian.KernelDeb(t)
	root := debian.BusyboxRoot(t)
	overlay := t.TempDir()
	if err := debian.WriteLoginOverlay(overlay, "ttyAMA0"); err != nil {
		t.Fatal(err)
	}
	img := buildImage(t, "--kernel", "deb:"+kernel, "--overlay", overlay, "oci:"+root)
	login := "--login=" + debian.LoginUser + ":" + debian.LoginPassword

	t.Run("commands pass", func(t *testing.T) {
		junit := t.TempDir() + "/report.xml"
		before := fileHash(t, img)
		code, out := bootTest(t, img, login, "--run", "uname -m", "--run", "test -e /etc/passwd",
			"--junit", junit, "--writable", "--timeout", "180s")
		if code != exitOK {
			t.Fatalf("exit %d\n%s", code, tail(out, 40))
		}
		if !strings.Contains(out, "$ uname -m\naarch64\n$ test -e /etc/passwd\n") ||
			!strings.Contains(out, "logged in as root, 2 commands passed, powered off") {
			t.Errorf("output does not show the commands and the result:\n%s", tail(out, 10))
		}
		// --writable: the guest powered off by itself, its writes kept.
		if fileHash(t, img) == before {
			t.Error("the writable image did not change")
		}
		doc, raw := readJUnit(t, junit)
		s := doc.Suites[0]
		if s.Tests != 3 || s.Failures != 0 || s.Cases[1].Name != "$ uname -m" || s.Cases[1].Out != "aarch64\n" || s.Cases[2].Name != "$ test -e /etc/passwd" {
			t.Errorf("JUnit report:\n%s", raw)
		}
	})

	t.Run("a command fails", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, "test", login, "--run", "echo before", "--run", "echo failing; false", "--run", "echo never",
			"--timeout", "180s", img)
		if code != exitFailure {
			t.Fatalf("exit %d, want %d\n%s%s", code, exitFailure, stdout, stderr)
		}
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		last := lines[len(lines)-1]
		if !strings.Contains(stderr, "--- output of \"echo failing; false\" (exit status 1) ---\nfailing\n") ||
			!strings.HasPrefix(last, "ocidisk: test: ") || !strings.Contains(last, `command 2 "echo failing; false" exited with status 1`) {
			t.Errorf("stderr does not show the failed command, its output and status:\n%s", stderr)
		}
		if strings.Contains(stdout+stderr, "never") {
			t.Errorf("a command after the failure ran:\n%s%s", stdout, stderr)
		}
	})

	t.Run("network", func(t *testing.T) {
		// The guest fetches from a server on the host (10.0.2.2 is the
		// host's loopback), then serves a line on a published port.
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "host says %s\n", r.URL.Path)
		}))
		defer srv.Close()
		_, hostPort, _ := net.SplitHostPort(srv.Listener.Addr().String())
		published := freePort(t)
		got := make(chan string, 1)
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			// Until the guest listens, the forwarded connection closes at
			// once, or (before the guest's network is up) waits while
			// QEMU tries to reach the guest: it may still be served.
			for {
				select {
				case <-stop:
					return
				case <-time.After(300 * time.Millisecond):
				}
				c, err := net.DialTimeout("tcp", "127.0.0.1:"+published, time.Second)
				if err != nil {
					continue
				}
				c.SetReadDeadline(time.Now().Add(3 * time.Minute))
				line, _ := bufio.NewReader(c).ReadString('\n')
				c.Close()
				if line != "" {
					got <- line
					return
				}
			}
		}()
		code, out := bootTest(t, img, login, "--net", "user", "--publish", "127.0.0.1:"+published+":8080",
			"--run", "modprobe virtio_net",
			"--run", "ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0",
			"--run", "wget -q -O- http://10.0.2.2:"+hostPort+"/from-guest",
			"--run", "echo from the guest | nc -l -p 8080",
			"--timeout", "180s")
		if code != exitOK {
			t.Fatalf("exit %d\n%s", code, tail(out, 40))
		}
		if !strings.Contains(out, "host says /from-guest\n") {
			t.Errorf("the guest did not reach the host:\n%s", tail(out, 20))
		}
		select {
		case s := <-got:
			if s != "from the guest\n" {
				t.Errorf("the host read %q from the published port", s)
			}
		case <-time.After(5 * time.Second):
			t.Error("the host read nothing from the published port")
		}
	})
}

// freePort returns a TCP port free on the loopback now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}
