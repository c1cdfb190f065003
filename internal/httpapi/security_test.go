package httpapi_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/keyward/keyward/internal/core/coretest"
)

// TestNumUsesConcurrent checks that concurrent requests cannot spend a
// use-limited token more often than its num_uses allows.
func TestNumUsesConcurrent(t *testing.T) {
	t.Parallel()
	ts := coretest.NewTestServer(t)
	for _, uses := range []int{1, 3} {
		sec, err := ts.Client.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"default"}, NumUses: uses})
		if err != nil {
			t.Fatal(err)
		}
		tok := sec.Auth.ClientToken
		const n = 24
		var (
			wg sync.WaitGroup
			mu sync.Mutex
			ok int
		)
		start := make(chan struct{})
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				req, err := http.NewRequest(http.MethodGet, ts.Addr+"/v1/auth/token/lookup-self", nil)
				if err != nil {
					t.Error(err)
					return
				}
				req.Header.Set("X-Vault-Token", tok)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}()
		}
		close(start)
		wg.Wait()
		if ok != uses {
			t.Errorf("num_uses=%d: %d of %d concurrent requests succeeded, want %d", uses, ok, n, uses)
		}
	}
}

// TestNumUsesLastUseServesRequest checks that the request spending a
// token's last use is served in full (sys/capabilities-self and
// auth/token/lookup-self look the caller up again) and the next is refused.
func TestNumUsesLastUseServesRequest(t *testing.T) {
	t.Parallel()
	ts := coretest.NewTestServer(t)
	tests := []struct {
		name   string
		method string
		path   string
		body   string
	}{
		{name: "capabilities-self", method: http.MethodPost, path: "/v1/sys/capabilities-self", body: `{"paths":["sys/capabilities-self"]}`},
		{name: "lookup-self", method: http.MethodGet, path: "/v1/auth/token/lookup-self"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sec, err := ts.Client.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"default"}, NumUses: 1})
			if err != nil {
				t.Fatal(err)
			}
			tok := sec.Auth.ClientToken
			if got := do(t, tc.method, ts.Addr+tc.path, tok, tc.body); got.Status != http.StatusOK {
				t.Fatalf("last use: %+v, want 200", got)
			}
			if got := do(t, tc.method, ts.Addr+tc.path, tok, tc.body); got.Status != http.StatusForbidden {
				t.Fatalf("after last use: %+v, want 403", got)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestTokenInURLNotLogged checks that the deprecated endpoints taking a
// token in the URL do not leak it to the (debug) access log.
func TestTokenInURLNotLogged(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	ts := coretest.NewTestServer(t, coretest.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	for _, path := range []string{"auth/token/renew/", "auth/token/revoke-orphan/", "auth/token/revoke/"} {
		sec, err := ts.Client.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"default"}, TTL: "1h"})
		if err != nil {
			t.Fatal(err)
		}
		tok := sec.Auth.ClientToken
		if got := do(t, http.MethodPost, ts.Addr+"/v1/"+path+tok, ts.RootToken, ""); got.Status >= 300 {
			t.Fatalf("POST %s<token>: %+v", path, got)
		}
		if strings.Contains(logs.String(), tok) {
			t.Errorf("POST %s<token>: the token is in the logs", path)
		}
	}
	if !strings.Contains(logs.String(), "auth/token/revoke/") {
		t.Errorf("access log lost the request path:\n%s", logs.String())
	}
}
