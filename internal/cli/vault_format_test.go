package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/vault/api"
)

// vaultTestMeta returns a vaultMeta writing to buffers, with VAULT_FORMAT
// taken from format ("" = table).
func vaultTestMeta(format string) (*vaultMeta, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	env := &Env{
		Stdin:  strings.NewReader(""),
		Stdout: &out,
		Stderr: &errb,
		Getenv: func(k string) string {
			if k == envVaultFormat {
				return format
			}
			return ""
		},
	}
	return newVaultMeta(env, "test"), &out, &errb
}

func TestColumnizeAndTableOutput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		rows  []string
		delim string
		want  string
	}{
		{
			name:  "key value",
			rows:  []string{"Key ♨ Value", "refresh_interval ♨ 768h", "foo ♨ bar"},
			delim: tableDelim,
			want: "Key                 Value\n" +
				"---                 -----\n" +
				"refresh_interval    768h\n" +
				"foo                 bar",
		},
		{
			name:  "empty cell prints n/a",
			rows:  []string{"Key | Value", "Unseal Nonce | ", "Sealed | true"},
			delim: "|",
			want: "Key             Value\n" +
				"---             -----\n" +
				"Unseal Nonce    n/a\n" +
				"Sealed          true",
		},
		{
			name:  "four columns",
			rows:  []string{"Path | Type | Accessor | Description", "aks/ | kv | kv_1234 | ", "sys/ | system | system_ab | system endpoints"},
			delim: "|",
			want: "Path    Type      Accessor     Description\n" +
				"----    ----      --------     -----------\n" +
				"aks/    kv        kv_1234      n/a\n" +
				"sys/    system    system_ab    system endpoints",
		},
		{
			name:  "list",
			rows:  []string{"Keys", "a", "b/"},
			delim: tableDelim,
			want:  "Keys\n----\na\nb/",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, tableOutput(tt.rows, tt.delim)); diff != "" {
				t.Errorf("tableOutput (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHumanDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   any
		want any
	}{
		{2764800, "768h"},
		{json.Number("2764800"), "768h"},
		{json.Number("3600"), "1h"},
		{json.Number("5400"), "1h30m"},
		{json.Number("45"), "45s"},
		{json.Number("3661"), "1h1m1s"},
		{0, "0s"},
		{"768h", "768h"},
		{int64(60), "1m"},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, humanDurationValue(tt.in)); diff != "" {
			t.Errorf("humanDurationValue(%v) (-want +got):\n%s", tt.in, diff)
		}
	}
	if got := humanDuration(90 * time.Minute); got != "1h30m" {
		t.Errorf("humanDuration(90m) = %q", got)
	}
}

