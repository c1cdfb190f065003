package seal_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keyward/keyward/internal/barrier"
	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/seal"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/file"
	"github.com/keyward/keyward/internal/storage/inmem"
)

type server struct {
	phys storage.Backend
	b    *barrier.Barrier
	m    *seal.Manager
}

func newServer(phys storage.Backend) *server {
	b := barrier.New(phys)
	return &server{phys: phys, b: b, m: seal.New(phys, b)}
}

// initSealed initializes a fresh inmem server with shares/threshold,
// writes a marker through the barrier and seals it.
func initSealed(t *testing.T, shares, threshold int) (*server, [][]byte) {
	t.Helper()
	s := newServer(inmem.New())
	res, err := s.m.Initialize(t.Context(), seal.InitRequest{SecretShares: shares, SecretThreshold: threshold})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.b.Put(t.Context(), &storage.Entry{Key: "marker", Value: []byte("ok")}); err != nil {
		t.Fatal(err)
	}
	s.m.Seal()
	return s, res.Keys
}

func status(t *testing.T, m *seal.Manager) seal.Status {
	t.Helper()
	st, err := m.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

var ignoreNonce = cmpopts.IgnoreFields(seal.Status{}, "Nonce")

func wantCoded(t *testing.T, err error, target error, msg string) {
	t.Helper()
	var ce *logical.CodedError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *logical.CodedError", err, err)
	}
	if ce.Status != 400 {
		t.Errorf("status = %d, want 400", ce.Status)
	}
	if msg != "" && ce.Msg != msg {
		t.Errorf("message = %q, want %q", ce.Msg, msg)
	}
	if target != nil && !errors.Is(err, target) {
		t.Errorf("error %v does not wrap %v", err, target)
	}
}

func TestUninitializedStatus(t *testing.T) {
	t.Parallel()
	s := newServer(inmem.New())
	want := seal.Status{Type: "shamir", Sealed: true}
	if diff := cmp.Diff(want, status(t, s.m)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if ok, err := s.m.Initialized(t.Context()); err != nil || ok {
		t.Errorf("Initialized = %v, %v", ok, err)
	}
	_, err := s.m.Unseal(t.Context(), make([]byte, 32))
	if !errors.Is(err, seal.ErrNotInitialized) {
		t.Fatalf("Unseal uninitialized = %v, want ErrNotInitialized", err)
	}
	wantCoded(t, err, nil, "Vault is not initialized")
}

func TestInitValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		shares, threshold int
		msg               string
	}{
		{0, 0, "invalid seal configuration: shares must be at least one"},
		{-1, 1, "invalid seal configuration: shares must be at least one"},
		{1, 0, "invalid seal configuration: threshold must be at least one"},
		{3, 1, "invalid seal configuration: threshold must be greater than one for multiple shares"},
		{256, 3, "invalid seal configuration: shares must be less than 256"},
		{3, 4, "invalid seal configuration: threshold cannot be larger than shares"},
		{1, 2, "invalid seal configuration: threshold cannot be larger than shares"},
	}
	for _, tc := range tests {
		t.Run(tc.msg, func(t *testing.T) {
			t.Parallel()
			s := newServer(inmem.New())
			res, err := s.m.Initialize(t.Context(), seal.InitRequest{SecretShares: tc.shares, SecretThreshold: tc.threshold})
			if res != nil {
				t.Errorf("result with error")
			}
			wantCoded(t, err, logical.ErrInvalidRequest, tc.msg)
			if ok, _ := s.m.Initialized(t.Context()); ok {
				t.Error("failed Initialize left the seal initialized")
			}
		})
	}
}

