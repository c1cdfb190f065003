// Package file is the crash-safe, file-per-key storage.Backend behind the
// server configuration's `storage "file" { path = "..." }`.
//
// Layout (Vault's, spec §5.6): key "a/b/c" is the file <path>/a/b/_c whose
// content is the JSON line {"Value":"<base64>"}. Folder names are the key's
// segments, except that a segment starting with "_" or "%" is stored as
// "%5F…" / "%25…" so that a folder never collides with a "_" leaf file.
//
// Durability: Put writes a uniquely named temporary file in the target
// folder (names starting ".tmp-", never a key), fsyncs it, renames it over
// the final name and fsyncs the folder (and the parent of every folder it
// had to create). rename(2) is atomic, so after a crash a key holds its old
// or its new value, never a torn one, and every Put that returned nil is
// readable. New removes leftover temporary files and fsyncs all folders. Delete fsyncs the
// folder after unlinking and prunes empty folders.
//
// A Backend is safe for concurrent use; writes to different keys proceed in
// parallel, writes to the same key are ordered by a striped lock.
package file

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/keyward/keyward/internal/storage"
)

// Errors.
var (
	// ErrInvalidKey is returned for keys this backend cannot store: empty,
	// with a leading or trailing "/", an empty, "." or ".." segment, a NUL
	// byte, or a segment longer than MaxSegment bytes.
	ErrInvalidKey = errors.New("file storage: invalid key")
	// ErrParentReference is returned (wrapped with ErrInvalidKey) for keys
	// with a ".." segment; its text is Vault's.
	ErrParentReference = errors.New("path cannot contain parent references")
	// ErrCorrupt is returned by Get when a stored file cannot be decoded.
	ErrCorrupt = errors.New("file storage: corrupt entry")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("file storage: closed")
)

// MaxSegment is the longest key segment in bytes (NAME_MAX 255 minus the
// "_" or escape prefix).
const MaxSegment = 253

const (
	tmpPrefix = ".tmp-"
	dirMode   = 0o700
	fileMode  = 0o600
	stripes   = 64
)

// Backend stores each key in its own file under a root folder.
type Backend struct {
	root   string
	seed   maphash.Seed
	closed atomic.Bool

	// keyMu orders Put and Delete of the same key (striped by key hash).
	keyMu [stripes]sync.Mutex
	// dirMu makes "folder exists" imply "folder entry is durable": folders
	// are created and their parents fsynced while holding it.
	dirMu sync.Mutex
}

var _ storage.Backend = (*Backend)(nil)

// New opens (creating with mode 0700 if missing) the store rooted at path
// and recovers from an earlier crash: it removes leftover temporary files
// and fsyncs every folder (see recover). Opening costs one walk of the tree.
func New(path string) (*Backend, error) {
	if path == "" {
		return nil, errors.New("file storage: path is empty")
	}
	root, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("file storage: %w", err)
	}
	if err = os.MkdirAll(root, dirMode); err != nil {
		return nil, fmt.Errorf("file storage: creating %s: %w", root, err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("file storage: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("file storage: %s is not a directory", root)
	}
	b := &Backend{root: root, seed: maphash.MakeSeed()}
	if err := b.recover(); err != nil {
		return nil, err
	}
	return b, nil
}

// Path returns the absolute root folder.
func (b *Backend) Path() string { return b.root }

// Close marks the backend closed; later calls fail with ErrClosed. It holds
// no open files, so it never fails.
func (b *Backend) Close() error {
	b.closed.Store(true)
	return nil
}

// recover deletes temporary files left by a crashed Put and fsyncs every
// folder: a writer killed between creating a folder and fsyncing its parent
// leaves a folder that is visible but not yet durable, and a later Put must
// not build on it. Fsyncing a clean folder is cheap. It walks through an
// os.Root so that nothing outside the store can be reached.
func (b *Backend) recover() error {
	r, err := os.OpenRoot(b.root)
	if err != nil {
		return fmt.Errorf("file storage: %w", err)
	}
	defer func() { _ = r.Close() }()
	return fs.WalkDir(r.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("file storage: scanning %s: %w", p, err)
		}
		switch {
		case d.IsDir():
			f, err := r.Open(p)
			if err != nil {
				return fmt.Errorf("file storage: %w", err)
			}
			serr := f.Sync()
			if err := errors.Join(serr, f.Close()); err != nil {
				return fmt.Errorf("file storage: syncing %s: %w", p, err)
			}
		case d.Type().IsRegular() && strings.HasPrefix(d.Name(), tmpPrefix):
			if err := r.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("file storage: removing stale %s: %w", p, err)
			}
		}
		return nil
	})
}

