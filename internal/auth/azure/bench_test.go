package azure_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/keyward/keyward/internal/builtin"
	"github.com/keyward/keyward/internal/core/coretest"
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

// BenchmarkLoginHTTP measures the tutorial's login over HTTP against a
// real server (token creation included) with warm JWKS and ARM caches, and
// reports the p99 latency of the serial run.
func BenchmarkLoginHTTP(b *testing.B) {
	e := newTutorialCloud(b)
	ts := coretest.NewTestServer(b, coretest.WithDependencies(builtin.Dependencies{
		AzureHTTPClient: e.cloud.HTTPClient(),
		IMDSEndpoint:    e.imds,
	}))
	root := ts.Client
	if err := root.Sys().EnableAuthWithOptions("azure", &api.EnableAuthOptions{Type: "azure"}); err != nil {
		b.Fatal(err)
	}
	if _, err := root.Logical().Write("auth/azure/config", e.config(viaIMDS, nil)); err != nil {
		b.Fatal(err)
	}
	if _, err := root.Logical().Write("auth/azure/role/aks-role", e.role()); err != nil {
		b.Fatal(err)
	}
	body, err := json.Marshal(e.body(e.podToken(b)))
	if err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	url := ts.Addr + "/v1/auth/azure/login"
	loginOnce := func() error {
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("login: %s", resp.Status)
		}
		return nil
	}
	if err := loginOnce(); err != nil {
		b.Fatalf("warm-up: %v", err)
	}
	b.Run("serial", func(b *testing.B) {
		var lat []time.Duration
		for b.Loop() {
			start := time.Now()
			if err := loginOnce(); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "logins/s")
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := loginOnce(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
	})
}
