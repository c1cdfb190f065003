package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/audit"
	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/logical/framework"
	"github.com/keyward/keyward/internal/storage/inmem"
)

const (
	secretValue = "s3cr3t-value-do-not-log"
	clientToken = "hvs.CLIENTTOKENabcdefghijklmn"
	accessor    = "ACCESSORxyz123"
	newToken    = "hvs.NEWLOGINTOKENopqrstuvwxyz"
	newAccessor = "NEWACCESSOR987"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 123456789, time.UTC)

type harness struct {
	broker  *audit.Broker
	backend *framework.Backend
	store   *inmem.Backend
	logs    *bytes.Buffer
	stdout  *bytes.Buffer
}

func newHarness(t *testing.T, store *inmem.Backend) *harness {
	t.Helper()
	if store == nil {
		store = inmem.New()
	}
	h := &harness{store: store, logs: &bytes.Buffer{}, stdout: &bytes.Buffer{}}
	h.broker = audit.NewBroker(audit.BrokerConfig{
		Storage: store,
		Logger:  slog.New(slog.NewJSONHandler(&syncWriter{w: h.logs}, nil)),
		Clock:   fixedClock{t0},
		Stdout:  &syncWriter{w: h.stdout},
	})
	if err := h.broker.Setup(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.broker.Teardown)
	h.backend = &framework.Backend{Paths: h.broker.Paths()}
	if err := h.backend.Compile(); err != nil {
		t.Fatal(err)
	}
	return h
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (h *harness) sys(t *testing.T, op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	t.Helper()
	return h.backend.HandleRequest(t.Context(), &logical.Request{Operation: op, Path: path, Data: data, MountPoint: "sys/"})
}

func (h *harness) enable(t *testing.T, path string, options map[string]any) {
	t.Helper()
	if _, err := h.sys(t, logical.UpdateOperation, "audit/"+path, map[string]any{"type": "file", "options": options}); err != nil {
		t.Fatalf("enable %s: %v", path, err)
	}
}

func (h *harness) hash(t *testing.T, path, input string) string {
	t.Helper()
	resp, err := h.sys(t, logical.UpdateOperation, "audit-hash/"+path, map[string]any{"input": input})
	if err != nil {
		t.Fatalf("audit-hash: %v", err)
	}
	s, _ := resp.Data["hash"].(string)
	if !strings.HasPrefix(s, "hmac-sha256:") {
		t.Fatalf("hash %q", s)
	}
	return s
}

func caller() *logical.Auth {
	return &logical.Auth{
		ClientToken:   clientToken,
		Accessor:      accessor,
		DisplayName:   "azure-aks",
		Policies:      []string{"aks", "default"},
		TokenPolicies: []string{"aks", "default"},
		Metadata:      map[string]string{"role": "aks-role"},
		EntityID:      "ent-1",
		TokenType:     "service",
		LeaseOptions:  logical.LeaseOptions{TTL: time.Hour},
	}
}

func kvWrite() *logical.Request {
	return &logical.Request{
		ID:                  "req-1",
		Operation:           logical.UpdateOperation,
		Path:                "mysecret",
		MountPoint:          "aks/",
		MountType:           "kv",
		MountAccessor:       "kv_1234",
		ClientToken:         clientToken,
		ClientTokenAccessor: accessor,
		Data: map[string]any{
			"foo":    secretValue,
			"nested": map[string]any{"list": []any{secretValue, json.Number("42"), true}},
			"count":  3,
		},
		Connection: &logical.Connection{RemoteAddr: "127.0.0.1"},
	}
}

func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFileDeviceRedactsAndMatchesAuditHash(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	logPath := filepath.Join(t.TempDir(), "audit.log")
	h.enable(t, "file", map[string]any{"file_path": logPath})

	st, err := os.Stat(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}

	req := kvWrite()
	ctx := t.Context()
	if err = h.broker.LogRequest(ctx, &audit.Input{Caller: caller(), Request: req}); err != nil {
		t.Fatal(err)
	}
	resp := &logical.Response{
		Data:   map[string]any{"foo": secretValue, "ttl": 60},
		Secret: &logical.Secret{LeaseID: "aks/mysecret/lease1"},
	}
	if err = h.broker.LogResponse(ctx, &audit.Input{Caller: caller(), Request: req, Response: resp, Err: errors.New("boom")}); err != nil {
		t.Fatal(err)
	}

	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, clear := range []string{secretValue, clientToken, accessor} {
		if bytes.Contains(raw, []byte(clear)) {
			t.Errorf("audit log contains %q in clear", clear)
		}
	}

	hs := func(s string) string { return h.hash(t, "file", s) }
	lines := readLines(t, logPath)
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2", len(lines))
	}
	wantAuth := map[string]any{
		"client_token":   hs(clientToken),
		"accessor":       hs(accessor),
		"display_name":   "azure-aks",
		"policies":       []any{"aks", "default"},
		"token_policies": []any{"aks", "default"},
		"metadata":       map[string]any{"role": "aks-role"},
		"entity_id":      "ent-1",
		"token_type":     "service",
		"token_ttl":      float64(3600),
	}
	wantReq := map[string]any{
		"id":                    "req-1",
		"operation":             "update",
		"mount_point":           "aks/",
		"mount_type":            "kv",
		"mount_accessor":        "kv_1234",
		"client_token":          hs(clientToken),
		"client_token_accessor": hs(accessor),
		"namespace":             map[string]any{"id": "root"},
		"path":                  "aks/mysecret",
		"data": map[string]any{
			"foo":    hs(secretValue),
			"nested": map[string]any{"list": []any{hs(secretValue), hs("42"), true}},
			"count":  float64(3),
		},
		"remote_address": "127.0.0.1",
	}
	want := []map[string]any{
		{"time": "2026-11-27T12:00:00.123456789Z", "type": "request", "auth": wantAuth, "request": wantReq},
		{
			"time": "2026-11-27T12:00:00.123456789Z", "type": "response", "auth": wantAuth, "request": wantReq,
			"response": map[string]any{
				"mount_point":    "aks/",
				"mount_type":     "kv",
				"mount_accessor": "kv_1234",
				"secret":         map[string]any{"lease_id": "aks/mysecret/lease1"},
				"data":           map[string]any{"foo": hs(secretValue), "ttl": float64(60)},
			},
			"error": "boom",
		},
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("audit lines (-want +got):\n%s", diff)
	}
	// The caller's data must not have been modified in place.
	if req.Data["foo"] != secretValue {
		t.Error("LogRequest modified the request data")
	}
}

