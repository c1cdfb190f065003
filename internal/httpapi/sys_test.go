package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/vault/api"

	"github.com/keyward/keyward/internal/core/coretest"
)

func TestCapabilities(t *testing.T) {
	t.Parallel()
	ts := coretest.NewTestServer(t)
	c := ts.Client
	if err := c.Sys().PutPolicy("aks", `path "aks/*" { capabilities = ["read", "list"] }`); err != nil {
		t.Fatal(err)
	}
	sec, err := c.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"aks"}})
	if err != nil {
		t.Fatal(err)
	}
	tok := sec.Auth.ClientToken
	got, err := c.Sys().Capabilities(tok, "aks/mysecret")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"list", "read"}, got); diff != "" {
		t.Errorf("capabilities of aks/mysecret (-want +got):\n%s", diff)
	}
	got, err = c.Sys().Capabilities(tok, "sys/mounts")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"deny"}, got); diff != "" {
		t.Errorf("capabilities of sys/mounts (-want +got):\n%s", diff)
	}
	self := ts.NewClient(t, tok)
	got, err = self.Sys().CapabilitiesSelf("aks/x")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"list", "read"}, got); diff != "" {
		t.Errorf("capabilities-self of aks/x (-want +got):\n%s", diff)
	}
	got, err = c.Sys().CapabilitiesSelf("anything/at/all")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"root"}, got); diff != "" {
		t.Errorf("root capabilities (-want +got):\n%s", diff)
	}
}

// TestRotate: after sys/rotate the key term advances and data written
// before it stays readable.
func TestRotate(t *testing.T) {
	t.Parallel()
	ts := coretest.NewTestServer(t, coretest.WithFileStorage(t.TempDir()))
	c := ts.Client
	if _, err := c.Logical().Write("secret/data/before", map[string]any{"data": map[string]any{"v": "1"}}); err != nil {
		t.Fatal(err)
	}
	before, err := c.Sys().KeyStatus()
	if err != nil {
		t.Fatal(err)
	}
	if err = c.Sys().Rotate(); err != nil {
		t.Fatal(err)
	}
	after, err := c.Sys().KeyStatus()
	if err != nil {
		t.Fatal(err)
	}
	if after.Term != before.Term+1 {
		t.Errorf("term after rotate = %d, want %d", after.Term, before.Term+1)
	}
	sec, err := c.Logical().Read("secret/data/before")
	if err != nil || sec == nil {
		t.Fatalf("reading data written before the rotation: %v", err)
	}
	// Rotation is a sudo path: a token without sudo is refused.
	if err = c.Sys().PutPolicy("rotator", `path "sys/rotate" { capabilities = ["update"] }`); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"rotator"}})
	if err != nil {
		t.Fatal(err)
	}
	err = ts.NewClient(t, tok.Auth.ClientToken).Sys().Rotate()
	if got := statusCode(err); got != http.StatusForbidden {
		t.Errorf("rotate without sudo: %v (status %d), want 403", err, got)
	}
}

// TestSealEndpointsAndHealth walks seal-status, health codes, seal and
// the 503 of every other path while sealed.
func TestSealEndpointsAndHealth(t *testing.T) {
	t.Parallel()
	ts := coretest.NewTestServer(t)
	health := func(query string) int {
		resp, err := http.Get(ts.Addr + "/v1/sys/health" + query)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := health(""); got != http.StatusOK {
		t.Errorf("health unsealed = %d, want 200", got)
	}
	if got := health("?activecode=299"); got != 299 {
		t.Errorf("health activecode=299 = %d", got)
	}
	if got := health("?sealedcode=abc"); got != http.StatusBadRequest {
		t.Errorf("health with a bad code = %d, want 400", got)
	}
	if err := ts.Client.Sys().Seal(); err != nil {
		t.Fatal(err)
	}
	if got := health(""); got != http.StatusServiceUnavailable {
		t.Errorf("health sealed = %d, want 503", got)
	}
	if got := health("?sealedcode=200"); got != http.StatusOK {
		t.Errorf("health sealedcode=200 = %d", got)
	}
	_, err := ts.Client.Logical().Read("secret/config")
	if got := statusCode(err); got != http.StatusServiceUnavailable {
		t.Errorf("read while sealed: status %d, want 503", got)
	}
	st, err := ts.Client.Sys().SealStatus()
	if err != nil || !st.Sealed || st.T != 1 || st.N != 1 {
		t.Fatalf("seal-status = %+v, %v", st, err)
	}
	reset, err := ts.Client.Sys().ResetUnsealProcess()
	if err != nil || reset.Progress != 0 {
		t.Fatalf("unseal reset = %+v, %v", reset, err)
	}
	if _, err = ts.Client.Sys().UnsealWithOptions(&api.UnsealOpts{Key: ""}); statusCode(err) != http.StatusBadRequest {
		t.Errorf("unseal without key: %v, want 400", err)
	}
	uninit := coretest.NewTestServer(t, coretest.Uninitialized())
	resp, err := http.Get(uninit.Addr + "/v1/sys/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented {
		t.Errorf("health uninitialized = %d, want 501", resp.StatusCode)
	}
}
