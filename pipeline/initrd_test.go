package pipeline

import (
	"bytes"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/bootfs"
	"github.com/ocidisk/ocidisk/bootfs/initramfs"
	"github.com/ocidisk/ocidisk/kernel"
	"github.com/ocidisk/ocidisk/rootfs"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// TestInitrdAhead: the initramfs made ahead, once the kernel and the time
// arrive, is what the assembly gets when it asks for the same spec, and
// equals one built then; a spec of another time is built anew; without a
// time, asking neither waits nor builds ahead.
func TestInitrdAhead(t *testing.T) {
	cfg := testConfig(t, "oci:unused", "")
	l, err := cfg.check()
	if err != nil {
		t.Fatal(err)
	}
	img, err := rootfs.Load(t.Context(), "deb:"+debian.KernelDeb(t), cfg.Sources)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	k, err := kernel.Find(img.Tree)
	if err != nil {
		t.Fatal(err)
	}
	when := time.Unix(1_700_000_000, 0).UTC()
	spec, err := bootfs.InitramfsSpec(l, k, false, when)
	if err != nil {
		t.Fatal(err)
	}
	want, err := initramfs.Build(spec)
	if err != nil {
		t.Fatal(err)
	}

	kernels, times := make(chan *kernel.Kernel, 1), make(chan time.Time, 1)
	a := startInitrd(t.Context(), l, false, kernels, times)
	kernels <- k
	times <- when
	<-a.done // let it finish, so that build must take it
	if !a.built || !a.spec.Equal(spec) {
		t.Fatalf("made ahead: %v, of spec %+v, want %+v", a.built, a.spec, spec)
	}
	got, err := a.build(spec)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("made ahead: %d bytes (%v), built now %d: not the same", len(got), err, len(want))
	}
	if &got[0] != &a.rd[0] {
		t.Error("the initramfs was built again, not taken")
	}
	later := spec
	later.Time = when.Add(time.Hour)
	if got, err := a.build(later); err != nil || bytes.Equal(got, want) {
		t.Errorf("another time: %d bytes (%v), the same as the one made ahead", len(got), err)
	}

	// No time ever comes: the first build stops the waiting.
	b := startInitrd(t.Context(), l, false, kernels, make(chan time.Time))
	kernels <- k
	if got, err := b.build(spec); err != nil || !bytes.Equal(got, want) || b.built {
		t.Errorf("without a time: %d bytes (%v), made ahead %v", len(got), err, b.built)
	}
}
