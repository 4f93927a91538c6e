package tlsconf

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"os"
	"time"
)

// Reloader is a Server or a Client.
type Reloader interface {
	Reload() error
	files() []string
	// loaded is the digest of the files as of the last successful load.
	loaded() [sha256.Size]byte
}

func (s *Server) loaded() [sha256.Size]byte { return *s.digest.Load() }
func (c *Client) loaded() [sha256.Size]byte { return *c.digest.Load() }

func (s *Server) files() []string {
	return nonEmpty(s.o.CertPath, s.o.KeyPath, s.o.IntermediateCertsPath, s.o.CACertPath)
}

func (c *Client) files() []string {
	return append(nonEmpty(c.o.TrustCertsBundle, c.o.ClientCertPath, c.o.ClientKeyPath, c.o.ClientIntermediateCertsPath), c.o.TrustCerts...)
}

func nonEmpty(ps ...string) []string {
	out := ps[:0:0]
	for _, p := range ps {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Watch polls the files of r every interval and reloads when any of them
// changed, until ctx is done. Certificate rotation (cert-manager, Vault
// agents) replaces files in place, so polling is enough and works on
// every filesystem. Changes are detected by content, not modification
// time: coarse timestamps could hide a rewrite of the same size. onErr,
// if not nil, receives failed reloads; the previous material stays in
// use.
func Watch(ctx context.Context, r Reloader, interval time.Duration, onErr func(error)) {
	var failed [sha256.Size]byte // contents whose reload failed, not retried
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := digest(r.files())
		if now == r.loaded() || now == failed {
			continue
		}
		if err := r.Reload(); err != nil {
			failed = now
			if onErr != nil {
				onErr(err)
			}
		}
	}
}

// digest hashes the contents of files (a missing file hashes as such).
func digest(files []string) [sha256.Size]byte {
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			b = []byte("\x00missing")
		}
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}