func TestInitOneShare(t *testing.T) {
	t.Parallel()
	s := newServer(inmem.New())
	res, err := s.m.Initialize(t.Context(), seal.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Keys) != 1 || len(res.Keys[0]) != 32 {
		t.Fatalf("keys = %d of %d bytes, want one 32-byte key", len(res.Keys), len(res.Keys[0]))
	}
	// Initialize leaves the barrier unsealed for the root token.
	want := seal.Status{Type: "shamir", Initialized: true, Sealed: false, T: 1, N: 1}
	if diff := cmp.Diff(want, status(t, s.m)); diff != "" {
		t.Errorf("after init (-want +got):\n%s", diff)
	}
	if err = s.b.Put(t.Context(), &storage.Entry{Key: "marker", Value: []byte("ok")}); err != nil {
		t.Fatal(err)
	}
	s.m.Seal()
	want.Sealed = true
	if diff := cmp.Diff(want, status(t, s.m)); diff != "" {
		t.Errorf("after seal (-want +got):\n%s", diff)
	}
	if _, err = s.b.Get(t.Context(), "marker"); !errors.Is(err, barrier.ErrSealed) {
		t.Errorf("Get after Seal = %v, want ErrSealed", err)
	}
	st, err := s.m.Unseal(t.Context(), res.Keys[0])
	if err != nil {
		t.Fatal(err)
	}
	want.Sealed = false
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("after unseal (-want +got):\n%s", diff)
	}
	e, err := s.b.Get(t.Context(), "marker")
	if err != nil || string(e.Value) != "ok" {
		t.Fatalf("marker after unseal: %v, %v", e, err)
	}
	// Unsealing an unsealed server just reports the status.
	if st, err := s.m.Unseal(t.Context(), res.Keys[0]); err != nil || st.Sealed {
		t.Errorf("Unseal when unsealed = %+v, %v", st, err)
	}
}

