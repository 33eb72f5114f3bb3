package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ocidisk/ocidisk/testimages/debian"
)

// input is one tree to build, with everything the timed runs need made
// beforehand.
type input struct {
	label  string // the table's name for it
	dir    string // its scratch directory
	layout string // the OCI layout ocidisk builds from
	ref    string // the same image in the registry, for crane
	// kernel is the kernel: the .deb, or with kind "dir" the directory
	// it was extracted to beforehand (as a user who builds their own
	// kernel has it, after make modules_install).
	kernel, kind string
	layers       []string
	// data is the kernel package's data archive, taken out of the .deb for
	// the floor; "-" for a kernel directory, which has nothing to
	// decompress.
	data string
	// boot holds the boot partition's files and table the partition table
	// (sfdisk -d), both from a reference image ocidisk built: the pipeline
	// reuses them.
	boot, table string
}

// prepare makes (or finds in the test data cache) the tree called name,
// with the kernel as kind (deb or dir), pushes it to the registry and
// builds the reference image.
func prepare(ctx context.Context, c config, reg *registry, name, kind string) (*input, error) {
	spec := debian.DefaultTree()
	switch name {
	case "small":
	case "large":
		spec = debian.LargeTree()
	default:
		return nil, fmt.Errorf("unknown input (want small or large)")
	}
	cache, err := debian.OpenCache(c.log)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(c.progress, "%s: preparing the inputs (the first time, mmdebstrap builds them from the Debian archive)\n", spec.Name)
	tree, err := cache.Tree(ctx, spec)
	if err != nil {
		return nil, err
	}
	kernel, err := cache.Kernel(ctx)
	if err != nil {
		return nil, err
	}
	in := &input{
		label:  fmt.Sprintf("%s (%d entries, %.0f MiB), kernel %s", spec.Name, tree.Entries, float64(tree.Bytes)/(1<<20), kind),
		dir:    filepath.Join(c.work, spec.Name+"-"+kind),
		layout: tree.Layout,
		ref:    reg.addr + "/bench/" + spec.Name + ":latest",
		kernel: kernel,
		kind:   kind,
		layers: tree.Layers,
	}
	if err := os.MkdirAll(in.dir, 0o755); err != nil {
		return nil, err
	}
	if _, err := output(ctx, c.crane, "push", in.layout, in.ref); err != nil {
		return nil, err
	}
	switch kind {
	case "deb":
		if in.data, err = dataArchive(ctx, in.kernel, in.dir); err != nil {
			return nil, err
		}
	case "dir":
		in.kernel, in.data = filepath.Join(in.dir, "kernel"), "-"
		if _, err := output(ctx, "dpkg-deb", "-x", kernel, in.kernel); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown kernel kind %q (want deb or dir)", kind)
	}
	return in, reference(ctx, c, in)
}

// reference builds the image once and takes its partition table and boot
// files out for the pipeline.
func reference(ctx context.Context, c config, in *input) error {
	img := filepath.Join(in.dir, "reference.img")
	cache := filepath.Join(in.dir, "reference-cache")
	cmd := exec.CommandContext(ctx, c.ocidisk, ocidiskArgs(in, img)...)
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cache)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("reference build: %w\n%s", err, out)
	}
	if err := os.RemoveAll(cache); err != nil {
		return err
	}
	dump, err := output(ctx, "sfdisk", "-d", img)
	if err != nil {
		return err
	}
	// The partition lines name the reference's devices; sfdisk takes them
	// without names for any disk.
	var table []string
	for _, line := range strings.Split(string(dump), "\n") {
		if strings.HasPrefix(line, "device:") {
			continue
		}
		if _, rest, ok := strings.Cut(line, " : start="); ok {
			line = "start=" + rest
		}
		table = append(table, line)
	}
	in.table = filepath.Join(in.dir, "table.sfdisk")
	if err := os.WriteFile(in.table, []byte(strings.Join(table, "\n")), 0o644); err != nil {
		return err
	}
	var bootStart int64
	if _, err := fmt.Sscanf(strings.TrimPrefix(table[firstPartition(table)], "start="), "%d", &bootStart); err != nil {
		return fmt.Errorf("reference image: no first partition in %q", dump)
	}
	in.boot = filepath.Join(in.dir, "boot")
	if err := os.MkdirAll(in.boot, 0o755); err != nil {
		return err
	}
	_, err = output(ctx, "mcopy", "-s", "-n", "-i", fmt.Sprintf("%s@@%d", img, bootStart*512), "::/*", in.boot+"/")
	if err == nil {
		err = os.Remove(img)
	}
	return err
}

func firstPartition(lines []string) int {
	for i, l := range lines {
		if strings.HasPrefix(l, "start=") {
			return i
		}
	}
	return 0
}

// ocidiskArgs is the build every ocidisk run does.
func ocidiskArgs(in *input, out string) []string {
	return []string{"build", "-q", "--board", "qemu-virt-arm64", "--kernel", in.kind + ":" + in.kernel, "-o", out, "oci:" + in.layout}
}

// dataArchive copies the data member of a .deb (data.tar.xz, .zst, ...)
// into dir.
func dataArchive(ctx context.Context, deb, dir string) (string, error) {
	list, err := output(ctx, "ar", "t", deb)
	if err != nil {
		return "", err
	}
	for _, m := range strings.Fields(string(list)) {
		if !strings.HasPrefix(m, "data.tar") {
			continue
		}
		b, err := output(ctx, "ar", "p", deb, m)
		if err != nil {
			return "", err
		}
		p := filepath.Join(dir, m)
		return p, os.WriteFile(p, b, 0o644)
	}
	return "", fmt.Errorf("%s: no data.tar member", deb)
}

// output runs a program and returns its standard output, or an error with
// its standard error.
func output(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, stderr.Bytes())
	}
	return out, nil
}

// registry is Debian's docker-registry on a loopback port: crane export
// reads images from a registry, as a user's would.
type registry struct {
	addr string
	cmd  *exec.Cmd
}

func startRegistry(ctx context.Context, dir string) (*registry, error) {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		return nil, fmt.Errorf("docker-registry not found (apt-get install docker-registry): %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "config.yml")
	conf := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		return nil, err
	}
	r := &registry{addr: addr, cmd: exec.Command(bin, "serve", cfg)}
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	logf.Close()
	client := &http.Client{Timeout: time.Second}
	for range 100 {
		if ctx.Err() != nil {
			break
		}
		resp, err := client.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.stop()
	return nil, fmt.Errorf("docker-registry did not answer on %s (log: %s)", addr, logf.Name())
}

func (r *registry) stop() {
	r.cmd.Process.Kill()
	r.cmd.Wait()
}
