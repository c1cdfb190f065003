// Package shamir implements Shamir's secret sharing over GF(2^8) (the AES
// field, polynomial x^8+x^4+x^3+x+1), wire-compatible with Vault's unseal
// key shares: a share is the secret's length plus one byte, laid out as
// [y_0 … y_{L-1}, x]. The field arithmetic is table-free and constant time
// in the secret bytes. The package is pure and safe for concurrent use.
package shamir

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
)

// ShareOverhead is how many bytes a share is longer than its secret.
const ShareOverhead = 1

// Errors returned by Split and Combine. Their texts are Vault's.
var (
	ErrPartsLessThanThreshold = errors.New("parts cannot be less than threshold")
	ErrTooManyParts           = errors.New("parts cannot exceed 255")
	ErrThresholdTooSmall      = errors.New("threshold must be at least 2")
	ErrThresholdTooLarge      = errors.New("threshold cannot exceed 255")
	ErrEmptySecret            = errors.New("cannot split an empty secret")
	ErrTooFewParts            = errors.New("less than two parts cannot be used to reconstruct the secret")
	ErrPartTooShort           = errors.New("parts must be at least two bytes")
	ErrPartLengthMismatch     = errors.New("all parts must be the same length")
	ErrDuplicatePart          = errors.New("duplicate part detected")
)

// Split divides secret into parts shares, any threshold of which
// reconstruct it with Combine. It needs 2 <= threshold <= parts <= 255 and a
// non-empty secret. The x coordinates are a random selection of 1..255.
func Split(secret []byte, parts, threshold int) ([][]byte, error) {
	switch {
	case parts < threshold:
		return nil, ErrPartsLessThanThreshold
	case parts > 255:
		return nil, ErrTooManyParts
	case threshold < 2:
		return nil, ErrThresholdTooSmall
	case threshold > 255:
		return nil, ErrThresholdTooLarge
	case len(secret) == 0:
		return nil, ErrEmptySecret
	}
	xs, err := randomXs(parts)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, parts)
	for i := range out {
		out[i] = make([]byte, len(secret)+ShareOverhead)
		out[i][len(secret)] = xs[i]
	}
	// coeffs[0] is the intercept (the secret byte); the rest are random.
	coeffs := make([]byte, threshold)
	defer clear(coeffs)
	for idx, s := range secret {
		if _, err := rand.Read(coeffs[1:]); err != nil {
			return nil, fmt.Errorf("shamir: reading random coefficients: %w", err)
		}
		coeffs[0] = s
		for i := range out {
			out[i][idx] = evaluate(coeffs, xs[i])
		}
	}
	return out, nil
}

// Combine reconstructs the secret from at least two shares produced by
// Split. It cannot tell whether the shares are genuine or enough: too few
// or altered shares yield a wrong secret, not an error (callers detect that
// by authenticating what the secret decrypts).
func Combine(parts [][]byte) ([]byte, error) {
	if len(parts) < 2 {
		return nil, ErrTooFewParts
	}
	n := len(parts[0])
	if n < 2 {
		return nil, ErrPartTooShort
	}
	xs := make([]byte, len(parts))
	for i, p := range parts {
		if len(p) != n {
			return nil, ErrPartLengthMismatch
		}
		xs[i] = p[n-1]
		for j := range i {
			if xs[j] == xs[i] {
				return nil, ErrDuplicatePart
			}
		}
	}
	// Lagrange basis at x=0: l_i = prod_{j!=i} x_j / (x_j - x_i); in
	// GF(2^8) subtraction is XOR.
	basis := make([]byte, len(parts))
	for i := range parts {
		num, den := byte(1), byte(1)
		for j := range parts {
			if i == j {
				continue
			}
			num = mul(num, xs[j])
			den = mul(den, xs[j]^xs[i])
		}
		basis[i] = mul(num, inverse(den))
	}
	secret := make([]byte, n-ShareOverhead)
	for idx := range secret {
		var acc byte
		for i, p := range parts {
			acc ^= mul(p[idx], basis[i])
		}
		secret[idx] = acc
	}
	return secret, nil
}

// randomXs returns n distinct values from 1..255 chosen with crypto/rand
// (a partial Fisher-Yates shuffle).
func randomXs(n int) ([]byte, error) {
	pool := make([]byte, 255)
	for i := range pool {
		pool[i] = byte(i + 1)
	}
	for i := range n {
		r, err := rand.Int(rand.Reader, big.NewInt(int64(255-i)))
		if err != nil {
			return nil, fmt.Errorf("shamir: reading random coordinates: %w", err)
		}
		j := i + int(r.Int64())
		pool[i], pool[j] = pool[j], pool[i]
	}
	return pool[:n], nil
}

// evaluate returns the polynomial with the given coefficients (lowest
// degree first) at x, by Horner's rule.
func evaluate(coeffs []byte, x byte) byte {
	var acc byte
	for i := len(coeffs) - 1; i >= 0; i-- {
		acc = mul(acc, x) ^ coeffs[i]
	}
	return acc
}

// mul multiplies in GF(2^8) modulo x^8+x^4+x^3+x+1 without branches or
// table lookups that depend on the operands.
func mul(a, b byte) byte {
	var r byte
	for i := 7; i >= 0; i-- {
		// r = r*x (reducing) + a*bit_i(b).
		r = (-(r >> 7) & 0x1B) ^ (r << 1)
		r ^= -((b >> uint(i)) & 1) & a
	}
	return r
}

// inverse returns a^-1 = a^254 (inverse(0) is 0, which callers never use:
// distinct non-zero x coordinates make every denominator non-zero).
func inverse(a byte) byte {
	// a^254 = a^(2+4+8+16+32+64+128).
	r := byte(1)
	sq := mul(a, a) // a^2
	for range 7 {
		r = mul(r, sq)
		sq = mul(sq, sq)
	}
	return r
}
