package boards

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"text/template"

	"go.yaml.in/yaml/v3"
)

// fieldError is a validation error about one field, named by its path in
// the file ("disk.partitions[1].fs").
type fieldError struct {
	field string
	msg   string
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

func bad(field, format string, a ...any) error {
	return &fieldError{field, fmt.Sprintf(format, a...)}
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

func oneOf[T ~string](field string, v T, allowed ...T) error {
	names := make([]string, len(allowed))
	for i, a := range allowed {
		if v == a {
			return nil
		}
		names[i] = string(a)
	}
	if v == "" {
		return bad(field, "missing (want one of %s)", strings.Join(names, ", "))
	}
	return bad(field, "%q is not one of %s", v, strings.Join(names, ", "))
}

// relPath checks a path on the boot partition or in a source tree.
func relPath(field, p string, required bool) error {
	if p == "" {
		if required {
			return bad(field, "missing")
		}
		return nil
	}
	c := path.Clean(strings.TrimPrefix(p, "/"))
	if c == ".." || strings.HasPrefix(c, "../") {
		return bad(field, "%q leaves the partition", p)
	}
	return nil
}

func (b *Board) validate() error {
	if !nameRE.MatchString(b.Name) {
		return bad("name", "%q must be lower-case letters, digits, '.', '_' or '-'", b.Name)
	}
	if b.Description == "" {
		return bad("description", "missing")
	}
	if err := oneOf("arch", b.Arch, "arm64", "arm"); err != nil {
		return err
	}
	if err := b.Disk.validate(); err != nil {
		return err
	}
	if err := b.Disk.validateData(); err != nil {
		return err
	}
	if b.AB != nil {
		if err := b.AB.validate(); err != nil {
			return err
		}
	} else if b.Disk.AB {
		return bad("disk.ab", "the board has no ab section saying how its firmware picks a slot")
	}
	if err := b.validateBlobs(); err != nil {
		return err
	}
	if err := relPath("kernel.file", b.Kernel.File, b.UKI == nil); err != nil {
		return err
	}
	if err := relPath("initramfs.file", b.Initramfs.File, b.UKI == nil); err != nil {
		return err
	}
	if b.UKI != nil {
		if err := b.UKI.validate(); err != nil {
			return err
		}
	}
	if err := oneOf("initramfs.compression", b.Initramfs.Compression, "gzip", "none"); err != nil {
		return err
	}
	for _, l := range []struct {
		field string
		names []string
	}{{"initramfs.modules", b.Initramfs.Modules}, {"initramfs.optional-modules", b.Initramfs.OptionalModules}} {
		for i, m := range l.names {
			if m == "" || strings.ContainsAny(m, "/ ") {
				return bad(fmt.Sprintf("%s[%d]", l.field, i), "%q is not a module name", m)
			}
		}
	}
	for i, c := range b.DTBs {
		f := fmt.Sprintf("dtbs[%d]", i)
		if err := checkGlob(f+".glob", c.Glob); err != nil {
			return err
		}
		if err := relPath(f+".to", c.To, false); err != nil {
			return err
		}
	}
	for i, fw := range b.Firmware {
		f := fmt.Sprintf("firmware[%d]", i)
		if fw.Model == "" {
			return bad(f+".model", "missing")
		}
		if len(fw.Files) == 0 {
			return bad(f+".files", "missing")
		}
		for j, d := range fw.Dirs {
			if err := relPath(fmt.Sprintf("%s.dirs[%d]", f, j), d, false); err != nil {
				return err
			}
		}
		for _, l := range []struct {
			key   string
			globs []string
		}{{"files", fw.Files}, {"extra", fw.Extra}} {
			for j, g := range l.globs {
				if err := checkGlob(fmt.Sprintf("%s.%s[%d]", f, l.key, j), g); err != nil {
					return err
				}
			}
		}
		if err := relPath(f+".to", fw.To, false); err != nil {
			return err
		}
	}
	if m := b.BootMount; m != "" && (!path.IsAbs(m) || path.Clean(m) != m || m == "/" || strings.ContainsAny(m, " \t\n")) {
		return bad("boot-mount", "%q: want an absolute directory such as /boot/firmware", m)
	}
	if b.Console == "" {
		return bad("console", "missing (e.g. ttyAMA0)")
	}
	if err := checkTemplate("cmdline", b.Cmdline); err != nil {
		return err
	}
	user := ""
	for i, c := range b.Configs {
		f := fmt.Sprintf("configs[%d]", i)
		if err := relPath(f+".path", c.Path, true); err != nil {
			return err
		}
		if err := checkTemplate(f+".template", c.Template); err != nil {
			return err
		}
		if err := relPath(f+".overlay-dir", c.OverlayDir, false); err != nil {
			return err
		}
		if c.UserAppend {
			if user != "" {
				return bad(f+".user-append", "%s already takes the user's additions", user)
			}
			user = c.Path
		}
	}
	if b.QEMU != nil {
		return b.QEMU.validate()
	}
	return nil
}

func checkGlob(field, g string) error {
	if err := relPath(field, g, true); err != nil {
		return err
	}
	if _, err := path.Match(g, ""); err != nil {
		return bad(field, "%q: %v", g, err)
	}
	return nil
}

// checkTemplate parses t and executes it on sample data, so that a field
// name that TemplateData lacks is caught when the board is loaded.
func checkTemplate(field, t string) error {
	if strings.TrimSpace(t) == "" {
		return bad(field, "missing")
	}
	tm, err := template.New(field).Option("missingkey=error").Parse(t)
	if err != nil {
		return bad(field, "%v", err)
	}
	if err := tm.Execute(discard{}, sampleData()); err != nil {
		return bad(field, "%v", err)
	}
	return nil
}

// sampleData is what templates are tried on: two slots, as an A/B
// layout has.
func sampleData() TemplateData {
	return TemplateData{Slots: []SlotData{{Name: SlotA}, {Name: SlotB}}}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func (d *Disk) validate() error {
	if err := oneOf("disk.table", d.Table, Tables()...); err != nil {
		return err
	}
	if d.Alignment < 0 || d.Alignment%512 != 0 {
		return bad("disk.alignment", "%d is not a multiple of 512 bytes", d.Alignment)
	}
	if d.FirstPartitionOffset < 0 || d.FirstPartitionOffset%512 != 0 {
		return bad("disk.first-partition-offset", "%d is not a multiple of 512 bytes", d.FirstPartitionOffset)
	}
	if len(d.Partitions) == 0 {
		return bad("disk.partitions", "missing")
	}
	roles := map[Role]bool{}
	for i, p := range d.Partitions {
		f := fmt.Sprintf("disk.partitions[%d]", i)
		if p.Name == "" {
			return bad(f+".name", "missing")
		}
		if err := oneOf(f+".role", p.Role, RoleBoot, RoleRoot); err != nil {
			return err
		}
		if roles[p.Role] {
			return bad(f+".role", "a second %s partition", p.Role)
		}
		roles[p.Role] = true
		if err := oneOf(f+".fs", p.FS, packFilesystems()...); err != nil {
			return err
		}
		if p.Size < 0 || p.Size%512 != 0 {
			return bad(f+".size", "%d is not a multiple of 512 bytes", p.Size)
		}
		if p.Grow && (p.Role != RoleRoot || i != len(d.Partitions)-1) {
			return bad(f+".grow", "only the root partition, last on the disk, can grow")
		}
		if p.ESP && (p.FS != FAT || p.Type != "") {
			return bad(f+".esp", "an EFI System partition has fs: fat and the EFI System type (no type:)")
		}
		if p.Type != "" && d.Table == "mbr" {
			if v, err := strconv.ParseUint(p.Type, 16, 8); err != nil || v == 0 {
				return bad(f+".type", "%q is not an MBR partition type byte (hex, e.g. 0c)", p.Type)
			}
		}
	}
	for _, r := range []Role{RoleBoot, RoleRoot} {
		if !roles[r] {
			return bad("disk.partitions", "no partition with role %s", r)
		}
	}
	return nil
}

func (q *QEMU) validate() error {
	for _, f := range []struct{ name, v string }{
		{"qemu.binary", q.Binary}, {"qemu.machine", q.Machine},
	} {
		if f.v == "" {
			return bad(f.name, "missing")
		}
	}
	if q.SMP < 0 {
		return bad("qemu.smp", "%d CPUs", q.SMP)
	}
	if q.Memory < 0 {
		return bad("qemu.memory", "%d MiB", q.Memory)
	}
	if err := oneOf("qemu.drive", q.Drive, "virtio", "sd"); err != nil {
		return err
	}
	if q.Boot == "" {
		q.Boot = BootBIOS
	}
	if err := oneOf("qemu.boot", q.Boot, BootBIOS, BootUEFI, BootConfigTxt, BootExtlinux); err != nil {
		return err
	}
	switch {
	case q.Boot == BootBIOS && q.Firmware == nil:
		return bad("qemu.boot", "%s needs qemu.firmware (the U-Boot that finds the kernel)", BootBIOS)
	case q.Boot == BootUEFI && q.UEFI == nil:
		return bad("qemu.boot", "%s needs qemu.uefi (the UEFI firmware that boots the EFI System partition)", BootUEFI)
	case q.Boot != BootBIOS && q.Firmware != nil:
		return bad("qemu.firmware", "only for boot: %s (U-Boot as -bios)", BootBIOS)
	case q.Boot != BootUEFI && q.UEFI != nil:
		return bad("qemu.uefi", "only for boot: %s", BootUEFI)
	case q.Boot == BootConfigTxt && (q.Pi == nil || q.Pi.Kernel == ""):
		return bad("qemu.pi.kernel", "missing (the kernel the Pi firmware loads when config.txt names none)")
	case q.Boot != BootConfigTxt && q.Pi != nil:
		return bad("qemu.pi", "only for boot: %s", BootConfigTxt)
	}
	if u := q.UEFI; u != nil {
		if u.BIOS == "" {
			return bad("qemu.uefi.bios", "missing (the host path of the UEFI firmware, e.g. QEMU_EFI.fd)")
		}
		if u.Package == "" {
			return bad("qemu.uefi.package", "missing (the Debian package that provides the firmware)")
		}
	}
	if fw := q.Firmware; fw != nil {
		if fw.BIOS == "" {
			return bad("qemu.firmware.bios", "missing (the host path of u-boot.bin)")
		}
		if fw.Package == "" {
			return bad("qemu.firmware.package", "missing (the Debian package that provides the bios)")
		}
		if fw.EnvSize <= 8 {
			return bad("qemu.firmware.env-size", "missing (U-Boot's CONFIG_ENV_SIZE)")
		}
		if fw.FlashSize < fw.EnvSize {
			return bad("qemu.firmware.flash-size", "%d is smaller than env-size", fw.FlashSize)
		}
		for k := range fw.Env {
			if k == "" || strings.ContainsAny(k, "=\x00\n") {
				return bad("qemu.firmware.env", "%q is not a variable name", k)
			}
		}
	}
	return nil
}

// lineOf finds the line of a field path ("disk.partitions[1].fs") in a
// parsed document, or of its nearest existing parent; 0 when unknown.
func lineOf(doc *yaml.Node, field string) int {
	n := doc
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, part := range strings.Split(field, ".") {
		key, idx := part, -1
		if i := strings.IndexByte(part, '['); i >= 0 {
			key = part[:i]
			idx, _ = strconv.Atoi(strings.TrimSuffix(part[i+1:], "]"))
		}
		next := mapValue(n, key)
		if next == nil {
			return line
		}
		n, line = next, next.Line
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
		}
	}
	return line
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// validateBlobs refuses blobs that would overlap the partition table, the
// first partition or each other, as far as the board file tells: a blob's
// space is its size when the board gives one, else one byte.
func (b *Board) validateBlobs() error {
	if len(b.Blobs) == 0 {
		return nil
	}
	if b.Disk.FirstPartitionOffset == 0 {
		return bad("disk.first-partition-offset", "missing (a board with blobs must say where its partitions start)")
	}
	table := Size(512) // the MBR; a GPT's header sector follows it
	if b.Disk.Table == "gpt" {
		table = 1024
	}
	type span struct {
		field      string
		start, end Size
	}
	var spans []span
	for i, bl := range b.Blobs {
		f := fmt.Sprintf("blobs[%d]", i)
		if err := relPath(f+".file", bl.File, true); err != nil {
			return err
		}
		if bl.Offset <= 0 {
			return bad(f+".offset", "missing (the blob's byte offset on the disk)")
		}
		if bl.Size < 0 {
			return bad(f+".size", "%d bytes", bl.Size)
		}
		s := span{f, bl.Offset, bl.Offset + max(bl.Size, 1)}
		where := fmt.Sprintf("%s at %s-%s", path.Base(bl.File), s.start, s.end)
		if s.start < table {
			return bad(f+".offset", "%s overlaps the %s partition table (the first %s)", where, b.Disk.Table, table)
		}
		if s.end > b.Disk.FirstPartitionOffset {
			return bad(f+".offset", "%s overlaps partition %s, which starts at %s (disk.first-partition-offset)",
				where, b.Disk.Partitions[0].Name, b.Disk.FirstPartitionOffset)
		}
		for _, o := range spans {
			if s.start < o.end && o.start < s.end {
				return bad(f+".offset", "%s overlaps %s (%s-%s)", where, o.field, o.start, o.end)
			}
		}
		spans = append(spans, s)
	}
	return nil
}

func (u *UKI) validate() error {
	if len(u.Stub) == 0 {
		return bad("uki.stub", "missing (globs of the EFI stub in the firmware source, e.g. usr/lib/systemd/boot/efi/linuxaa64.efi.stub)")
	}
	for i, g := range u.Stub {
		if err := checkGlob(fmt.Sprintf("uki.stub[%d]", i), g); err != nil {
			return err
		}
	}
	return relPath("uki.path", u.Path, true)
}