func TestInitTwice(t *testing.T) {
	t.Parallel()
	s, _ := initSealed(t, 1, 1)
	_, err := s.m.Initialize(t.Context(), seal.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if !errors.Is(err, seal.ErrAlreadyInitialized) {
		t.Fatalf("second Initialize = %v, want ErrAlreadyInitialized", err)
	}
	wantCoded(t, err, nil, "Vault is already initialized")
	// A new Manager over the same storage (restart) agrees.
	s2 := newServer(s.phys)
	if _, err := s2.m.Initialize(t.Context(), seal.InitRequest{SecretShares: 5, SecretThreshold: 3}); !errors.Is(err, seal.ErrAlreadyInitialized) {
		t.Fatalf("Initialize after restart = %v, want ErrAlreadyInitialized", err)
	}
}

func TestUnsealFiveThree(t *testing.T) {
	t.Parallel()
	s, keys := initSealed(t, 5, 3)
	if len(keys) != 5 {
		t.Fatalf("got %d keys", len(keys))
	}
	for _, k := range keys {
		if len(k) != 33 {
			t.Fatalf("share length %d, want 33", len(k))
		}
	}
	ctx := t.Context()
	for _, subset := range [][]int{{0, 1, 2}, {4, 2, 0}, {3, 1, 4}} {
		st, err := s.m.Unseal(ctx, keys[subset[0]])
		if err != nil {
			t.Fatal(err)
		}
		want := seal.Status{Type: "shamir", Initialized: true, Sealed: true, T: 3, N: 5, Progress: 1}
		if diff := cmp.Diff(want, st, ignoreNonce); diff != "" {
			t.Errorf("after 1 share (-want +got):\n%s", diff)
		}
		nonce := st.Nonce
		if len(nonce) != 36 {
			t.Errorf("nonce %q is not a UUID", nonce)
		}
		// The same share again is ignored.
		st, err = s.m.Unseal(ctx, bytes.Clone(keys[subset[0]]))
		if err != nil {
			t.Fatal(err)
		}
		if st.Progress != 1 || st.Nonce != nonce {
			t.Errorf("duplicate share: progress %d nonce %q, want 1 %q", st.Progress, st.Nonce, nonce)
		}
		st, err = s.m.Unseal(ctx, keys[subset[1]])
		if err != nil {
			t.Fatal(err)
		}
		if st.Progress != 2 || st.Nonce != nonce || !st.Sealed {
			t.Errorf("after 2 shares: %+v", st)
		}
		st, err = s.m.Unseal(ctx, keys[subset[2]])
		if err != nil {
			t.Fatal(err)
		}
		want = seal.Status{Type: "shamir", Initialized: true, Sealed: false, T: 3, N: 5}
		if diff := cmp.Diff(want, st); diff != "" {
			t.Errorf("after 3 shares (-want +got):\n%s", diff)
		}
		if _, err := s.b.Get(ctx, "marker"); err != nil {
			t.Fatal(err)
		}
		s.m.Seal()
		if !status(t, s.m).Sealed {
			t.Fatal("re-seal failed")
		}
	}
}

func TestWrongShareResetsProgress(t *testing.T) {
	t.Parallel()
	s, keys := initSealed(t, 5, 3)
	_, foreign := initSealed(t, 5, 3) // shares of another server
	random := make([]byte, 33)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(keys[2])
	flipped[0] ^= 1
	sameX := bytes.Clone(keys[1][:32])
	sameX = append(sameX, keys[0][32]) // valid-looking share with keys[0]'s x
	ctx := t.Context()
	tests := []struct {
		name  string
		third []byte
		msg   string
	}{
		{"random", random, ""},
		{"flipped byte", flipped, "unable to retrieve stored keys: invalid key: failed to decrypt keys from storage: cipher: message authentication failed"},
		{"foreign", foreign[2], ""},
		{"duplicate x", sameX, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range [][]byte{keys[0], keys[1]} {
				if _, err := s.m.Unseal(ctx, k); err != nil {
					t.Fatal(err)
				}
			}
			st, err := s.m.Unseal(ctx, tc.third)
			wantCoded(t, err, seal.ErrInvalidKey, tc.msg)
			want := seal.Status{Type: "shamir", Initialized: true, Sealed: true, T: 3, N: 5}
			if diff := cmp.Diff(want, st); diff != "" {
				t.Errorf("status returned with error (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, status(t, s.m)); diff != "" {
				t.Errorf("progress not reset (-want +got):\n%s", diff)
			}
		})
	}
	// The right shares still work afterwards.
	for _, k := range keys[2:] {
		if _, err := s.m.Unseal(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if status(t, s.m).Sealed {
		t.Fatal("correct shares did not unseal after failed attempts")
	}
}

func TestWrongSingleKey(t *testing.T) {
	t.Parallel()
	s, keys := initSealed(t, 1, 1)
	ctx := t.Context()
	wrong := bytes.Clone(keys[0])
	wrong[5] ^= 0xff
	_, err := s.m.Unseal(ctx, wrong)
	wantCoded(t, err, seal.ErrInvalidKey, "unable to retrieve stored keys: invalid key: failed to decrypt keys from storage: cipher: message authentication failed")
	// A 33-byte value with threshold 1 is not an AES key: still a 400.
	_, err = s.m.Unseal(ctx, append(bytes.Clone(keys[0]), 1))
	wantCoded(t, err, seal.ErrInvalidKey, "")
	if !status(t, s.m).Sealed {
		t.Fatal("unsealed with a wrong key")
	}
	if _, err := s.m.Unseal(ctx, keys[0]); err != nil {
		t.Fatal(err)
	}
}

func TestKeyLength(t *testing.T) {
	t.Parallel()
	s, keys := initSealed(t, 5, 3)
	ctx := t.Context()
	if _, err := s.m.Unseal(ctx, keys[0]); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		n   int
		msg string
	}{
		{0, "invalid key: key is shorter than minimum 16 bytes"},
		{15, "invalid key: key is shorter than minimum 16 bytes"},
		{34, "invalid key: key is longer than maximum 33 bytes"},
	}
	for _, tc := range tests {
		st, err := s.m.Unseal(ctx, make([]byte, tc.n))
		wantCoded(t, err, seal.ErrInvalidKey, tc.msg)
		if st.Progress != 1 {
			t.Errorf("%d-byte key changed progress to %d", tc.n, st.Progress)
		}
	}
}

func TestResetUnseal(t *testing.T) {
	t.Parallel()
	s, keys := initSealed(t, 5, 3)
	ctx := t.Context()
	for _, k := range keys[:2] {
		if _, err := s.m.Unseal(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	s.m.ResetUnseal()
	want := seal.Status{Type: "shamir", Initialized: true, Sealed: true, T: 3, N: 5}
	if diff := cmp.Diff(want, status(t, s.m)); diff != "" {
		t.Errorf("after reset (-want +got):\n%s", diff)
	}
	// One more share is not enough after a reset.
	st, err := s.m.Unseal(ctx, keys[2])
	if err != nil {
		t.Fatal(err)
	}
	if !st.Sealed || st.Progress != 1 {
		t.Fatalf("after reset + 1 share: %+v", st)
	}
}

// TestRestartWithFileStorage is the real flow: init on a file store, seal,
// reopen everything (a restart), unseal with the shares, read data; and
// the data folder never holds the unseal key or a share.
func TestRestartWithFileStorage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := t.Context()
	fb, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(fb)
	res, err := s.m.Initialize(ctx, seal.InitRequest{SecretShares: 3, SecretThreshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	const secret = "kv-secret-value-0c9d"
	if err = barrier.NewView(s.b, "logical/uuid/").Put(ctx, &storage.Entry{Key: "mysecret", Value: []byte(secret)}); err != nil {
		t.Fatal(err)
	}
	s.m.Seal()
	if err = fb.Close(); err != nil {
		t.Fatal(err)
	}

	// Vault's layout and plaintext seal configuration.
	raw, err := os.ReadFile(filepath.Join(dir, "core", "_seal-config"))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct{ Value []byte }
	if err = json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err = json.Unmarshal(rec.Value, &cfg); err != nil {
		t.Fatal(err)
	}
	wantCfg := map[string]any{"type": "shamir", "secret_shares": 3.0, "secret_threshold": 2.0, "pgp_keys": nil,
		"nonce": "", "backup": false, "stored_shares": 1.0}
	if diff := cmp.Diff(wantCfg, cfg); diff != "" {
		t.Errorf("seal config (-want +got):\n%s", diff)
	}
	for _, p := range []string{"core/_keyring", "core/hsm/_barrier-unseal-keys", "logical/uuid/_mysecret"} {
		if _, err = os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("expected file %s: %v", p, err)
		}
	}
	// No secret material anywhere on disk, in any encoding.
	var needles [][]byte
	needles = append(needles, []byte(secret))
	for _, k := range res.Keys {
		needles = append(needles, k, []byte(hex.EncodeToString(k)), []byte(base64.StdEncoding.EncodeToString(k)))
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if bytes.Contains(data, n) {
				t.Errorf("%s contains secret material", p)
			}
		}
		if dec, err := base64.StdEncoding.DecodeString(string(bytes.TrimSuffix(bytes.TrimPrefix(data, []byte(`{"Value":"`)), []byte("\"}\n")))); err == nil {
			for _, n := range needles {
				if bytes.Contains(dec, n) {
					t.Errorf("%s contains secret material (base64 layer)", p)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	fb2, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fb2.Close()
	s2 := newServer(fb2)
	want := seal.Status{Type: "shamir", Initialized: true, Sealed: true, T: 2, N: 3}
	if diff := cmp.Diff(want, status(t, s2.m)); diff != "" {
		t.Errorf("after restart (-want +got):\n%s", diff)
	}
	for _, k := range [][]byte{res.Keys[2], res.Keys[0]} {
		if _, err = s2.m.Unseal(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	e, err := barrier.NewView(s2.b, "logical/uuid/").Get(ctx, "mysecret")
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Value) != secret {
		t.Errorf("secret after restart = %q", e.Value)
	}
}

// TestConcurrentUnseal submits every share from many goroutines at once
// (for the race detector): the server ends unsealed and progress is 0.
func TestConcurrentUnseal(t *testing.T) {
	t.Parallel()
	s, keys := initSealed(t, 5, 3)
	var wg sync.WaitGroup
	for range 4 {
		for _, k := range keys {
			wg.Go(func() {
				// Duplicates are ignored, so every attempt holds distinct
				// genuine shares and none may fail.
				if _, err := s.m.Unseal(t.Context(), k); err != nil {
					t.Error(err)
				}
				_, _ = s.m.Status(t.Context())
			})
		}
	}
	wg.Wait()
	st := status(t, s.m)
	if st.Sealed || st.Progress != 0 {
		t.Errorf("after concurrent unseal: %+v", st)
	}
}