func (b *Backend) check(ctx context.Context) error {
	if b.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// validSegment checks one key segment.
func validSegment(s string) error {
	switch {
	case s == "..":
		return fmt.Errorf("%w: %w", ErrInvalidKey, ErrParentReference)
	case s == "" || s == ".":
		return fmt.Errorf("%w: empty or \".\" segment", ErrInvalidKey)
	case len(s) > MaxSegment:
		return fmt.Errorf("%w: segment longer than %d bytes", ErrInvalidKey, MaxSegment)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%w: NUL byte", ErrInvalidKey)
	}
	return nil
}

// escapeDir maps a key segment to its folder name.
func escapeDir(s string) string {
	switch {
	case strings.HasPrefix(s, "_"):
		return "%5F" + s[1:]
	case strings.HasPrefix(s, "%"):
		return "%25" + s[1:]
	}
	return s
}

// unescapeDir reverses escapeDir.
func unescapeDir(name string) string {
	switch {
	case strings.HasPrefix(name, "%5F"):
		return "_" + name[3:]
	case strings.HasPrefix(name, "%25"):
		return "%" + name[3:]
	}
	return name
}

// dirOf returns the folder for the key segments segs.
func (b *Backend) dirOf(segs []string) string {
	parts := make([]string, 0, len(segs)+1)
	parts = append(parts, b.root)
	for _, s := range segs {
		parts = append(parts, escapeDir(s))
	}
	return filepath.Join(parts...)
}

// expand validates key and returns its folder and file name.
func (b *Backend) expand(key string) (dir, name string, err error) {
	if key == "" {
		return "", "", fmt.Errorf("%w: empty key", ErrInvalidKey)
	}
	segs := strings.Split(key, "/")
	for _, s := range segs {
		if err := validSegment(s); err != nil {
			return "", "", fmt.Errorf("%w (key %q)", err, key)
		}
	}
	return b.dirOf(segs[:len(segs)-1]), "_" + segs[len(segs)-1], nil
}

func (b *Backend) lockKey(key string) *sync.Mutex {
	return &b.keyMu[maphash.String(b.seed, key)%stripes]
}

type record struct {
	Value []byte
}

func encode(v []byte) []byte {
	out := make([]byte, 0, len(`{"Value":""}`)+1+base64.StdEncoding.EncodedLen(len(v)))
	out = append(out, `{"Value":"`...)
	out = base64.StdEncoding.AppendEncode(out, v)
	return append(out, "\"}\n"...)
}

// Put atomically and durably replaces the value under e.Key.
func (b *Backend) Put(ctx context.Context, e *storage.Entry) error {
	if err := b.check(ctx); err != nil {
		return err
	}
	dir, name, err := b.expand(e.Key)
	if err != nil {
		return err
	}
	data := encode(e.Value)
	mu := b.lockKey(e.Key)
	mu.Lock()
	defer mu.Unlock()

	var tmp string
	for attempt := 0; ; attempt++ {
		if err = b.mkdirs(dir); err != nil {
			return err
		}
		tmp, err = writeTemp(dir, data)
		// A concurrent Delete may prune the folder between mkdirs and the
		// create; make it again.
		if errors.Is(err, fs.ErrNotExist) && attempt < 16 {
			continue
		}
		if err != nil {
			return fmt.Errorf("file storage: put %q: %w", e.Key, err)
		}
		break
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("file storage: put %q: %w", e.Key, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("file storage: put %q: %w", e.Key, err)
	}
	return nil
}

// writeTemp writes data to a new temporary file in dir and fsyncs it.
func writeTemp(dir string, data []byte) (string, error) {
	var rnd [8]byte
	for {
		if _, err := rand.Read(rnd[:]); err != nil {
			return "", err
		}
		p := filepath.Join(dir, tmpPrefix+hex.EncodeToString(rnd[:]))
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		_, werr := f.Write(data)
		serr := f.Sync()
		cerr := f.Close()
		if err := errors.Join(werr, serr, cerr); err != nil {
			_ = os.Remove(p)
			return "", err
		}
		return p, nil
	}
}

// mkdirs creates dir and its missing ancestors under root, fsyncing the
// parent of every folder it creates before returning.
func (b *Backend) mkdirs(dir string) error {
	b.dirMu.Lock()
	defer b.dirMu.Unlock()
	var missing []string
	for d := dir; d != b.root; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("file storage: %s is not a directory", d)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("file storage: %w", err)
		}
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], dirMode); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("file storage: %w", err)
		}
		if err := syncDir(filepath.Dir(missing[i])); err != nil {
			return fmt.Errorf("file storage: %w", err)
		}
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := f.Sync()
	cerr := f.Close()
	return errors.Join(serr, cerr)
}