func TestLoginResponseTokenIsHashed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	logPath := filepath.Join(t.TempDir(), "audit.log")
	h.enable(t, "file", map[string]any{"file_path": logPath})
	req := &logical.Request{
		ID: "login-1", Operation: logical.UpdateOperation, Path: "login", MountPoint: "auth/azure/",
		MountType: "azure", Data: map[string]any{"role": "aks-role", "jwt": "eyJhbGciOi.secret.jwt"},
		Connection: &logical.Connection{RemoteAddr: "10.0.0.5"},
	}
	resp := &logical.Response{Auth: &logical.Auth{
		ClientToken: newToken, Accessor: newAccessor, Policies: []string{"aks", "default"},
		TokenPolicies: []string{"aks", "default"}, DisplayName: "azure-x", TokenType: "service",
	}}
	if err := h.broker.LogRequest(t.Context(), &audit.Input{Request: req}); err != nil {
		t.Fatal(err)
	}
	if err := h.broker.LogResponse(t.Context(), &audit.Input{Request: req, Response: resp}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, clear := range []string{newToken, newAccessor, "eyJhbGciOi.secret.jwt"} {
		if bytes.Contains(raw, []byte(clear)) {
			t.Errorf("audit log contains %q in clear", clear)
		}
	}
	lines := readLines(t, logPath)
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	gotAuth := lines[1]["response"].(map[string]any)["auth"].(map[string]any)
	if diff := cmp.Diff(h.hash(t, "file", newToken), gotAuth["client_token"]); diff != "" {
		t.Errorf("response.auth.client_token (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(h.hash(t, "file", newAccessor), gotAuth["accessor"]); diff != "" {
		t.Errorf("response.auth.accessor (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff("auth/azure/login", lines[0]["request"].(map[string]any)["path"]); diff != "" {
		t.Errorf("path (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{}, lines[0]["auth"]); diff != "" {
		t.Errorf("unauthenticated auth (-want +got):\n%s", diff)
	}
}

func TestDeviceOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		options      map[string]any
		wantToken    bool // token in clear
		wantAccessor bool // accessor in clear
		wantSecret   bool // data in clear
	}{
		{"defaults", map[string]any{}, false, false, false},
		{"hmac_accessor false", map[string]any{"hmac_accessor": "false"}, false, true, false},
		{"log_raw", map[string]any{"log_raw": "true"}, true, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			logPath := filepath.Join(t.TempDir(), "audit.log")
			opts := map[string]any{"file_path": logPath}
			for k, v := range tc.options {
				opts[k] = v
			}
			h.enable(t, "file", opts)
			if err := h.broker.LogRequest(t.Context(), &audit.Input{Caller: caller(), Request: kvWrite()}); err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(logPath)
			if err != nil {
				t.Fatal(err)
			}
			got := [3]bool{bytes.Contains(raw, []byte(clientToken)), bytes.Contains(raw, []byte(accessor)), bytes.Contains(raw, []byte(secretValue))}
			if diff := cmp.Diff([3]bool{tc.wantToken, tc.wantAccessor, tc.wantSecret}, got); diff != "" {
				t.Errorf("in clear [token accessor secret] (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPrefixAndElideList(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	logPath := filepath.Join(t.TempDir(), "audit.log")
	h.enable(t, "file", map[string]any{"file_path": logPath, "prefix": "AUDIT:", "elide_list_responses": "true"})
	req := &logical.Request{ID: "l", Operation: logical.ListOperation, Path: "", MountPoint: "aks/"}
	resp := &logical.Response{Data: map[string]any{"keys": []string{"a", "b", "c"}}}
	if err := h.broker.LogResponse(t.Context(), &audit.Input{Request: req, Response: resp}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	line, ok := strings.CutPrefix(string(raw), "AUDIT:")
	if !ok {
		t.Fatalf("line %q lacks the prefix", raw)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"keys": float64(3)}, m["response"].(map[string]any)["data"]); diff != "" {
		t.Errorf("elided data (-want +got):\n%s", diff)
	}
}

func TestFailingDevice(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("/dev/full not available")
	}
	ctx := t.Context()

	t.Run("no devices is fine", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, nil)
		if err := h.broker.LogRequest(ctx, &audit.Input{Request: kvWrite()}); err != nil {
			t.Errorf("LogRequest with no devices: %v", err)
		}
	})
	t.Run("only device fails", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, nil)
		h.enable(t, "full", map[string]any{"file_path": "/dev/full", "mode": "0000"})
		err := h.broker.LogRequest(ctx, &audit.Input{Caller: caller(), Request: kvWrite()})
		if !errors.Is(err, audit.ErrAuditFailed) {
			t.Errorf("LogRequest = %v, want ErrAuditFailed", err)
		}
		err = h.broker.LogResponse(ctx, &audit.Input{Caller: caller(), Request: kvWrite()})
		if !errors.Is(err, audit.ErrAuditFailed) {
			t.Errorf("LogResponse = %v, want ErrAuditFailed", err)
		}
		logs := h.logs.String()
		if !strings.Contains(logs, "audit device failed") {
			t.Errorf("failure not logged: %s", logs)
		}
		for _, clear := range []string{clientToken, accessor, secretValue} {
			if strings.Contains(logs, clear) {
				t.Errorf("operational log contains %q", clear)
			}
		}
	})
	t.Run("one of two devices fails", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, nil)
		logPath := filepath.Join(t.TempDir(), "audit.log")
		h.enable(t, "full", map[string]any{"file_path": "/dev/full", "mode": "0000"})
		h.enable(t, "good", map[string]any{"file_path": logPath})
		if err := h.broker.LogRequest(ctx, &audit.Input{Request: kvWrite()}); err != nil {
			t.Errorf("LogRequest = %v, want nil", err)
		}
		if n := len(readLines(t, logPath)); n != 1 {
			t.Errorf("good device has %d lines", n)
		}
	})
}

func TestEnableErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	dir := t.TempDir()
	h.enable(t, "file", map[string]any{"file_path": filepath.Join(dir, "a.log")})
	tests := []struct {
		name string
		path string
		data map[string]any
	}{
		{"missing type", "x", map[string]any{"options": map[string]any{"file_path": filepath.Join(dir, "x")}}},
		{"unknown type", "x", map[string]any{"type": "syslogx"}},
		{"missing file_path", "x", map[string]any{"type": "file"}},
		{"bad mode", "x", map[string]any{"type": "file", "options": map[string]any{"file_path": filepath.Join(dir, "x"), "mode": "rw"}}},
		{"executable mode", "x", map[string]any{"type": "file", "options": map[string]any{"file_path": filepath.Join(dir, "x"), "mode": "0755"}}},
		{"bad bool", "x", map[string]any{"type": "file", "options": map[string]any{"file_path": filepath.Join(dir, "x"), "log_raw": "maybe"}}},
		{"bad format", "x", map[string]any{"type": "file", "options": map[string]any{"file_path": filepath.Join(dir, "x"), "format": "xml"}}},
		{"unwritable path", "x", map[string]any{"type": "file", "options": map[string]any{"file_path": filepath.Join(dir, "no/such/dir/x")}}},
		{"path in use", "file", map[string]any{"type": "file", "options": map[string]any{"file_path": filepath.Join(dir, "y")}}},
		{"nested path in use", "file/sub", map[string]any{"type": "file", "options": map[string]any{"file_path": filepath.Join(dir, "y")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.sys(t, logical.UpdateOperation, "audit/"+tc.path, tc.data)
			var ce *logical.CodedError
			if !errors.As(err, &ce) || ce.Status != 400 {
				t.Errorf("enable = %v, want a 400 CodedError", err)
			}
		})
	}
	_, err := h.sys(t, logical.UpdateOperation, "audit-hash/nope", map[string]any{"input": "x"})
	var ce *logical.CodedError
	if !errors.As(err, &ce) || ce.Status != 400 {
		t.Errorf("audit-hash unknown device = %v, want 400", err)
	}
	_, err = h.sys(t, logical.UpdateOperation, "audit-hash/file", map[string]any{})
	if !errors.As(err, &ce) || ce.Status != 400 {
		t.Errorf("audit-hash without input = %v, want 400", err)
	}
}

