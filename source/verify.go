package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// verifier hashes what is read through it and, at the end of the stream,
// returns an error wrapping ErrDigestMismatch instead of io.EOF when the
// bytes do not hash to want.
type verifier struct {
	r    io.Reader
	want v1.Hash
	h    hash.Hash
}

// verify wraps r in a verifier; a zero want checks nothing.
func verify(r io.Reader, want v1.Hash) io.Reader {
	if want == (v1.Hash{}) {
		return r
	}
	return &verifier{r: r, want: want, h: sha256.New()}
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	if err == io.EOF {
		if v.want.Algorithm != "sha256" {
			return n, fmt.Errorf("digest %s: only sha256 is supported", v.want)
		}
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want.Hex {
			return n, fmt.Errorf("blob %s has sha256:%s: %w", v.want, got, ErrDigestMismatch)
		}
	}
	return n, err
}

// sha256Of returns the digest of b.
func sha256Of(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

// hashReader returns the sha256 digest of everything r yields.
func hashReader(ctx context.Context, r io.Reader, p *progress) (v1.Hash, error) {
	h := sha256.New()
	buf := make([]byte, 1<<20)
	if _, err := io.CopyBuffer(h, &progressReader{ctx: ctx, r: r, p: p}, buf); err != nil {
		return v1.Hash{}, err
	}
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, nil
}

// progress adds up layer bytes read across goroutines for Options.Progress.
type progress struct {
	fn          func(done, total int64)
	mu          sync.Mutex
	done, total int64
}

func (p *progress) expect(n int64) {
	p.mu.Lock()
	p.total += n
	p.mu.Unlock()
}

func (p *progress) add(n int64) {
	if p == nil || p.fn == nil || n == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	p.fn(min(p.done, p.total), p.total)
}

// progressReader reports the bytes read through it and stops when the
// context is cancelled, so that a long decompression can be interrupted.
type progressReader struct {
	ctx context.Context
	r   io.Reader
	p   *progress
}

func (r *progressReader) Read(b []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.r.Read(b)
	r.p.add(int64(n))
	return n, err
}
