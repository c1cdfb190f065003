package shamir

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// slowMul is schoolbook carry-less multiplication reduced by 0x11B, an
// independent reference for mul.
func slowMul(a, b byte) byte {
	var p uint16
	for i := range 8 {
		if b&(1<<i) != 0 {
			p ^= uint16(a) << i
		}
	}
	for i := 15; i >= 8; i-- {
		if p&(1<<i) != 0 {
			p ^= 0x11B << (i - 8)
		}
	}
	return byte(p)
}

func TestFieldArithmetic(t *testing.T) {
	t.Parallel()
	for a := range 256 {
		for b := range 256 {
			if got, want := mul(byte(a), byte(b)), slowMul(byte(a), byte(b)); got != want {
				t.Fatalf("mul(%#x, %#x) = %#x, want %#x", a, b, got, want)
			}
		}
	}
	for a := 1; a < 256; a++ {
		if got := mul(byte(a), inverse(byte(a))); got != 1 {
			t.Fatalf("a * inverse(a) = %#x for a = %#x", got, a)
		}
	}
	// Known AES-field products (FIPS-197 §4.2): {57}·{83} = {c1}, {57}·{13} = {fe}.
	if got := mul(0x57, 0x83); got != 0xc1 {
		t.Errorf("mul(0x57, 0x83) = %#x, want 0xc1", got)
	}
	if got := mul(0x57, 0x13); got != 0xfe {
		t.Errorf("mul(0x57, 0x13) = %#x, want 0xfe", got)
	}
}

func randomSecret(t *testing.T, r *mrand.Rand) []byte {
	t.Helper()
	s := make([]byte, 1+r.IntN(64))
	if _, err := rand.Read(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSplitCombineProperty: for random secrets and parameters, every random
// threshold-sized subset (in random order) combines to the secret, and so
// does any larger subset; shares have the documented layout.
func TestSplitCombineProperty(t *testing.T) {
	t.Parallel()
	r := mrand.New(mrand.NewPCG(1, 2))
	for iter := range 300 {
		secret := randomSecret(t, r)
		parts := 2 + r.IntN(30)
		if iter%50 == 0 {
			parts = 255
		}
		threshold := 2 + r.IntN(parts-1)
		shares, err := Split(secret, parts, threshold)
		if err != nil {
			t.Fatalf("Split(%d bytes, %d, %d): %v", len(secret), parts, threshold, err)
		}
		if len(shares) != parts {
			t.Fatalf("got %d shares, want %d", len(shares), parts)
		}
		xs := map[byte]bool{}
		for _, s := range shares {
			if len(s) != len(secret)+ShareOverhead {
				t.Fatalf("share length %d, want %d", len(s), len(secret)+ShareOverhead)
			}
			x := s[len(s)-1]
			if x == 0 || xs[x] {
				t.Fatalf("bad or duplicate x coordinate %d", x)
			}
			xs[x] = true
		}
		for _, k := range []int{threshold, threshold + r.IntN(parts-threshold+1)} {
			perm := r.Perm(parts)[:k]
			subset := make([][]byte, k)
			for i, p := range perm {
				subset[i] = shares[p]
			}
			got, err := Combine(subset)
			if err != nil {
				t.Fatalf("Combine(%d of %d, t=%d): %v", k, parts, threshold, err)
			}
			if diff := cmp.Diff(secret, got); diff != "" {
				t.Fatalf("Combine(%d of %d, t=%d) (-want +got):\n%s", k, parts, threshold, diff)
			}
		}
	}
}

// TestFewerThanThreshold: threshold-1 shares combine to something other
// than the secret (the probability of a 32-byte accident is 2^-256).
func TestFewerThanThreshold(t *testing.T) {
	t.Parallel()
	r := mrand.New(mrand.NewPCG(3, 4))
	for range 200 {
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			t.Fatal(err)
		}
		parts := 3 + r.IntN(20)
		threshold := 3 + r.IntN(parts-2)
		shares, err := Split(secret, parts, threshold)
		if err != nil {
			t.Fatal(err)
		}
		perm := r.Perm(parts)[:threshold-1]
		subset := make([][]byte, len(perm))
		for i, p := range perm {
			subset[i] = shares[p]
		}
		got, err := Combine(subset)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(got, secret) {
			t.Fatalf("%d of %d shares (t=%d) reconstructed the secret", len(subset), parts, threshold)
		}
	}
}

// TestTamperedShare: a share with one flipped byte gives a wrong secret.
func TestTamperedShare(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef")
	shares, err := Split(secret, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(shares[1])
	bad[7] ^= 0x40
	got, err := Combine([][]byte{shares[0], bad, shares[2]})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(got, secret) {
		t.Fatal("tampered share still reconstructed the secret")
	}
}

func TestSplitErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		secret           []byte
		parts, threshold int
		want             error
	}{
		{[]byte("s"), 2, 3, ErrPartsLessThanThreshold},
		{[]byte("s"), 256, 3, ErrTooManyParts},
		{[]byte("s"), 5, 1, ErrThresholdTooSmall},
		{[]byte("s"), 5, 0, ErrThresholdTooSmall},
		{[]byte("s"), 300, 256, ErrTooManyParts},
		{[]byte{}, 5, 3, ErrEmptySecret},
		{nil, 5, 3, ErrEmptySecret},
		{[]byte("s"), -1, -2, ErrThresholdTooSmall},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d-of-%d-len%d", tc.threshold, tc.parts, len(tc.secret)), func(t *testing.T) {
			t.Parallel()
			got, err := Split(tc.secret, tc.parts, tc.threshold)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Split = %v, want %v", err, tc.want)
			}
			if got != nil {
				t.Errorf("Split returned shares with an error")
			}
		})
	}
	// threshold > 255 can only be reached with parts > 255, which is
	// reported first; the threshold check is still exercised directly.
	if _, err := Split([]byte("s"), 255, 256); !errors.Is(err, ErrPartsLessThanThreshold) {
		t.Errorf("Split(255, 256) = %v", err)
	}
}