func TestListDisableAndPersistence(t *testing.T) {
	t.Parallel()
	store := inmem.New()
	h := newHarness(t, store)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "audit.log")
	if _, err := h.sys(t, logical.UpdateOperation, "audit/file", map[string]any{
		"type": "file", "description": "Store logs in a file", "options": map[string]any{"file_path": logPath},
	}); err != nil {
		t.Fatal(err)
	}
	h.enable(t, "out", map[string]any{"file_path": "stdout"})
	h.enable(t, "null", map[string]any{"file_path": "discard"})
	resp, err := h.sys(t, logical.ReadOperation, "audit", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"file/": map[string]any{"type": "file", "description": "Store logs in a file", "options": map[string]string{"file_path": logPath}, "local": false, "path": "file/"},
		"out/":  map[string]any{"type": "file", "description": "", "options": map[string]string{"file_path": "stdout"}, "local": false, "path": "out/"},
		"null/": map[string]any{"type": "file", "description": "", "options": map[string]string{"file_path": "discard"}, "local": false, "path": "null/"},
	}
	if diff := cmp.Diff(want, resp.Data); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	before := h.hash(t, "file", secretValue)

	// Seal and unseal: a new broker over the same storage keeps devices
	// and salts.
	h.broker.Teardown()
	h2 := newHarness(t, store)
	if got := h2.hash(t, "file/", secretValue); got != before {
		t.Errorf("hash after Setup %s, want %s", got, before)
	}
	if err = h2.broker.LogRequest(t.Context(), &audit.Input{Request: kvWrite()}); err != nil {
		t.Fatal(err)
	}
	if n := len(readLines(t, logPath)); n != 1 {
		t.Errorf("%d lines after re-setup", n)
	}
	if !strings.Contains(h2.stdout.String(), `"type":"request"`) {
		t.Errorf("stdout device wrote %q", h2.stdout.String())
	}

	if _, err = h2.sys(t, logical.DeleteOperation, "audit/file", nil); err != nil {
		t.Fatal(err)
	}
	if _, err = h2.sys(t, logical.DeleteOperation, "audit/never-enabled", nil); err != nil {
		t.Errorf("disabling a missing device: %v", err)
	}
	resp, err = h2.sys(t, logical.ReadOperation, "audit/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := resp.Data["file/"]; ok || len(resp.Data) != 2 {
		t.Errorf("after disable: %v", resp.Data)
	}
	// Re-enabling gets a new salt.
	h2.enable(t, "file", map[string]any{"file_path": logPath})
	if got := h2.hash(t, "file", secretValue); got == before {
		t.Error("re-enabled device reuses the old salt")
	}
	// Persisted after disable too.
	h3 := newHarness(t, store)
	resp, err = h3.sys(t, logical.ReadOperation, "audit", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Data) != 3 {
		t.Errorf("persisted table: %v", resp.Data)
	}
}