// Get returns the entry under key, or storage.ErrNotFound.
func (b *Backend) Get(ctx context.Context, key string) (*storage.Entry, error) {
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	dir, name, err := b.expand(key)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, storage.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("file storage: get %q: %w", key, err)
	}
	v, err := decode(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrCorrupt, key, err)
	}
	return &storage.Entry{Key: key, Value: v}, nil
}

// decode parses a stored file. The exact form encode writes is decoded
// directly; anything else goes through encoding/json (files written by
// other tools, e.g. with "Value":null).
func decode(raw []byte) ([]byte, error) {
	const head, tail = `{"Value":"`, "\"}\n"
	if len(raw) >= len(head)+len(tail) && string(raw[:len(head)]) == head && string(raw[len(raw)-len(tail):]) == tail {
		b64 := raw[len(head) : len(raw)-len(tail)]
		out := make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
		n, err := base64.StdEncoding.Decode(out, b64)
		if err == nil {
			return out[:n], nil
		}
	}
	if len(raw) == 0 {
		return nil, errors.New("empty file")
	}
	var r record
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, err
	}
	if r.Value == nil {
		r.Value = []byte{}
	}
	return r.Value, nil
}

// Delete removes key (a missing key is not an error) and prunes folders
// left empty.
func (b *Backend) Delete(ctx context.Context, key string) error {
	if err := b.check(ctx); err != nil {
		return err
	}
	dir, name, err := b.expand(key)
	if err != nil {
		return err
	}
	mu := b.lockKey(key)
	mu.Lock()
	defer mu.Unlock()
	err = os.Remove(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("file storage: delete %q: %w", key, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("file storage: delete %q: %w", key, err)
	}
	// Prune empty folders; rmdir fails harmlessly on a non-empty one.
	last := ""
	for d := dir; d != b.root; d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			break
		}
		last = d
	}
	if last != "" {
		if err := syncDir(filepath.Dir(last)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("file storage: delete %q: %w", key, err)
		}
	}
	return nil
}

// List returns the sorted immediate children of prefix.
func (b *Backend) List(ctx context.Context, prefix string) ([]string, error) {
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	var segs []string
	if prefix != "" {
		p, ok := strings.CutSuffix(prefix, "/")
		if !ok {
			return nil, fmt.Errorf("%w: list prefix %q must end in \"/\"", ErrInvalidKey, prefix)
		}
		segs = strings.Split(p, "/")
		for _, s := range segs {
			if err := validSegment(s); err != nil {
				return nil, fmt.Errorf("%w (prefix %q)", err, prefix)
			}
		}
	}
	ents, err := os.ReadDir(b.dirOf(segs))
	if errors.Is(err, fs.ErrNotExist) {
		return []string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("file storage: list %q: %w", prefix, err)
	}
	out := make([]string, 0, len(ents))
	for _, d := range ents {
		switch {
		case d.IsDir():
			out = append(out, unescapeDir(d.Name())+"/")
		case d.Type().IsRegular() && strings.HasPrefix(d.Name(), "_"):
			out = append(out, d.Name()[1:])
		}
	}
	slices.Sort(out)
	return out, nil
}
