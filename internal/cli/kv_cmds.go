package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/vault/api"
)

// kvCommands returns the `kv` commands. Each detects the engine version of
// the mount with GET sys/internal/ui/mounts/<path>, so the same command
// works on KV v1 and v2 mounts; on v2 the data/, metadata/, delete/,
// undelete/ or destroy/ segment is inserted after the mount path.
func kvCommands() []*Command {
	return []*Command{
		{Name: "kv put", Synopsis: "Sets or updates data in the KV store", Run: runKVPut},
		{Name: "kv get", Synopsis: "Retrieves data from the KV store", Run: runKVGet},
		{Name: "kv list", Synopsis: "List data or secrets", Run: runKVList},
		{Name: "kv delete", Synopsis: "Deletes versions in the KV store", Run: runKVDelete},
		{Name: "kv undelete", Synopsis: "Undeletes versions in the KV store", Run: runKVUndelete},
		{Name: "kv destroy", Synopsis: "Permanently removes one or more versions in the KV store", Run: runKVDestroy},
		{Name: "kv patch", Synopsis: "Sets or updates data in the KV store without overwriting", Run: runKVPatch},
		{Name: "kv rollback", Synopsis: "Rolls back to a previous version of data", Run: runKVRollback},
		{Name: "kv enable-versioning", Synopsis: "Turns on versioning for a KV store", Run: runKVEnableVersioning},
		{Name: "kv metadata get", Synopsis: "Retrieves key metadata from the KV store", Run: runKVMetadataGet},
		{Name: "kv metadata put", Synopsis: "Sets or updates key settings in the KV store", Run: runKVMetadataPut},
		{Name: "kv metadata delete", Synopsis: "Deletes all versions and metadata for a key in the KV store", Run: runKVMetadataDelete},
	}
}

// kvPreflight asks the server which mount serves p and its KV version.
// A 404 means a server without the endpoint: version 1.
func kvPreflight(ctx context.Context, client *api.Client, p string) (mountPath string, version int, err error) {
	resp, err := client.Logical().ReadRawWithContext(ctx, "sys/internal/ui/mounts/"+p)
	if resp != nil {
		defer func() { _ = resp.Body.Close() }()
	}
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return "", 1, nil
		}
		return "", 0, err
	}
	secret, err := api.ParseSecret(resp.Body)
	if err != nil {
		return "", 0, err
	}
	if secret == nil {
		return "", 0, fmt.Errorf("nil response from pre-flight request")
	}
	if mp, ok := secret.Data["path"].(string); ok {
		mountPath = mp
	}
	opts, _ := secret.Data["options"].(map[string]any)
	if v, _ := opts["version"].(string); v == "2" {
		return mountPath, 2, nil
	}
	return mountPath, 1, nil
}

// addPrefixToKVPath inserts apiPrefix after mountPath in p:
// ("aks/mysecret", "aks/", "data") → "aks/data/mysecret".
func addPrefixToKVPath(p, mountPath, apiPrefix string) string {
	if p == mountPath || p == strings.TrimSuffix(mountPath, "/") {
		return path.Join(mountPath, apiPrefix)
	}
	return path.Join(mountPath, apiPrefix, strings.TrimPrefix(p, mountPath))
}

// kvTarget is a kv command's resolved path.
type kvTarget struct {
	// mountPath is the mount ("aks/"), "" if the server did not say.
	mountPath string
	// partial is the secret path including the mount ("aks/mysecret").
	partial string
	v2      bool
}

// api returns the request path for prefix on v2 ("aks/data/mysecret") or
// the plain path on v1.
func (t kvTarget) api(prefix string) string {
	if !t.v2 {
		return t.partial
	}
	return addPrefixToKVPath(t.partial, t.mountPath, prefix)
}

// kvMeta is the shared state of kv commands: flags, -mount and the client.
type kvMeta struct {
	*vaultMeta
	mount string
}

func newKVMeta(env *Env, name string) *kvMeta {
	m := &kvMeta{vaultMeta: newVaultMeta(env, name)}
	m.interleaved = true
	m.fs.StringVar(&m.mount, "mount", "", "Mount path of the KV engine; the argument is then the secret path.")
	return m
}