func TestCombineErrors(t *testing.T) {
	t.Parallel()
	shares, err := Split([]byte("secret"), 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		parts [][]byte
		want  error
	}{
		{"none", nil, ErrTooFewParts},
		{"one", shares[:1], ErrTooFewParts},
		{"short", [][]byte{{1}, {2}}, ErrPartTooShort},
		{"empty", [][]byte{{}, {}}, ErrPartTooShort},
		{"length mismatch", [][]byte{shares[0], shares[1][:3]}, ErrPartLengthMismatch},
		{"duplicate", [][]byte{shares[0], shares[1], shares[0]}, ErrDuplicatePart},
		{"duplicate x", [][]byte{{1, 2, 9}, {3, 4, 9}}, ErrDuplicatePart},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Combine(tc.parts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Combine = %v, want %v", err, tc.want)
			}
			if got != nil {
				t.Errorf("Combine returned a secret with an error")
			}
		})
	}
}

// TestSplitIsRandomized: two splits of one secret differ (fresh
// coefficients and coordinates).
func TestSplitIsRandomized(t *testing.T) {
	t.Parallel()
	secret := []byte("same secret, different shares")
	a, err := Split(secret, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Split(secret, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	if cmp.Equal(a, b) {
		t.Fatal("two splits produced identical shares")
	}
}

// FuzzCombine: Combine never panics, and on success returns len-1 bytes;
// a valid split of the fuzzed secret always round-trips.
func FuzzCombine(f *testing.F) {
	f.Add([]byte("secret"), []byte{1, 2, 3, 4, 5, 6, 7}, uint8(3), uint8(2))
	f.Add([]byte{0}, []byte{0, 0}, uint8(2), uint8(2))
	f.Fuzz(func(t *testing.T, secret, raw []byte, parts, threshold uint8) {
		// Arbitrary bytes cut into equal-length parts.
		n := int(parts%8) + 1
		if l := len(raw) / n; l > 0 {
			ps := make([][]byte, n)
			for i := range ps {
				ps[i] = raw[i*l : (i+1)*l]
			}
			if got, err := Combine(ps); err == nil && len(got) != l-1 {
				t.Fatalf("Combine returned %d bytes from %d-byte parts", len(got), l)
			}
		}
		if len(secret) == 0 || len(secret) > 256 {
			return
		}
		p := int(parts)%20 + 2
		th := int(threshold)%(p-1) + 2
		shares, err := Split(secret, p, th)
		if err != nil {
			t.Fatalf("Split(%d, %d): %v", p, th, err)
		}
		got, err := Combine(shares[p-th:])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, secret) {
			t.Fatalf("round trip failed for %d-of-%d", th, p)
		}
	})
}

func BenchmarkSplit(b *testing.B) {
	secret := make([]byte, 32)
	for _, c := range []struct{ n, t int }{{2, 2}, {5, 3}, {10, 7}} {
		b.Run(fmt.Sprintf("32B-%dof%d", c.t, c.n), func(b *testing.B) {
			for b.Loop() {
				if _, err := Split(secret, c.n, c.t); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCombine(b *testing.B) {
	secret := make([]byte, 32)
	for _, c := range []struct{ n, t int }{{2, 2}, {5, 3}, {10, 7}} {
		shares, err := Split(secret, c.n, c.t)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("32B-%dof%d", c.t, c.n), func(b *testing.B) {
			for b.Loop() {
				if _, err := Combine(shares[:c.t]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
