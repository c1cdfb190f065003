package azure_test

import (
	"testing"

	"github.com/keyward/keyward/internal/logical"
)

// BenchmarkLogin measures the tutorial's login through the backend with
// warm JWKS and ARM caches (tokens from keyward cloud; the ARM answer is
// cached, so no network I/O happens in the loop).
func BenchmarkLogin(b *testing.B) {
	e := newTutorialEnv(b, viaIMDS, nil)
	body := e.body(e.podToken(b))
	if _, err := e.h.do(logical.UpdateOperation, "login", body); err != nil {
		b.Fatalf("warm-up login: %v", err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.h.do(logical.UpdateOperation, "login", body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := e.h.do(logical.UpdateOperation, "login", body); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