// resolve runs the preflight for arg (and -mount) and returns the target.
// It reports errors itself.
func (m *kvMeta) resolve(ctx context.Context, client *api.Client, arg string) (kvTarget, bool) {
	var t kvTarget
	probe := sanitizePath(arg)
	if m.mount != "" {
		probe = sanitizePath(m.mount)
	}
	mountPath, version, err := kvPreflight(ctx, client, probe)
	if err != nil {
		m.errorf("%s", err)
		return t, false
	}
	t.mountPath, t.v2 = mountPath, version == 2
	t.partial = sanitizePath(arg)
	if m.mount != "" {
		base := mountPath
		if base == "" {
			base = sanitizePath(m.mount)
		}
		t.partial = path.Join(base, sanitizePath(arg))
		if t.mountPath == "" {
			t.mountPath = ensureTrailingSlash(base)
		}
	}
	return t, true
}

// connect builds the client and resolves the secret path arg. When
// v2Feature is not "", the mount must be KV v2: on v1 it reports
// "<v2Feature> not supported on KV Version 1". ok is false when the caller
// must return code; the problem is already reported.
func (m *kvMeta) connect(ctx context.Context, arg, v2Feature string) (client *api.Client, t kvTarget, code int, ok bool) {
	if client, ok = m.client(); !ok {
		return nil, t, exitRemote, false
	}
	if t, ok = m.resolve(ctx, client, arg); !ok {
		return nil, t, exitRemote, false
	}
	if v2Feature != "" && !t.v2 {
		m.errorf("%s not supported on KV Version 1", v2Feature)
		return nil, t, exitLocal, false
	}
	return client, t, exitOK, true
}

// open is the opening of the kv commands that take exactly one secret
// path: parse args, then connect (see there for v2Feature).
func (m *kvMeta) open(ctx context.Context, args []string, v2Feature string) (*api.Client, kvTarget, int, bool) {
	rest, code, ok := m.parseArgs(args, 1, 1)
	if !ok {
		return nil, kvTarget{}, code, false
	}
	return m.connect(ctx, rest[0], v2Feature)
}

// needData checks that a secret path and K=V data follow the flags of
// put and patch, and reports what is missing.
func (m *kvMeta) needData(rest []string) bool {
	switch {
	case len(rest) < 1:
		m.errorf("Not enough arguments (expected >1, got %d)", len(rest))
		return false
	case len(rest) == 1:
		m.errorf("Must supply data")
		return false
	}
	return true
}

// casOptions returns the options of a v2 data write: "cas" when the -cas
// flag is set (> -1).
func casOptions(cas int) map[string]any {
	opts := map[string]any{}
	if cas > -1 {
		opts["cas"] = cas
	}
	return opts
}

// versionsFlag collects -versions values ("1,2" or repeated).
func versionsFlag(f stringSliceFlag) []string { return []string(f) }

// printKVWrite prints the outcome of a v2 data write (put, patch, rollback).
func (m *kvMeta) printKVWrite(fullPath string, secret *api.Secret) int {
	if secret == nil || m.field != "" || (secret.WrapInfo != nil && secret.WrapInfo.TTL != 0) || !m.tableFormat() {
		return m.printWritten(fullPath, secret)
	}
	m.printWarnings(secret)
	m.outputPath(fullPath, "Secret Path")
	m.output(headerForMap("Metadata", secret.Data))
	return m.outputData(secret.Data)
}

func runKVPut(ctx context.Context, env *Env, args []string) int {
	m := newKVMeta(env, "kv put")
	m.addFieldFlag()
	var cas int
	m.fs.IntVar(&cas, "cas", -1, "Check-and-set version; 0 writes only if the key does not exist.")
	rest, code, ok := m.parse(args)
	if !ok {
		return code
	}
	if !m.needData(rest) {
		return exitLocal
	}
	data, ok := m.argsData(rest[1:])
	if !ok {
		return exitLocal
	}
	client, t, code, ok := m.connect(ctx, rest[0], "")
	if !ok {
		return code
	}
	fullPath := t.api("data")
	body := data
	if t.v2 {
		body = map[string]any{"data": data, "options": casOptions(cas)}
	}
	secret, err := client.Logical().WriteWithContext(ctx, fullPath, body)
	if err != nil {
		return m.remoteErrorf(secret, "Error writing data to %s: %s", fullPath, err)
	}
	return m.printKVWrite(fullPath, secret)
}

