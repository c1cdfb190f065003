package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/config"
)

func TestTutorialConfig(t *testing.T) {
	t.Parallel()
	got, err := config.Load("testdata/tutorial.hcl")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := &config.Config{
		UI: true,
		Listeners: []config.Listener{{
			Address:        "[::]:8200",
			ClusterAddress: "[::]:8201",
			TLSDisable:     true,
			MaxRequestSize: config.DefaultMaxRequestSize,
		}},
		Storage:         config.Storage{Type: "file", Path: "/vault/data"},
		DefaultLeaseTTL: 768 * time.Hour,
		MaxLeaseTTL:     768 * time.Hour,
		LogLevel:        "info",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config mismatch (-want +got):\n%s", diff)
	}
}

func TestFullConfig(t *testing.T) {
	t.Parallel()
	src := `
ui = false
api_addr = "https://vault.example:8200"
default_lease_ttl = "1h"
max_lease_ttl = "24h"
log_level = "debug"
disable_mlock = true
listener "tcp" {
  address = "127.0.0.1:8443"
  tls_cert_file = "/etc/keyward/cert.pem"
  tls_key_file = "/etc/keyward/key.pem"
  max_request_size = 1024
}
storage "inmem" {}
`
	got, err := config.Parse("full.hcl", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := &config.Config{
		APIAddr: "https://vault.example:8200",
		Listeners: []config.Listener{{
			Address: "127.0.0.1:8443", TLSCertFile: "/etc/keyward/cert.pem", TLSKeyFile: "/etc/keyward/key.pem", MaxRequestSize: 1024,
		}},
		Storage:         config.Storage{Type: "inmem"},
		DefaultLeaseTTL: time.Hour,
		MaxLeaseTTL:     24 * time.Hour,
		LogLevel:        "debug",
		DisableMlock:    true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config mismatch (-want +got):\n%s", diff)
	}
}

func TestBadConfig(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		src  string
		want []string // substrings the error must contain: file, line, key
	}{
		"unknown top-level key": {
			src:  "ui = true\nbogus_key = 1\nstorage \"inmem\" {}\nlistener \"tcp\" { tls_disable = 1 }\n",
			want: []string{"bad.hcl:2", "bogus_key"},
		},
		"unknown listener key": {
			src:  "storage \"inmem\" {}\nlistener \"tcp\" {\n  tls_disable = 1\n  adress = \"x\"\n}\n",
			want: []string{"bad.hcl:4", "adress"},
		},
		"bad boolean": {
			src:  "storage \"inmem\" {}\nlistener \"tcp\" {\n  tls_disable = \"maybe\"\n}\n",
			want: []string{"bad.hcl:3", "tls_disable"},
		},
		"bad duration": {
			src:  "default_lease_ttl = \"soon\"\nstorage \"inmem\" {}\nlistener \"tcp\" { tls_disable = 1 }\n",
			want: []string{"bad.hcl:1", "default_lease_ttl"},
		},
		"file storage without path": {
			src:  "storage \"file\" {}\nlistener \"tcp\" { tls_disable = 1 }\n",
			want: []string{"'path' must be set"},
		},
		"unknown storage": {
			src:  "storage \"consul\" {}\nlistener \"tcp\" { tls_disable = 1 }\n",
			want: []string{"consul"},
		},
		"syntax error": {
			src:  "storage \"inmem\" {\nlistener \"tcp\" { tls_disable = 1 }\n",
			want: []string{"bad.hcl:"},
		},
		"tls without certificate": {
			src:  "storage \"inmem\" {}\nlistener \"tcp\" { address = \"127.0.0.1:8200\" }\n",
			want: []string{"tls_cert_file"},
		},
		"bad log level": {
			src:  "log_level = \"loud\"\nstorage \"inmem\" {}\nlistener \"tcp\" { tls_disable = 1 }\n",
			want: []string{"bad.hcl:1", "log_level"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse("bad.hcl", []byte(tc.src))
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
