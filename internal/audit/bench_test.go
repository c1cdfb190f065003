package audit_test

import (
	"path/filepath"
	"testing"

	"github.com/keyward/keyward/internal/audit"
	"github.com/keyward/keyward/internal/storage/inmem"
)

func BenchmarkLogRequest(b *testing.B) {
	for _, target := range []string{"discard", "file"} {
		b.Run(target, func(b *testing.B) {
			h := newBenchHarness(b)
			path := target
			if target == "file" {
				path = filepath.Join(b.TempDir(), "audit.log")
			}
			if err := h.Enable(b.Context(), audit.EnableRequest{Path: "bench", Type: "file", Options: map[string]string{"file_path": path}}); err != nil {
				b.Fatal(err)
			}
			in := &audit.Input{Caller: caller(), Request: kvWrite()}
			b.ReportAllocs()
			for b.Loop() {
				if err := h.LogRequest(b.Context(), in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func newBenchHarness(b *testing.B) *audit.Broker {
	b.Helper()
	br := audit.NewBroker(audit.BrokerConfig{Storage: inmem.New()})
	if err := br.Setup(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(br.Teardown)
	return br
}