func runKVGet(ctx context.Context, env *Env, args []string) int {
	m := newKVMeta(env, "kv get")
	m.addFieldFlag()
	var version int
	m.fs.IntVar(&version, "version", 0, "Version to read; the latest when 0.")
	client, t, code, ok := m.open(ctx, args, "")
	if !ok {
		return code
	}
	fullPath := t.api("data")
	var query map[string][]string
	if t.v2 && version > 0 {
		query = map[string][]string{"version": {strconv.Itoa(version)}}
	}
	secret, ok := m.readSecret(ctx, client, fullPath, query)
	if !ok {
		return exitRemote
	}
	if m.field != "" {
		if !t.v2 {
			return m.printField(secret, m.field)
		}
		data, ok := secret.Data["data"].(map[string]any)
		if !ok || data == nil {
			m.errorf("No data found at %s", fullPath)
			return exitRemote
		}
		if m.field == "data" {
			if _, inner := data["data"]; inner {
				return m.printField(data, m.field)
			}
			return m.printField(secret, m.field)
		}
		return m.printField(data, m.field)
	}
	if secret.WrapInfo != nil || !m.tableFormat() {
		return m.outputSecret(secret)
	}
	m.printWarnings(secret)
	if t.v2 {
		m.outputPath(fullPath, "Secret Path")
	}
	if md, ok := secret.Data["metadata"].(map[string]any); ok && md != nil {
		m.output(headerForMap("Metadata", md))
		m.outputData(md)
		m.output("")
	}
	data := secret.Data
	if t.v2 {
		data, _ = secret.Data["data"].(map[string]any)
	}
	if data != nil {
		m.output(headerForMap("Data", data))
		m.outputData(data)
	}
	return exitOK
}

func runKVList(ctx context.Context, env *Env, args []string) int {
	m := newKVMeta(env, "kv list")
	rest, code, ok := m.parse(args)
	if !ok {
		return code
	}
	if m.mount == "" && !m.argCount(rest, 1, 1) {
		return exitLocal
	}
	if m.mount != "" && !m.argCount(rest, 0, 1) {
		return exitLocal
	}
	arg := ""
	if len(rest) == 1 {
		arg = rest[0]
	}
	client, t, code, ok := m.connect(ctx, arg, "")
	if !ok {
		return code
	}
	fullPath := ensureTrailingSlash(t.api("metadata"))
	secret, err := client.Logical().ListWithContext(ctx, fullPath)
	if err != nil {
		m.errorf("Error listing %s: %s", fullPath, err)
		return exitRemote
	}
	return m.outputListSecret(secret, fullPath)
}

func runKVDelete(ctx context.Context, env *Env, args []string) int {
	m := newKVMeta(env, "kv delete")
	var versions stringSliceFlag
	m.fs.Var(&versions, "versions", "Versions to delete (v2); the latest when empty.")
	client, t, code, ok := m.open(ctx, args, "")
	if !ok {
		return code
	}
	var fullPath string
	var secret *api.Secret
	var err error
	switch {
	case t.v2 && len(versions) > 0:
		fullPath = t.api("delete")
		secret, err = client.Logical().WriteWithContext(ctx, fullPath, map[string]any{"versions": versionsFlag(versions)})
	default:
		fullPath = t.api("data")
		secret, err = client.Logical().DeleteWithContext(ctx, fullPath)
	}
	if err != nil {
		return m.remoteErrorf(secret, "Error deleting %s: %s", fullPath, err)
	}
	return m.printDeleted(fullPath)
}

// runKVVersionsOp implements undelete and destroy: POST <prefix>/<path>
// {"versions": [...]} on a v2 mount.
func runKVVersionsOp(ctx context.Context, env *Env, args []string, name, prefix, verb string) int {
	m := newKVMeta(env, "kv "+name)
	var versions stringSliceFlag
	m.fs.Var(&versions, "versions", "Versions to "+name+"; required.")
	rest, code, ok := m.parse(args)
	if !ok {
		return code
	}
	if len(versions) == 0 {
		m.errorf("No versions provided, use the \"-versions\" flag to specify the version to %s.", name)
		return exitLocal
	}
	if !m.argCount(rest, 1, 1) {
		return exitLocal
	}
	client, t, code, ok := m.connect(ctx, rest[0], verb)
	if !ok {
		return code
	}
	return m.write(ctx, client, t.api(prefix), map[string]any{"versions": versionsFlag(versions)})
}

func runKVUndelete(ctx context.Context, env *Env, args []string) int {
	return runKVVersionsOp(ctx, env, args, "undelete", "undelete", "Undelete")
}

func runKVDestroy(ctx context.Context, env *Env, args []string) int {
	return runKVVersionsOp(ctx, env, args, "destroy", "destroy", "Destroy")
}

