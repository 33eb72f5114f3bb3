package qemu

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/rootfs"
	"github.com/ocidisk/ocidisk/source"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// TestBootLogin boots the busybox test root made a system to log in to:
// the test waits for the kernel's start, logs in on the serial console
// with a password and runs commands in the guest's shell, stopping at the
// first that fails.
func TestBootLogin(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU")
	}
	k, _ := loadInputs(t)
	root, err := rootfs.Load(t.Context(), "oci:"+debian.BusyboxRoot(t), source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := debian.WriteLoginOverlay(dir, "ttyAMA0"); err != nil {
		t.Fatal(err)
	}
	overlay, err := rootfs.Load(t.Context(), "dir:"+dir, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := fstree.Merge(root.Tree, "", overlay.Tree); err != nil {
		t.Fatal(err)
	}
	img := bootImageOf(t, diskimage.MBR, k, root.Tree, "ocidisk.onfail=poweroff")
	run := []string{"uname -m", "cd /etc && cat hostname", "pwd; false", "echo never"}
	res, err := Test(context.Background(), virtConfig(t, img), TestOptions{
		Expect:  []*regexp.Regexp{regexp.MustCompile(`ocidisk-init: mounted /dev/vda2`)},
		Login:   &Login{User: debian.LoginUser, Password: debian.LoginPassword},
		Run:     run,
		Timeout: 120 * time.Second,
	})
	var te *TestError
	if !errors.As(err, &te) || te.Command == nil || te.Command.Command != "pwd; false" {
		t.Fatalf("want the failure of command 3, got %v", err)
	}
	want := []CommandResult{
		{Command: run[0], Ran: true, Status: 0, Output: "aarch64\n"},
		{Command: run[1], Ran: true, Status: 0, Output: "ocidisk-test\n"},
		// The directory carried over from the command before.
		{Command: run[2], Ran: true, Status: 1, Output: "/etc\n", Failure: "exited with status 1"},
		{Command: run[3], Status: -1},
	}
	for i, c := range res.Commands {
		c.Duration = 0
		if c != want[i] {
			t.Errorf("command %d: %+v, want %+v", i+1, c, want[i])
		}
	}
	if !res.LoggedIn || res.Passed || res.Reason != `command 3 "pwd; false" exited with status 1` {
		t.Errorf("logged in %v, passed %v, reason %q", res.LoggedIn, res.Passed, res.Reason)
	}
	// The password was typed with the echo off: it is not on the console.
	if strings.Contains(res.Console, "Password: "+debian.LoginPassword) {
		t.Errorf("the password is on the console:\n%s", res.Console)
	}
	t.Logf("logged in after %s, test ended after %s", res.BootDuration.Round(time.Millisecond), res.Duration.Round(time.Millisecond))
}
