package pipeline

import (
	"log/slog"
	"reflect"
	"runtime"
	"strings"
	"sync"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/verity"
)

// prehash computes the dm-verity digests of the root's file contents in
// the background, while the build waits on other work (the kernel's
// modules, the boot files), so that the write of a verified erofs root
// need not hash them (erofs.Options.BlockDigests, verity.Writer.Expect):
// the SHA-256 of a 500 MB root is some 0.3 s of a core, which the write
// would otherwise add. Contents are known by their Content value, which
// layers give each file of theirs alone: a file the build replaces
// (/etc/fstab, a merged overlay's) has a new one, and its old digests
// are never used. One worker: the build's own work takes the other core.
type prehash struct {
	hasher *verity.Hasher
	queue  chan []fstree.Content
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	log    *slog.Logger
	logged sync.Once

	mu           sync.Mutex
	sums         map[fstree.Content][]byte
	files, bytes int64
}

// hashedAhead is the least content worth hashing ahead: smaller files go
// inline, or are too few bytes to matter.
const hashedAhead = verity.BlockSize

func startPrehash(salt []byte, log *slog.Logger) *prehash {
	p := &prehash{hasher: verity.NewHasher(salt), log: log, queue: make(chan []fstree.Content, 4),
		stop: make(chan struct{}), done: make(chan struct{}), sums: map[fstree.Content][]byte{}}
	go p.run()
	return p
}

func (p *prehash) run() {
	defer close(p.done)
	for {
		select {
		case <-p.stop:
			return
		case batch := <-p.queue:
			for _, c := range batch {
				select {
				case <-p.stop:
					return
				default:
				}
				p.hash(c)
				// The build's own goroutines first: they are what it
				// waits on.
				runtime.Gosched()
			}
		}
	}
}

// hash computes one content's digests. A content that cannot be read is
// left to the write, which reports it.
func (p *prehash) hash(c fstree.Content) {
	r, err := c.Open()
	if err != nil {
		return
	}
	defer r.Close()
	sums, err := p.hasher.Blocks(nil, r)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.sums[c] = sums
	p.files++
	p.bytes += int64(len(sums)) / verity.DigestSize * verity.BlockSize
	p.mu.Unlock()
}

// contents lists the contents of the regular files of t under dir (""
// for all) worth hashing ahead. It only reads t, in the caller's
// goroutine: the worker touches the contents, never a tree.
func contents(t *fstree.Tree, dir string) []fstree.Content {
	var out []fstree.Content
	seen := map[fstree.Content]bool{}
	_ = t.Walk(func(path string, n *fstree.Node) error {
		if n.Type != fstree.TypeRegular || n.Size < hashedAhead || !keyable(n.Content) || seen[n.Content] {
			return nil
		}
		if dir != "" && !strings.HasPrefix(path, dir+"/") {
			return nil
		}
		seen[n.Content] = true
		out = append(out, n.Content)
		return nil
	})
	return out
}

// add queues contents for hashing, unless the queue is full.
func (p *prehash) add(batch []fstree.Content) {
	select {
	case p.queue <- batch:
	default:
	}
}

// addFrom queues the batch that arrives on c, until the worker stops.
func (p *prehash) addFrom(c <-chan []fstree.Content) {
	go func() {
		select {
		case b := <-c:
			p.add(b)
		case <-p.stop:
		}
	}()
}

// keyable reports whether c is a content prehash takes: one behind a
// pointer, as a layer's files are, which can be a map key and stands for
// bytes that do not change. A host file (fstree.HostFile) is read again
// when written, and may have changed in between: it is left to the write.
func keyable(c fstree.Content) bool {
	return c != nil && reflect.TypeOf(c).Kind() == reflect.Pointer
}

// finish stops the worker after the content it is hashing and waits for
// it. What it has not hashed, the write hashes.
func (p *prehash) finish() {
	p.once.Do(func() { close(p.stop) })
	<-p.done
}

// digests returns the digests of n's content, or nil. The first call
// stops the worker: the root's write has begun.
func (p *prehash) digests(n *fstree.Node) []byte {
	p.finish()
	p.logged.Do(func() {
		files, bytes := p.hashed()
		p.log.Debug("verity: root files hashed ahead", "files", files, "bytes", bytes)
	})
	if !keyable(n.Content) {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sums[n.Content]
}

// hashed is what the worker hashed: files and bytes.
func (p *prehash) hashed() (files, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.files, p.bytes
}