func TestConcurrentWrites(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	logPath := filepath.Join(t.TempDir(), "audit.log")
	h.enable(t, "file", map[string]any{"file_path": logPath})
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := kvWrite()
			req.ID = fmt.Sprintf("req-%d", i)
			req.Data["big"] = strings.Repeat("x", 8192)
			in := &audit.Input{Caller: caller(), Request: req}
			errs <- h.broker.LogRequest(context.Background(), in)
			errs <- h.broker.LogResponse(context.Background(), in)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	lines := readLines(t, logPath)
	if len(lines) != 2*n {
		t.Fatalf("%d lines, want %d", len(lines), 2*n)
	}
	seen := map[string]int{}
	for _, l := range lines {
		seen[l["request"].(map[string]any)["id"].(string)]++
	}
	for i := range n {
		if seen[fmt.Sprintf("req-%d", i)] != 2 {
			t.Errorf("req-%d logged %d times", i, seen[fmt.Sprintf("req-%d", i)])
		}
	}
}

func TestInputWithoutRequest(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	if err := h.broker.LogRequest(t.Context(), &audit.Input{}); err == nil {
		t.Error("want an error for an input without a request")
	}
}

func TestSetupWithUnopenableDeviceFailsRequests(t *testing.T) {
	t.Parallel()
	store := inmem.New()
	h := newHarness(t, store)
	dir := filepath.Join(t.TempDir(), "logs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	h.enable(t, "file", map[string]any{"file_path": filepath.Join(dir, "audit.log")})
	h.broker.Teardown()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	h2 := newHarness(t, store) // Setup succeeds; the device is kept but broken
	if !h2.broker.Enabled() {
		t.Fatal("device dropped at Setup")
	}
	if err := h2.broker.LogRequest(t.Context(), &audit.Input{Request: kvWrite()}); !errors.Is(err, audit.ErrAuditFailed) {
		t.Errorf("LogRequest = %v, want ErrAuditFailed", err)
	}
	if !strings.Contains(h2.logs.String(), "audit device could not be opened") {
		t.Errorf("open failure not logged: %s", h2.logs.String())
	}
}

func TestReopenAfterRotation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "audit.log")
	h.enable(t, "file", map[string]any{"file_path": logPath})
	if err := h.broker.LogRequest(t.Context(), &audit.Input{Request: kvWrite()}); err != nil {
		t.Fatal(err)
	}
	rotated := filepath.Join(dir, "audit.log.1")
	if err := os.Rename(logPath, rotated); err != nil {
		t.Fatal(err)
	}
	if err := h.broker.Reopen(); err != nil {
		t.Fatal(err)
	}
	if err := h.broker.LogRequest(t.Context(), &audit.Input{Request: kvWrite()}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([2]int{1, 1}, [2]int{len(readLines(t, rotated)), len(readLines(t, logPath))}); diff != "" {
		t.Errorf("lines [rotated current] (-want +got):\n%s", diff)
	}
}