func runKVPatch(ctx context.Context, env *Env, args []string) int {
	m := newKVMeta(env, "kv patch")
	m.addFieldFlag()
	var cas int
	var method string
	m.fs.IntVar(&cas, "cas", -1, "Check-and-set version.")
	m.fs.StringVar(&method, "method", "", "Patch method: patch (HTTP PATCH) or rw (read then write).")
	rest, code, ok := m.parse(args)
	if !ok {
		return code
	}
	if !m.needData(rest) {
		return exitLocal
	}
	if method != "" && method != "patch" && method != "rw" {
		m.errorf("Unsupported method provided to -method flag: %s", method)
		return exitLocal
	}
	data, ok := m.argsData(rest[1:])
	if !ok {
		return exitLocal
	}
	client, t, code, ok := m.connect(ctx, rest[0], "")
	if !ok {
		return code
	}
	if !t.v2 {
		m.errorf("K/V engine mount must be version 2 for patch support")
		return exitRemote
	}
	fullPath := t.api("data")
	if method == "rw" {
		return m.patchReadWrite(ctx, client, fullPath, data, cas)
	}
	secret, err := client.Logical().JSONMergePatch(ctx, fullPath, map[string]any{"data": data, "options": casOptions(cas)})
	if err != nil {
		switch responseStatus(err) {
		case http.StatusMethodNotAllowed:
			m.errorf("Server rejected patch request: %s", err)
			return exitRemote
		case http.StatusForbidden:
			if method == "" {
				return m.patchReadWrite(ctx, client, fullPath, data, cas)
			}
		}
		m.errorf("Error writing data to %s: %s", fullPath, err)
		return exitRemote
	}
	return m.printKVWrite(fullPath, secret)
}

// patchReadWrite patches by reading the latest version, merging and writing
// it back with check-and-set on the version read.
func (m *kvMeta) patchReadWrite(ctx context.Context, client *api.Client, fullPath string, patch map[string]any, cas int) int {
	secret, err := client.Logical().ReadWithContext(ctx, fullPath)
	if err != nil {
		m.errorf("Error doing pre-read at %s: %s", fullPath, err)
		return exitRemote
	}
	if secret == nil {
		m.errorf("No value found at %s", fullPath)
		return exitRemote
	}
	data, ok := secret.Data["data"].(map[string]any)
	if !ok || data == nil {
		m.errorf("No data found at %s; the secret may be deleted or destroyed", fullPath)
		return exitRemote
	}
	md, _ := secret.Data["metadata"].(map[string]any)
	version, err := jsonInt(md["version"])
	if err != nil {
		m.errorf("Unable to determine the version of %s: %s", fullPath, err)
		return exitRemote
	}
	if cas > -1 {
		version = cas
	}
	merged := maps.Clone(data)
	maps.Copy(merged, patch)
	out, err := client.Logical().WriteWithContext(ctx, fullPath, map[string]any{
		"data": merged, "options": map[string]any{"cas": version},
	})
	if err != nil {
		m.errorf("Error writing data to %s: %s", fullPath, err)
		return exitRemote
	}
	return m.printKVWrite(fullPath, out)
}

// jsonInt converts a decoded JSON number.
func jsonInt(v any) (int, error) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return int(i), err
	case float64:
		return int(n), nil
	case int:
		return n, nil
	}
	return 0, fmt.Errorf("not a number: %v", v)
}

func runKVRollback(ctx context.Context, env *Env, args []string) int {
	m := newKVMeta(env, "kv rollback")
	var version optionalInt
	m.fs.Var(&version, "version", "Version to roll back to; required.")
	rest, code, ok := m.parseArgs(args, 1, 1)
	if !ok {
		return code
	}
	if !version.set || version.v <= 0 {
		m.errorf("Must specify a positive -version to roll back to")
		return exitLocal
	}
	client, t, code, ok := m.connect(ctx, rest[0], "Rollback")
	if !ok {
		return code
	}
	metaPath := t.api("metadata")
	meta, ok := m.readSecret(ctx, client, metaPath, nil)
	if !ok {
		return exitRemote
	}
	current, err := jsonInt(meta.Data["current_version"])
	if err != nil {
		m.errorf("Failed to parse current_version of %s: %s", metaPath, err)
		return exitRemote
	}
	versions, _ := meta.Data["versions"].(map[string]any)
	vinfo, ok := versions[strconv.Itoa(version.v)].(map[string]any)
	switch {
	case !ok:
		m.errorf("Cannot roll back to a version that does not exist")
		return exitLocal
	case vinfo["destroyed"] == true:
		m.errorf("Cannot roll back to a version that has been destroyed")
		return exitLocal
	case vinfo["deletion_time"] != nil && vinfo["deletion_time"] != "":
		m.errorf("Cannot roll back to a version that has been deleted")
		return exitLocal
	case version.v == current:
		m.errorf("Cannot roll back to the current version")
		return exitLocal
	}
	fullPath := t.api("data")
	old, err := client.Logical().ReadWithDataWithContext(ctx, fullPath, map[string][]string{"version": {strconv.Itoa(version.v)}})
	if err != nil {
		m.errorf("Error reading %s: %s", fullPath, err)
		return exitRemote
	}
	var data map[string]any
	if old != nil {
		data, _ = old.Data["data"].(map[string]any)
	}
	if data == nil {
		m.errorf("No data found at version %d of %s", version.v, fullPath)
		return exitRemote
	}
	secret, err := client.Logical().WriteWithContext(ctx, fullPath, map[string]any{
		"data": data, "options": map[string]any{"cas": current},
	})
	if err != nil {
		m.errorf("Error writing data to %s: %s", fullPath, err)
		return exitRemote
	}
	return m.printKVWrite(fullPath, secret)
}

