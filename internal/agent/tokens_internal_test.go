package agent

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestTokenCacheBounded: caller-chosen resources cannot grow the token
// cache without bound, and over-long keys are not cached at all.
func TestTokenCacheBounded(t *testing.T) {
	t.Parallel()
	now := time.Now()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"access_token":"t","expires_on":"%d","resource":%q,"token_type":"Bearer"}`,
			now.Add(24*time.Hour).Unix(), r.URL.Query().Get("resource"))
	}))
	t.Cleanup(srv.Close)
	f := newTokenFetcher(srv.URL, srv.Client(), func() time.Time { return now })
	f.maxEntries = 8
	for i := range 50 {
		if _, err := f.managedIdentity(t.Context(), "client", "", fmt.Sprintf("https://r%d", i)); err != nil {
			t.Fatal(err)
		}
		if got := f.Len(); got > f.maxEntries {
			t.Fatalf("after %d resources the cache holds %d tokens, limit %d", i+1, got, f.maxEntries)
		}
	}
	g := newTokenFetcher(srv.URL, srv.Client(), func() time.Time { return now })
	if _, err := g.managedIdentity(t.Context(), "client", "", "https://"+strings.Repeat("a", maxCachedKeyLen)); err != nil {
		t.Fatal(err)
	}
	if got := g.Len(); got != 0 {
		t.Errorf("over-long key cached: %d entries", got)
	}
}
