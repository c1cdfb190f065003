package cloud_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/cloud/cloudtest"
)

// benchIMDS measures IMDS token requests over loopback HTTP (rate limits
// off) and reports p50/p99 latency.
func benchIMDS(b *testing.B, query string) {
	c := cloudtest.StartWith(b, cloudtest.Options{IMDSRateLimit: -1, IMDSMaxConcurrent: -1})
	c.CreateResourceGroup(b, "rg", "eastus")
	id := c.CreateIdentity(b, "rg", "app")
	ss := c.CreateScaleSet(b, "rg", "vmss", 1)
	c.AssignIdentity(b, ss.ID, id.ID)
	base := c.StartIMDS(b, ss.Instances[0].ID)
	u := base + "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F" + query
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Metadata", "true")
	var lat []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds()), "p99-µs")
	}
}

// BenchmarkIMDSTokenCached: repeated requests for the same identity and
// resource (IMDS serves its cached token).
func BenchmarkIMDSTokenCached(b *testing.B) { benchIMDS(b, "") }

// BenchmarkIMDSTokenMint: bypass_cache=true, a token minted per request.
func BenchmarkIMDSTokenMint(b *testing.B) { benchIMDS(b, "&bypass_cache=true") }

// BenchmarkARMGetScaleSet: authenticated ARM GET of a scale set (token
// verification + RBAC + JSON) over HTTPS.
func BenchmarkARMGetScaleSet(b *testing.B) {
	c := cloudtest.Start(b)
	c.CreateResourceGroup(b, "rg", "eastus")
	ss := c.CreateScaleSet(b, "rg", "vmss", 3)
	tok := armTokenTB(b, c)
	hc := c.HTTPClient()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, strings.TrimSuffix(c.ARMEndpoint, "/")+ss.ID+"?api-version=2024-11-01", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

func armTokenTB(tb testing.TB, c *cloudtest.Cloud) string {
	tb.Helper()
	body := "grant_type=client_credentials&client_id=" + c.AdminClientID + "&client_secret=" + c.AdminClientSecret + "&resource=https%3A%2F%2Fmanagement.azure.com%2F"
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, c.AuthorityHost+c.TenantID+"/oauth2/token", strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.HTTPClient().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	s := string(b)
	i := strings.Index(s, `"access_token":"`)
	if i < 0 {
		tb.Fatalf("token: %s", s)
	}
	s = s[i+len(`"access_token":"`):]
	return s[:strings.Index(s, `"`)]
}