func runKVEnableVersioning(ctx context.Context, env *Env, args []string) int {
	m := newVaultMeta(env, "kv enable-versioning")
	rest, client, code, ok := m.start(args, 1, 1)
	if !ok {
		return code
	}
	p := sanitizePath(rest[0])
	opts := map[string]string{"version": "2"}
	return tuneMount(ctx, m, client, p, api.TuneMountConfigInput{Options: &opts})
}

func runKVMetadataGet(ctx context.Context, env *Env, args []string) int {
	m := newKVMeta(env, "kv metadata get")
	m.addFieldFlag()
	client, t, code, ok := m.open(ctx, args, "Metadata")
	if !ok {
		return code
	}
	fullPath := t.api("metadata")
	secret, ok := m.readSecret(ctx, client, fullPath, nil)
	if !ok {
		return exitRemote
	}
	if m.field != "" {
		return m.printField(secret.Data, m.field)
	}
	if !m.tableFormat() {
		return m.outputSecret(secret)
	}
	versions, ok := secret.Data["versions"].(map[string]any)
	if !ok {
		m.errorf("No value found at %s", fullPath)
		m.outputSecret(secret)
		return exitRemote
	}
	rest2 := maps.Clone(secret.Data)
	delete(rest2, "versions")
	shown := *secret
	shown.Data = rest2
	m.outputPath(fullPath, "Metadata Path")
	m.output(headerForMap("Metadata", rest2))
	m.outputSecret(&shown)
	nums := make([]int, 0, len(versions))
	for k := range versions {
		if n, err := strconv.Atoi(k); err == nil {
			nums = append(nums, n)
		}
	}
	sort.Ints(nums)
	for _, n := range nums {
		v, _ := versions[strconv.Itoa(n)].(map[string]any)
		m.output("\n" + headerForMap(fmt.Sprintf("Version %d", n), v))
		m.outputData(v)
	}
	return exitOK
}

func runKVMetadataPut(ctx context.Context, env *Env, args []string) int {
	m := newKVMeta(env, "kv metadata put")
	var maxVersions optionalInt
	var casRequired optionalBool
	var deleteAfter durationFlag
	custom := mapFlag{}
	m.fs.Var(&maxVersions, "max-versions", "Number of versions to keep; 0 means the mount default.")
	m.fs.Var(&casRequired, "cas-required", "Require check-and-set on writes.")
	m.fs.Var(&deleteAfter, "delete-version-after", "Delete versions after this long.")
	m.fs.Var(custom, "custom-metadata", "Key=value custom metadata; repeatable.")
	client, t, code, ok := m.open(ctx, args, "Metadata")
	if !ok {
		return code
	}
	fullPath := t.api("metadata")
	data := map[string]any{}
	if maxVersions.set {
		data["max_versions"] = maxVersions.v
	}
	if casRequired.set {
		data["cas_required"] = casRequired.v
	}
	if deleteAfter.set {
		data["delete_version_after"] = deleteAfter.d.String()
	}
	if len(custom) > 0 {
		data["custom_metadata"] = map[string]string(custom)
	}
	return m.write(ctx, client, fullPath, data)
}

func runKVMetadataDelete(ctx context.Context, env *Env, args []string) int {
	m := newKVMeta(env, "kv metadata delete")
	client, t, code, ok := m.open(ctx, args, "Metadata")
	if !ok {
		return code
	}
	fullPath := t.api("metadata")
	if _, err := client.Logical().DeleteWithContext(ctx, fullPath); err != nil {
		m.errorf("Error deleting %s: %s", fullPath, err)
		return exitRemote
	}
	return m.printDeleted(fullPath)
}