func TestWrapAtLength(t *testing.T) {
	t.Parallel()
	// Vault's documented `operator init` and `login` texts.
	tests := []struct {
		in   string
		pad  int
		want string
	}{
		{
			in: "Vault initialized with 5 key shares and a key threshold of 3. Please securely distribute the " +
				"key shares printed above. When the Vault is re-sealed, restarted, or stopped, you must supply " +
				"at least 3 of these keys to unseal it before it can start servicing requests.",
			want: "Vault initialized with 5 key shares and a key threshold of 3. Please securely\n" +
				"distribute the key shares printed above. When the Vault is re-sealed,\n" +
				"restarted, or stopped, you must supply at least 3 of these keys to unseal it\n" +
				"before it can start servicing requests.",
		},
		{
			in: "Success! You are now authenticated. The token information displayed below is already stored " +
				"in the token helper. You do NOT need to run \"vault login\" again. Future Vault requests will " +
				"automatically use this token.",
			want: "Success! You are now authenticated. The token information displayed below\n" +
				"is already stored in the token helper. You do NOT need to run \"vault login\"\n" +
				"again. Future Vault requests will automatically use this token.",
		},
		{in: "short", want: "short"},
		{in: "* a warning", pad: 2, want: "  * a warning"},
		{in: "", want: ""},
		{in: strings.Repeat("x", 100) + " y", want: strings.Repeat("x", 100) + "\ny"},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, wrapAtLength(tt.in, tt.pad)); diff != "" {
			t.Errorf("wrapAtLength (-want +got):\n%s", diff)
		}
	}
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"data", headerForMap("Data", map[string]any{"foo": "bar"}), "=== Data ==="},
		{"metadata", headerForMap("Metadata", map[string]any{"created_time": 1, "custom_metadata": 1, "version": 1}), "======= Metadata ======="},
		{"secret path", padEqualSigns("Secret Path", len("secret/data/creds")), "== Secret Path =="},
		{"short", padEqualSigns("Secret Path", 3), "== Secret Path =="},
		{"odd", padEqualSigns("Data", 11), "=== Data ==="},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, tt.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestOutputSecretTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		secret  *api.Secret
		want    string
		wantErr string
	}{
		{
			name:   "kv v1 read",
			secret: &api.Secret{LeaseDuration: 2764800, Data: map[string]any{"foo": "bar"}},
			want: "Key                 Value\n" +
				"---                 -----\n" +
				"refresh_interval    768h\n" +
				"foo                 bar\n",
		},
		{
			name: "token create",
			secret: &api.Secret{Auth: &api.SecretAuth{
				ClientToken: "hvs.abc", Accessor: "acc", LeaseDuration: 2764800, Renewable: true,
				Policies: []string{"aks", "default"}, TokenPolicies: []string{"aks", "default"},
			}},
			want: "Key                  Value\n" +
				"---                  -----\n" +
				"token                hvs.abc\n" +
				"token_accessor       acc\n" +
				"token_duration       768h\n" +
				"token_renewable      true\n" +
				"token_policies       [\"aks\" \"default\"]\n" +
				"identity_policies    []\n" +
				"policies             [\"aks\" \"default\"]\n",
		},
		{
			name: "root token lookup as auth",
			secret: &api.Secret{Auth: &api.SecretAuth{
				ClientToken: "hvs.root", Accessor: "a", Policies: []string{"root"}, TokenPolicies: []string{"root"},
				Metadata: map[string]string{"role": "r"},
			}},
			want: "Key                  Value\n" +
				"---                  -----\n" +
				"token                hvs.root\n" +
				"token_accessor       a\n" +
				"token_duration       ∞\n" +
				"token_renewable      false\n" +
				"token_policies       [\"root\"]\n" +
				"identity_policies    []\n" +
				"policies             [\"root\"]\n" +
				"token_meta_role      r\n",
		},
		{
			name: "token lookup data with durations and nil",
			secret: &api.Secret{Data: map[string]any{
				"creation_ttl": json.Number("0"), "ttl": json.Number("3600"), "expire_time": nil,
				"policies": []any{"root"}, "display_name": "",
			}},
			want: "Key             Value\n" +
				"---             -----\n" +
				"creation_ttl    0s\n" +
				"display_name    n/a\n" +
				"expire_time     <nil>\n" +
				"policies        [root]\n" +
				"ttl             1h\n",
		},
		{
			name:    "warnings go to stderr",
			secret:  &api.Secret{Warnings: []string{"careful"}, Data: map[string]any{"a": "b"}},
			want:    "Key    Value\n---    -----\na      b\n",
			wantErr: "WARNING! The following warnings were returned from Vault:\n\n  * careful\n\n",
		},
		{name: "empty secret prints nothing", secret: &api.Secret{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, out, errb := vaultTestMeta("")
			if code := m.outputSecret(tt.secret); code != exitOK {
				t.Fatalf("outputSecret = %d, stderr %q", code, errb)
			}
			if diff := cmp.Diff(tt.want, out.String()); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantErr, errb.String()); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOutputFormats(t *testing.T) {
	t.Parallel()
	secret := &api.Secret{RequestID: "r1", LeaseDuration: 60, Data: map[string]any{"foo": "bar"}}
	tests := []struct {
		name, format string
		data         any
		want         string
		wantCode     int
	}{
		{
			name: "json secret", format: "json", data: secret,
			want: "{\n  \"request_id\": \"r1\",\n  \"lease_id\": \"\",\n  \"lease_duration\": 60,\n  \"renewable\": false,\n" +
				"  \"data\": {\n    \"foo\": \"bar\"\n  },\n  \"warnings\": null\n}\n",
		},
		{name: "yaml map", format: "yaml", data: map[string]any{"b": 1, "a": "x"}, want: "a: x\nb: 1\n"},
		{name: "json list", format: "json", data: []any{"a", "b"}, want: "[\n  \"a\",\n  \"b\"\n]\n"},
		{name: "table list sorted", format: "table", data: []any{"b", "a"}, want: "Keys\n----\na\nb\n"},
		{name: "table list of non-strings fails", format: "table", data: []any{1}, wantCode: exitLocal},
		{name: "table of unknown type fails", format: "table", data: 42, wantCode: exitLocal},
		{name: "raw rejected", format: "raw", data: secret, wantCode: exitLocal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, out, _ := vaultTestMeta(tt.format)
			if code := m.outputData(tt.data); code != tt.wantCode {
				t.Fatalf("outputData = %d, want %d", code, tt.wantCode)
			}
			if diff := cmp.Diff(tt.want, out.String()); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPrintField(t *testing.T) {
	t.Parallel()
	auth := &api.Secret{Auth: &api.SecretAuth{ClientToken: "hvs.x", Policies: []string{"a"}}, LeaseDuration: 5}
	data := &api.Secret{Data: map[string]any{"foo": "bar", "n": json.Number("3")}, LeaseDuration: 768}
	tests := []struct {
		name, format, field string
		data                any
		want                string
		wantCode            int
	}{
		{name: "token has no newline", field: "token", data: auth, want: "hvs.x"},
		{name: "policies", field: "policies", data: auth, want: "[a]"},
		{name: "data field", field: "foo", data: data, want: "bar"},
		{name: "lease field", field: "refresh_interval", data: data, want: "768"},
		{name: "json encodes", format: "json", field: "foo", data: data, want: "\"bar\""},
		{name: "map", field: "n", data: map[string]any{"n": json.Number("3")}, want: "3"},
		{name: "missing field", field: "nope", data: data, wantCode: exitLocal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, out, errb := vaultTestMeta(tt.format)
			if code := m.printField(tt.data, tt.field); code != tt.wantCode {
				t.Fatalf("printField = %d, want %d", code, tt.wantCode)
			}
			if diff := cmp.Diff(tt.want, out.String()); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
			if tt.wantCode != exitOK && !strings.Contains(errb.String(), tt.field) {
				t.Errorf("stderr %q does not name the field", errb)
			}
		})
	}
}

func TestSealStatusTable(t *testing.T) {
	t.Parallel()
	sealed := sealStatusOutput{SealStatusResponse: api.SealStatusResponse{
		Type: "shamir", Initialized: true, Sealed: true, T: 1, N: 1, Version: "1.0.0", BuildDate: "2026-01-01", StorageType: "file",
	}}
	want := "Key                Value\n" +
		"---                -----\n" +
		"Seal Type          shamir\n" +
		"Initialized        true\n" +
		"Sealed             true\n" +
		"Total Shares       1\n" +
		"Threshold          1\n" +
		"Unseal Progress    0/1\n" +
		"Unseal Nonce       n/a\n" +
		"Version            1.0.0\n" +
		"Build Date         2026-01-01\n" +
		"Storage Type       file\n" +
		"HA Enabled         false"
	if diff := cmp.Diff(want, tableOutput(sealStatusRows(sealed), "|")); diff != "" {
		t.Errorf("sealed (-want +got):\n%s", diff)
	}
	unsealed := sealed
	unsealed.Sealed = false
	unsealed.ClusterName, unsealed.ClusterID = "vault-cluster-1", "cid"
	want = "Key             Value\n" +
		"---             -----\n" +
		"Seal Type       shamir\n" +
		"Initialized     true\n" +
		"Sealed          false\n" +
		"Total Shares    1\n" +
		"Threshold       1\n" +
		"Version         1.0.0\n" +
		"Build Date      2026-01-01\n" +
		"Storage Type    file\n" +
		"Cluster Name    vault-cluster-1\n" +
		"Cluster ID      cid\n" +
		"HA Enabled      false"
	if diff := cmp.Diff(want, tableOutput(sealStatusRows(unsealed), "|")); diff != "" {
		t.Errorf("unsealed (-want +got):\n%s", diff)
	}
}

func TestAddPrefixToKVPath(t *testing.T) {
	t.Parallel()
	tests := []struct{ p, mount, prefix, want string }{
		{"aks/mysecret", "aks/", "data", "aks/data/mysecret"},
		{"aks", "aks/", "metadata", "aks/metadata"},
		{"aks/", "aks/", "metadata", "aks/metadata"},
		{"a/b/c/d", "a/b/", "delete", "a/b/delete/c/d"},
	}
	for _, tt := range tests {
		if got := addPrefixToKVPath(tt.p, tt.mount, tt.prefix); got != tt.want {
			t.Errorf("addPrefixToKVPath(%q, %q, %q) = %q, want %q", tt.p, tt.mount, tt.prefix, got, tt.want)
		}
	}
	tg := kvTarget{mountPath: "aks/", partial: "aks/x", v2: false}
	if got := tg.api("data"); got != "aks/x" {
		t.Errorf("v1 api path = %q", got)
	}
}
