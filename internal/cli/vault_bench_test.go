package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
)

// BenchmarkOutputSecretTable measures rendering a 20-field secret as a table.
func BenchmarkOutputSecretTable(b *testing.B) {
	data := map[string]any{}
	for i := range 20 {
		data[fmt.Sprintf("key_%02d", i)] = fmt.Sprintf("value-%d", i)
	}
	data["ttl"] = json.Number("3600")
	s := &api.Secret{LeaseDuration: 2764800, Data: data}
	m := newVaultMeta(&Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }}, "bench")
	b.ReportAllocs()
	for b.Loop() {
		m.outputSecret(s)
	}
}

// BenchmarkParseArgsData measures parsing ten key=value arguments.
func BenchmarkParseArgsData(b *testing.B) {
	args := make([]string, 10)
	for i := range args {
		args[i] = fmt.Sprintf("k%d=v%d", i, i)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseArgsData(strings.NewReader(""), args); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWrapAtLength measures wrapping the init banner paragraph.
func BenchmarkWrapAtLength(b *testing.B) {
	s := strings.Repeat("Vault initialized with 5 key shares and a key threshold of 3. ", 4)
	b.ReportAllocs()
	for b.Loop() {
		wrapAtLength(s, 0)
	}
}
