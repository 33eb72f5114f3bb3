package kernel

import (
	"bytes"
	"fmt"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ocidisk/ocidisk/fstree"
)

// Modules indexes a kernel's loadable modules by name and alias.
type Modules struct {
	Version string
	// All lists every module, sorted by path.
	All     []*Module
	byName  map[string]*Module
	builtin map[string]bool     // built-in module names
	balias  map[string][]string // built-in module aliases, normalized

	generated []generatedFile // the index files of All, once Generate made them
}

// Modules reads the .modinfo of every module of k, once (later calls
// return the same index). It fails when k has no modules directory.
func (k *Kernel) Modules() (*Modules, error) {
	if k.modules != nil {
		return k.modules, nil
	}
	ms, err := k.readModules()
	if err != nil {
		return nil, err
	}
	k.modules = ms
	return ms, nil
}

func (k *Kernel) readModules() (*Modules, error) {
	if k.ModulesDir == "" {
		return nil, fmt.Errorf("kernel %s: no modules directory (lib/modules/%s)", k.Version, k.Version)
	}
	dir, err := k.Tree.Lookup(k.ModulesDir)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", k.Version, err)
	}
	ms := &Modules{Version: k.Version, byName: map[string]*Module{}, builtin: map[string]bool{}, balias: map[string][]string{}}
	// The walk lists the modules; their .modinfo sections are read by a
	// goroutine a core (a distribution kernel has four thousand modules,
	// each a file to open and parse), and gathered in the walk's order.
	type found struct {
		rel string
		n   *fstree.Node
	}
	var files []found
	var walk func(rel string, n *fstree.Node)
	walk = func(rel string, n *fstree.Node) {
		for _, e := range n.Entries() {
			p := path.Join(rel, e.Name)
			switch {
			case e.Node.IsDir():
				walk(p, e.Node)
			case e.Node.Type == fstree.TypeRegular && moduleName(e.Name) != "":
				files = append(files, found{p, e.Node})
			}
		}
	}
	walk("", dir)
	mods := make([]*Module, len(files))
	errs := make([]error, len(files))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(files)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(files); i = int(next.Add(1) - 1) {
				mods[i], errs[i] = readModule(files[i].rel, files[i].n)
			}
		})
	}
	wg.Wait()
	for i, m := range mods {
		if errs[i] != nil {
			return nil, fmt.Errorf("kernel %s: %w", k.Version, errs[i])
		}
		if prev := ms.byName[m.Name]; prev != nil {
			return nil, fmt.Errorf("kernel %s: module %s is both %s and %s", k.Version, m.Name, prev.Path, m.Path)
		}
		ms.byName[m.Name] = m
		ms.All = append(ms.All, m)
	}
	if n := dir.Child("modules.builtin"); n != nil && n.Type == fstree.TypeRegular {
		b, err := fstree.ReadAll(n)
		if err != nil {
			return nil, fmt.Errorf("kernel %s: modules.builtin: %w", k.Version, err)
		}
		for _, l := range strings.Fields(string(b)) {
			ms.builtin[moduleName(path.Base(l))] = true
		}
	}
	if n := dir.Child("modules.builtin.modinfo"); n != nil && n.Type == fstree.TypeRegular {
		b, err := fstree.ReadAll(n)
		if err != nil {
			return nil, fmt.Errorf("kernel %s: modules.builtin.modinfo: %w", k.Version, err)
		}
		for _, kv := range bytes.Split(b, []byte{0}) {
			key, alias, ok := strings.Cut(string(kv), ".alias=")
			if ok {
				ms.balias[normalize(alias)] = append(ms.balias[normalize(alias)], normalize(key))
				ms.builtin[normalize(key)] = true
			}
		}
	}
	return ms, nil
}

// Lookup returns the modules a name stands for, as modprobe resolves it: a
// module of that name, else every module with a matching alias. builtin
// reports that the name is (or is an alias of) a module built into the
// kernel, which needs no loading.
func (ms *Modules) Lookup(name string) (mods []*Module, builtin bool) {
	nn := normalize(name)
	if m := ms.byName[nn]; m != nil {
		return []*Module{m}, false
	}
	if ms.builtin[nn] {
		return nil, true
	}
	for _, m := range ms.All {
		for _, a := range m.Aliases {
			if ok, _ := path.Match(normalize(a), nn); ok || normalize(a) == nn {
				mods = append(mods, m)
				break
			}
		}
	}
	return mods, len(mods) == 0 && len(ms.balias[nn]) > 0
}

// Closure returns the modules that loading names needs, in the order
// kmod's modprobe loads them: each module after its dependencies and its
// soft pre-dependencies, before its soft post-dependencies. A missing module or hard dependency is an
// error naming it; a missing soft dependency is skipped, as modprobe does.
func (ms *Modules) Closure(names []string) ([]*Module, error) {
	var order []*Module
	state := map[*Module]int{} // 1: being visited, 2: done
	var visit func(m *Module, chain []string) error
	want := func(name string, chain []string, soft bool) error {
		mods, builtin := ms.Lookup(name)
		if len(mods) == 0 && !builtin && !soft {
			if len(chain) == 0 {
				return fmt.Errorf("kernel %s: module %s not found", ms.Version, name)
			}
			return fmt.Errorf("kernel %s: module %s (needed by %s) not found", ms.Version, name, strings.Join(chain, " <- "))
		}
		for _, m := range mods {
			if err := visit(m, chain); err != nil {
				return err
			}
		}
		return nil
	}
	visit = func(m *Module, chain []string) error {
		if state[m] != 0 {
			return nil // done, or a soft dependency cycle
		}
		state[m] = 1
		chain = append([]string{m.Name}, chain...)
		// kmod's order: hard dependencies (each with its own soft ones),
		// then this module's soft pre-dependencies, the module, and its
		// soft post-dependencies.
		for _, d := range m.Depends {
			if err := want(d, chain, false); err != nil {
				return err
			}
		}
		for _, d := range m.SoftPre {
			if err := want(d, chain, true); err != nil {
				return err
			}
		}
		state[m] = 2
		order = append(order, m)
		for _, d := range m.SoftPost {
			if err := want(d, chain, true); err != nil {
				return err
			}
		}
		return nil
	}
	for _, n := range names {
		if err := want(n, nil, false); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// Deps returns the hard dependencies of m, transitively, in the order
// modules.dep lists them: a module before the modules it needs, so that
// loading the list from its end works.
func (ms *Modules) Deps(m *Module) []*Module {
	var order []*Module
	seen := map[*Module]bool{m: true}
	var visit func(m *Module)
	visit = func(m *Module) {
		for _, d := range m.Depends {
			for _, dm := range ms.byNameOnly(d) {
				if !seen[dm] {
					seen[dm] = true
					visit(dm)
					order = append(order, dm)
				}
			}
		}
	}
	visit(m)
	slices.Reverse(order)
	return order
}

func (ms *Modules) byNameOnly(name string) []*Module {
	if m := ms.byName[normalize(name)]; m != nil {
		return []*Module{m}
	}
	return nil
}
