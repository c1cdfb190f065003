package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// vaultCommands returns the client commands with the vault CLI's syntax:
// operator, status, login, token, policy, auth, secrets and the generic
// read/write/list/delete.
func vaultCommands() []*Command {
	return []*Command{
		{Name: "operator init", Synopsis: "Initializes a server", Run: runOperatorInit},
		{Name: "operator unseal", Synopsis: "Unseals the server", Run: runOperatorUnseal},
		{Name: "operator seal", Synopsis: "Seals the server", Run: runOperatorSeal},
		{Name: "status", Synopsis: "Prints seal and HA status", Run: runStatus},
		{Name: "login", Synopsis: "Authenticate locally", Run: runLogin},
		{Name: "token create", Synopsis: "Create a new token", Run: runTokenCreate},
		{Name: "token lookup", Synopsis: "Display information about a token", Run: runTokenLookup},
		{Name: "token renew", Synopsis: "Renew a token lease", Run: runTokenRenew},
		{Name: "token revoke", Synopsis: "Revoke a token and its children", Run: runTokenRevoke},
		{Name: "policy write", Synopsis: "Uploads a named policy from a file", Run: runPolicyWrite},
		{Name: "policy read", Synopsis: "Prints the contents of a policy", Run: runPolicyRead},
		{Name: "policy list", Synopsis: "Lists the installed policies", Run: runPolicyList},
		{Name: "policy delete", Synopsis: "Deletes a policy by name", Run: runPolicyDelete},
		{Name: "auth enable", Synopsis: "Enables a new auth method", Run: runAuthEnable},
		{Name: "auth disable", Synopsis: "Disables an auth method", Run: runAuthDisable},
		{Name: "auth list", Synopsis: "Lists enabled auth methods", Run: runAuthList},
		{Name: "secrets enable", Synopsis: "Enable a secrets engine", Run: runSecretsEnable},
		{Name: "secrets disable", Synopsis: "Disable a secrets engine", Run: runSecretsDisable},
		{Name: "secrets list", Synopsis: "List enabled secrets engines", Run: runSecretsList},
		{Name: "secrets tune", Synopsis: "Tune a secrets engine configuration", Run: runSecretsTune},
		{Name: "read", Synopsis: "Read data and retrieves secrets", Run: runRead},
		{Name: "write", Synopsis: "Write data, configuration, and secrets", Run: runWrite},
		{Name: "list", Synopsis: "List data or secrets", Run: runList},
		{Name: "delete", Synopsis: "Delete secrets and configuration", Run: runDelete},
	}
}

// ---- operator ------------------------------------------------------------

// initOutput is the json/yaml form of `operator init`.
type initOutput struct {
	UnsealKeysB64     []string `json:"unseal_keys_b64"`
	UnsealKeysHex     []string `json:"unseal_keys_hex"`
	UnsealShares      int      `json:"unseal_shares"`
	UnsealThreshold   int      `json:"unseal_threshold"`
	RecoveryKeysB64   []string `json:"recovery_keys_b64"`
	RecoveryKeysHex   []string `json:"recovery_keys_hex"`
	RecoveryShares    int      `json:"recovery_keys_shares"`
	RecoveryThreshold int      `json:"recovery_keys_threshold"`
	RootToken         string   `json:"root_token"`
}

func newInitOutput(req *api.InitRequest, resp *api.InitResponse) *initOutput {
	out := &initOutput{
		UnsealKeysB64:     append(make([]string, 0, len(resp.KeysB64)), resp.KeysB64...),
		UnsealKeysHex:     append(make([]string, 0, len(resp.Keys)), resp.Keys...),
		UnsealShares:      req.SecretShares,
		UnsealThreshold:   req.SecretThreshold,
		RecoveryKeysB64:   append(make([]string, 0, len(resp.RecoveryKeysB64)), resp.RecoveryKeysB64...),
		RecoveryKeysHex:   append(make([]string, 0, len(resp.RecoveryKeys)), resp.RecoveryKeys...),
		RecoveryShares:    req.RecoveryShares,
		RecoveryThreshold: req.RecoveryThreshold,
		RootToken:         resp.RootToken,
	}
	if len(resp.Keys) == 0 {
		out.UnsealShares, out.UnsealThreshold = 1, 1
	}
	return out
}

func runOperatorInit(ctx context.Context, env *Env, args []string) int {
	m := newVaultMeta(env, "operator init")
	var shares, threshold int
	var status bool
	m.fs.IntVar(&shares, "key-shares", 5, "Number of key shares to split the root key into.")
	m.fs.IntVar(&shares, "n", 5, "Alias of -key-shares.")
	m.fs.IntVar(&threshold, "key-threshold", 3, "Number of key shares required to reconstruct the root key.")
	m.fs.IntVar(&threshold, "t", 3, "Alias of -key-threshold.")
	m.fs.BoolVar(&status, "status", false, "Print the initialization status; exit 0 if initialized, 2 if not.")
	_, client, code, ok := m.start(args, 0, 0)
	if !ok {
		return code
	}
	if status {
		inited, err := client.Sys().InitStatusWithContext(ctx)
		if err != nil {
			m.errorf("Error checking init status: %s", err)
			return exitLocal
		}
		code := exitOK
		if !inited {
			code = exitRemote
		}
		if m.tableFormat() {
			if inited {
				m.output("Vault is initialized")
			} else {
				m.output("Vault is not initialized")
			}
			return code
		}
		if c := m.outputData(api.InitStatusResponse{Initialized: inited}); c != exitOK {
			return c
		}
		return code
	}
	req := &api.InitRequest{SecretShares: shares, SecretThreshold: threshold}
	resp, err := client.Sys().InitWithContext(ctx, req)
	if err != nil {
		m.errorf("Error initializing: %s", err)
		return exitRemote
	}
	if !m.tableFormat() {
		return m.outputData(newInitOutput(req, resp))
	}
	for i, key := range resp.Keys {
		if len(resp.KeysB64) == len(resp.Keys) {
			key = resp.KeysB64[i]
		}
		m.output(fmt.Sprintf("Unseal Key %d: %s", i+1, key))
	}
	m.output("")
	m.output("Initial Root Token: " + resp.RootToken)
	if len(resp.Keys) == 0 {
		m.output("")
		m.output("Success! Vault is initialized")
		return exitOK
	}
	m.output("")
	m.output(wrapAtLength(fmt.Sprintf("Vault initialized with %d key shares and a key threshold of %d. "+
		"Please securely distribute the key shares printed above. When the Vault is re-sealed, "+
		"restarted, or stopped, you must supply at least %d of these keys to unseal it before it "+
		"can start servicing requests.", req.SecretShares, req.SecretThreshold, req.SecretThreshold), 0))
	m.output("")
	m.output(wrapAtLength(fmt.Sprintf("Vault does not store the generated root key. Without at least %d "+
		"keys to reconstruct the root key, Vault will remain permanently sealed!", req.SecretThreshold), 0))
	m.output("")
	m.output(wrapAtLength("It is possible to generate new unseal keys, provided you have a quorum of "+
		"existing unseal keys shares. See \"vault operator rekey\" for more information.", 0))
	return exitOK
}

func runOperatorUnseal(ctx context.Context, env *Env, args []string) int {
	m := newVaultMeta(env, "operator unseal")
	var reset bool
	m.fs.BoolVar(&reset, "reset", false, "Discard any previously entered keys to the unseal process.")
	rest, client, code, ok := m.start(args, 0, 1)
	if !ok {
		return code
	}
	if reset {
		status, err := client.Sys().ResetUnsealProcessWithContext(ctx)
		if err != nil {
			m.errorf("Error resetting unseal process: %s", err)
			return exitRemote
		}
		return m.outputSealStatus(ctx, client, status)
	}
	key := ""
	if len(rest) == 1 {
		key = strings.TrimSpace(rest[0])
	}
	if key == "" {
		v, err := promptSecret(env, "Unseal Key (will be hidden): ")
		if err != nil {
			m.errorf("%s", wrapAtLength("An error occurred attempting to ask for an unseal key. "+
				"The unseal key can be provided as the first argument to the unseal command. "+
				"The raw error was: "+err.Error(), 0))
			return exitLocal
		}
		key = v
	}
	status, err := client.Sys().UnsealWithContext(ctx, key)
	if err != nil {
		m.errorf("Error unsealing: %s", err)
		return exitRemote
	}
	return m.outputSealStatus(ctx, client, status)
}

func runOperatorSeal(ctx context.Context, env *Env, args []string) int {
	m := newVaultMeta(env, "operator seal")
	_, client, code, ok := m.start(args, 0, 0)
	if !ok {
		return code
	}
	if err := client.Sys().SealWithContext(ctx); err != nil {
		m.errorf("Error sealing: %s", err)
		return exitRemote
	}
	m.output("Success! Vault is sealed.")
	return exitOK
}

// sealStatusOutput is the seal status plus the leader fields, as printed
// by `status` and `operator unseal`.
type sealStatusOutput struct {
	api.SealStatusResponse
	HAEnabled                bool      `json:"ha_enabled"`
	IsSelf                   bool      `json:"is_self,omitempty"`
	ActiveTime               time.Time `json:"active_time,omitempty"`
	LeaderAddress            string    `json:"leader_address,omitempty"`
	LeaderClusterAddress     string    `json:"leader_cluster_address,omitempty"`
	PerfStandby              bool      `json:"performance_standby,omitempty"`
	PerfStandbyLastRemoteWAL uint64    `json:"performance_standby_last_remote_wal,omitempty"`
	LastWAL                  uint64    `json:"last_wal,omitempty"`
	RaftCommittedIndex       uint64    `json:"raft_committed_index,omitempty"`
	RaftAppliedIndex         uint64    `json:"raft_applied_index,omitempty"`
}

// sealStatusRows returns the "Key | Value" rows of the status table.
func sealStatusRows(s sealStatusOutput) []string {
	prefix := ""
	if s.RecoverySeal {
		prefix = "Recovery "
	}
	out := []string{
		"Key | Value",
		fmt.Sprintf("%sSeal Type | %s", prefix, s.Type),
		fmt.Sprintf("Initialized | %t", s.Initialized),
		fmt.Sprintf("Sealed | %t", s.Sealed),
		fmt.Sprintf("Total %sShares | %d", prefix, s.N),
		fmt.Sprintf("Threshold | %d", s.T),
	}
	if s.Sealed {
		out = append(out,
			fmt.Sprintf("Unseal Progress | %d/%d", s.Progress, s.T),
			fmt.Sprintf("Unseal Nonce | %s", s.Nonce))
	}
	if s.Migration {
		out = append(out, fmt.Sprintf("Seal Migration in Progress | %t", s.Migration))
	}
	out = append(out,
		fmt.Sprintf("Version | %s", s.Version),
		fmt.Sprintf("Build Date | %s", s.BuildDate),
		fmt.Sprintf("Storage Type | %s", s.StorageType))
	if s.ClusterName != "" && s.ClusterID != "" {
		out = append(out,
			fmt.Sprintf("Cluster Name | %s", s.ClusterName),
			fmt.Sprintf("Cluster ID | %s", s.ClusterID))
	}
	out = append(out, fmt.Sprintf("HA Enabled | %t", s.HAEnabled))
	if s.HAEnabled && !s.Sealed {
		out = append(out, fmt.Sprintf("HA Cluster | %s", s.LeaderClusterAddress))
		mode := "standby"
		if s.IsSelf {
			mode = "active"
		}
		out = append(out, fmt.Sprintf("HA Mode | %s", mode))
		if s.IsSelf && !s.ActiveTime.IsZero() {
			out = append(out, fmt.Sprintf("Active Since | %s", s.ActiveTime.Format(time.RFC3339Nano)))
		}
		if !s.IsSelf {
			addr := s.LeaderAddress
			if addr == "" {
				addr = "<none>"
			}
			out = append(out, fmt.Sprintf("Active Node Address | %s", addr))
		}
	}
	if s.RaftCommittedIndex > 0 {
		out = append(out, fmt.Sprintf("Raft Committed Index | %d", s.RaftCommittedIndex))
	}
	if s.RaftAppliedIndex > 0 {
		out = append(out, fmt.Sprintf("Raft Applied Index | %d", s.RaftAppliedIndex))
	}
	if s.LastWAL != 0 {
		out = append(out, fmt.Sprintf("Last WAL | %d", s.LastWAL))
	}
	if len(s.Warnings) > 0 {
		out = append(out, fmt.Sprintf("Warnings | %v", s.Warnings))
	}
	return out
}

// outputSealStatus prints status combined with sys/leader.
func (m *vaultMeta) outputSealStatus(ctx context.Context, client *api.Client, status *api.SealStatusResponse) int {
	out := sealStatusOutput{SealStatusResponse: *status}
	leader, err := client.Sys().LeaderWithContext(ctx)
	switch {
	case responseStatus(err) == http.StatusServiceUnavailable:
		// A sealed HA node cannot name its leader.
		leader = &api.LeaderResponse{HAEnabled: true}
	case err != nil:
		m.errorf("Error checking leader status: %s", err)
		return exitLocal
	}
	out.HAEnabled = leader.HAEnabled
	out.IsSelf = leader.IsSelf
	out.ActiveTime = leader.ActiveTime
	out.LeaderAddress = leader.LeaderAddress
	out.LeaderClusterAddress = leader.LeaderClusterAddress
	out.PerfStandby = leader.PerfStandby
	out.PerfStandbyLastRemoteWAL = leader.PerfStandbyLastRemoteWAL
	out.LastWAL = leader.LastWAL
	out.RaftCommittedIndex = leader.RaftCommittedIndex
	out.RaftAppliedIndex = leader.RaftAppliedIndex
	if !m.tableFormat() {
		return m.outputData(out)
	}
	m.output(tableOutput(sealStatusRows(out), "|"))
	return exitOK
}

func runStatus(ctx context.Context, env *Env, args []string) int {
	m := newVaultMeta(env, "status")
	_, code, ok := m.parseArgs(args, 0, 0)
	if !ok {
		return code
	}
	client, ok := m.client()
	if !ok {
		return exitLocal
	}
	status, err := client.Sys().SealStatusWithContext(ctx)
	if err != nil {
		m.errorf("Error checking seal status: %s", err)
		return exitLocal
	}
	code = m.outputSealStatus(ctx, client, status)
	if status.Sealed {
		return exitRemote
	}
	return code
}

// ---- login and tokens ----------------------------------------------------

func runLogin(ctx context.Context, env *Env, args []string) int {
	m := newVaultMeta(env, "login")
	m.addFieldFlag()
	var method, path string
	var noStore, tokenOnly, noPrint bool
	m.fs.StringVar(&method, "method", "token", "Type of authentication to use (token).")
	m.fs.StringVar(&path, "path", "", "Remote path of the auth method.")
	m.fs.BoolVar(&noStore, "no-store", false, "Do not persist the token to the token helper.")
	m.fs.BoolVar(&tokenOnly, "token-only", false, "Output only the token; implies -no-store.")
	m.fs.BoolVar(&noPrint, "no-print", false, "Do not display the token.")
	rest, code, ok := m.parse(args)
	if !ok {
		return code
	}
	if tokenOnly {
		noStore = true
	}
	if strings.TrimSpace(method) != "token" {
		m.errorf("%s", wrapAtLength(fmt.Sprintf("Unknown auth method: %s. Use \"vault auth list\" to see the "+
			"complete list of auth methods. Additionally, some auth methods are only available via the HTTP API.", method), 0))
		return exitLocal
	}
	if len(rest) > 0 && !strings.Contains(rest[0], "=") {
		rest = append([]string{"token=" + rest[0]}, rest[1:]...)
	}
	cfg, err := parseArgsDataString(env.Stdin, rest)
	if err != nil {
		m.errorf("Error parsing configuration: %s", err)
		return exitLocal
	}
	client, ok := m.client()
	if !ok {
		return exitRemote
	}
	token, ok := cfg["token"]
	if !ok {
		t, perr := promptSecret(env, "Token (will be hidden): ")
		if perr != nil {
			m.errorf("Error authenticating: %s", wrapAtLength("An error occurred attempting to ask for a token. "+
				"If you want to pipe the value, pass \"-\" as the argument to read from stdin. The raw error was: "+perr.Error(), 0))
			return exitRemote
		}
		token = t
	}
	if token == "-" {
		b, rerr := io.ReadAll(env.Stdin)
		if rerr != nil {
			m.errorf("Error authenticating: failed to read from stdin: %s", rerr)
			return exitRemote
		}
		token = string(b)
	}
	token = strings.TrimSpace(token)
	if token == "" {
		m.errorf("Error authenticating: a token must be passed to auth, please view the help for more information")
		return exitRemote
	}
	client.SetToken(token)
	secret, err := client.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		m.errorf("Error authenticating: error looking up token: %s", err)
		return exitRemote
	}
	if secret == nil {
		m.errorf("Error authenticating: empty response from lookup-self")
		return exitRemote
	}
	authSecret, err := tokenLookupToAuth(secret)
	if err != nil {
		m.errorf("Error authenticating: %s", err)
		return exitRemote
	}
	if !noStore {
		if err := storeTokenHelper(env, authSecret.Auth.ClientToken); err != nil {
			m.errorf("Error storing token: %s", err)
			m.errorf("%s\n", wrapAtLength("Authentication was successful, but the token was not persisted. "+
				"The resulting token is shown below for your records.", 0))
			m.outputSecret(authSecret)
			return exitRemote
		}
		if env.Getenv(envVaultToken) != "" {
			m.warn("WARNING! The VAULT_TOKEN environment variable is set! The value of this variable " +
				"will take precedence; if this is unwanted please unset VAULT_TOKEN or update its value accordingly.")
			_, _ = fmt.Fprintln(env.Stderr)
		}
	} else if !tokenOnly {
		m.warn("The token was not stored in token helper. Set the VAULT_TOKEN environment variable " +
			"or pass the token below with each request to Vault.")
		_, _ = fmt.Fprintln(env.Stderr)
	}
	if noPrint {
		return exitOK
	}
	if tokenOnly {
		return m.printField(authSecret, "token")
	}
	if m.field != "" {
		return m.printField(authSecret, m.field)
	}
	if m.tableFormat() {
		m.output(wrapAtLength("Success! You are now authenticated. The token information displayed below "+
			"is already stored in the token helper. You do NOT need to run \"vault login\" again. Future "+
			"Vault requests will automatically use this token.", 0) + "\n")
	}
	return m.outputSecret(authSecret)
}

// tokenLookupToAuth turns a lookup-self response into an auth secret, the
// shape an auth method's login returns.
func tokenLookupToAuth(s *api.Secret) (*api.Secret, error) {
	id, err := s.TokenID()
	if err != nil {
		return nil, err
	}
	accessor, err := s.TokenAccessor()
	if err != nil {
		return nil, err
	}
	policies, err := s.TokenPolicies()
	if err != nil {
		return nil, err
	}
	renewable, err := s.TokenIsRenewable()
	if err != nil {
		return nil, err
	}
	ttl, err := s.TokenTTL()
	if err != nil {
		return nil, err
	}
	meta, err := s.TokenMetadata()
	if err != nil {
		return nil, err
	}
	// TokenPolicies fills s.Auth with the token and identity policies.
	var tokenPolicies, identity []string
	if s.Auth != nil {
		tokenPolicies, identity = s.Auth.TokenPolicies, s.Auth.IdentityPolicies
	}
	return &api.Secret{Auth: &api.SecretAuth{
		ClientToken:      id,
		Accessor:         accessor,
		Policies:         policies,
		TokenPolicies:    tokenPolicies,
		IdentityPolicies: identity,
		Metadata:         meta,
		LeaseDuration:    int(ttl.Seconds()),
		Renewable:        renewable,
	}}, nil
}

func runTokenCreate(ctx context.Context, env *Env, args []string) int {
	m := newVaultMeta(env, "token create")
	m.addFieldFlag()
	var (
		id, displayName, role, tokenType, entityAlias string
		orphan, noDefaultPolicy                       bool
		useLimit                                      int
		ttl, period, explicitMaxTTL                   durationFlag
		renewable                                     = optionalBool{v: true}
		policies                                      stringSliceFlag
		metadata                                      = mapFlag{}
	)
	m.fs.StringVar(&id, "id", "", "Value for the token (root only).")
	m.fs.StringVar(&displayName, "display-name", "", "Name to associate with this token.")
	m.fs.StringVar(&role, "role", "", "Name of the role to create the token against.")
	m.fs.StringVar(&tokenType, "type", "service", "The type of token to create (service or batch).")
	m.fs.StringVar(&entityAlias, "entity-alias", "", "Entity alias to associate with the token.")
	m.fs.BoolVar(&orphan, "orphan", false, "Create the token with no parent.")
	m.fs.BoolVar(&noDefaultPolicy, "no-default-policy", false, "Detach the \"default\" policy.")
	m.fs.IntVar(&useLimit, "use-limit", 0, "Number of times this token can be used.")
	m.fs.Var(&ttl, "ttl", "Initial TTL to associate with the token.")
	m.fs.Var(&period, "period", "Renewal period of a periodic token.")
	m.fs.Var(&explicitMaxTTL, "explicit-max-ttl", "Explicit maximum lifetime of the token.")
	m.fs.Var(&renewable, "renewable", "Allow the token to be renewed (default true).")
	m.fs.Var(&policies, "policy", "Name of a policy to attach; repeatable.")
	m.fs.Var(metadata, "metadata", "Arbitrary key=value metadata; repeatable.")
	_, code, ok := m.parseArgs(args, 0, 0)
	if !ok {
		return code
	}
	if tokenType == "batch" {
		renewable.v = false
	}
	client, ok := m.client()
	if !ok {
		return exitRemote
	}
	r := renewable.v
	req := &api.TokenCreateRequest{
		ID:              id,
		Policies:        policies,
		Metadata:        metadata,
		TTL:             durationString(ttl),
		NoDefaultPolicy: noDefaultPolicy,
		DisplayName:     displayName,
		NumUses:         useLimit,
		Renewable:       &r,
		ExplicitMaxTTL:  durationString(explicitMaxTTL),
		Period:          durationString(period),
		Type:            tokenType,
		EntityAlias:     entityAlias,
	}
	if len(req.Metadata) == 0 {
		req.Metadata = nil
	}
	var secret *api.Secret
	var err error
	switch {
	case orphan:
		secret, err = client.Auth().Token().CreateOrphanWithContext(ctx, req)
	case role != "":
		secret, err = client.Auth().Token().CreateWithRoleWithContext(ctx, req, role)
	default:
		secret, err = client.Auth().Token().CreateWithContext(ctx, req)
	}
	if err != nil {
		m.errorf("Error creating token: %s", err)
		return exitRemote
	}
	if m.field != "" {
		return m.printField(secret, m.field)
	}
	return m.outputSecret(secret)
}

// durationString renders a set duration flag for a request ("" if unset).
func durationString(f durationFlag) string {
	if !f.set {
		return ""
	}
	return f.d.String()
}

func runTokenLookup(ctx context.Context, env *Env, args []string) int {
	m := newVaultMeta(env, "token lookup")
	var accessor bool
	m.fs.BoolVar(&accessor, "accessor", false, "Treat the argument as an accessor.")
	rest, code, ok := m.parse(args)
	if !ok {
		return code
	}
	if accessor && len(rest) == 0 {
		m.errorf("Not enough arguments with -accessor (expected 1, got 0)")
		return exitLocal
	}
	if !m.argCount(rest, 0, 1) {
		return exitLocal
	}
	client, ok := m.client()
	if !ok {
		return exitRemote
	}
	var secret *api.Secret
	var err error
	switch {
	case accessor:
		secret, err = client.Auth().Token().LookupAccessorWithContext(ctx, rest[0])
	case len(rest) == 1:
		secret, err = client.Auth().Token().LookupWithContext(ctx, strings.TrimSpace(rest[0]))
	default:
		secret, err = client.Auth().Token().LookupSelfWithContext(ctx)
	}
	if err != nil {
		m.errorf("Error looking up token: %s", err)
		return exitRemote
	}
	return m.outputSecret(secret)
}

func runTokenRenew(ctx context.Context, env *Env, args []string) int {
	m := newVaultMeta(env, "token renew")
	var increment durationFlag
	var accessor bool
	m.fs.Var(&increment, "increment", "Request a specific increment for renewal.")
	m.fs.Var(&increment, "i", "Alias of -increment.")
	m.fs.BoolVar(&accessor, "accessor", false, "Treat the argument as an accessor.")
	rest, code, ok := m.parseArgs(args, 0, 1)
	if !ok {
		return code
	}
	if accessor && len(rest) == 0 {
		m.errorf("Not enough arguments with -accessor (expected 1, got 0)")
		return exitLocal
	}
	client, ok := m.client()
	if !ok {
		return exitRemote
	}
	inc := int(increment.d.Seconds())
	var secret *api.Secret
	var err error
	switch {
	case accessor:
		secret, err = client.Auth().Token().RenewAccessorWithContext(ctx, rest[0], inc)
	case len(rest) == 1:
		secret, err = client.Auth().Token().RenewWithContext(ctx, strings.TrimSpace(rest[0]), inc)
	default:
		secret, err = client.Auth().Token().RenewSelfWithContext(ctx, inc)
	}
	if err != nil {
		m.errorf("Error renewing token: %s", err)
		return exitRemote
	}
	return m.outputSecret(secret)
}

func runTokenRevoke(ctx context.Context, env *Env, args []string) int {
	m := newVaultMeta(env, "token revoke")
	var self, accessor bool
	var mode string
	m.fs.BoolVar(&self, "self", false, "Revoke the token in use.")
	m.fs.BoolVar(&accessor, "accessor", false, "Treat the argument as an accessor.")
	m.fs.StringVar(&mode, "mode", "", "Revocation mode: \"\" (token and children), orphan or path.")
	rest, code, ok := m.parse(args)
	if !ok {
		return code
	}
	switch {
	case self && len(rest) > 0:
		m.errorf("Too many arguments with -self (expected 0, got %d)", len(rest))
		return exitLocal
	case !self && len(rest) != 1:
		if len(rest) == 0 {
			m.errorf("Not enough arguments (expected 1 or -self)")
		} else {
			m.errorf("Too many arguments (expected 1, got %d)", len(rest))
		}
		return exitLocal
	case self && accessor:
		m.errorf("Cannot use -self with -accessor!")
		return exitLocal
	case accessor && mode == "orphan":
		m.errorf("Cannot use -mode=orphan with -accessor!")
		return exitLocal
	case mode != "" && mode != "orphan" && mode != "path":
		m.errorf("Invalid -mode %q: must be \"orphan\" or \"path\"", mode)
		return exitLocal
	}
	client, ok := m.client()
	if !ok {
		return exitRemote
	}
	t := client.Auth().Token()
	var err error
	switch {
	case self:
		err = t.RevokeSelfWithContext(ctx, "")
	case accessor:
		err = t.RevokeAccessorWithContext(ctx, rest[0])
	case mode == "orphan":
		err = t.RevokeOrphanWithContext(ctx, rest[0])
	default:
		err = t.RevokeTreeWithContext(ctx, rest[0])
	}
	if err != nil {
		m.errorf("Error revoking token: %s", err)
		return exitRemote
	}
	m.output("Success! Revoked token (if it existed)")
	return exitOK
}

// ---- policies ------------------------------------------------------------

func runPolicyWrite(ctx context.Context, env *Env, args []string) int {
	m := newVaultMeta(env, "policy write")
	rest, code, ok := m.parse(args)
	if !ok {
		return code
	}
	// vault requires NAME and PATH; a missing PATH reads stdin, so the
	// tutorial's `policy write aks << EOF` works.
	if !m.argCount(rest, 1, 2) {
		return exitLocal
	}
	name := strings.ToLower(strings.TrimSpace(rest[0]))
	src := "-"
	if len(rest) == 2 {
		src = strings.TrimSpace(rest[1])
	}
	var raw []byte
	var err error
	if src == "-" {
		raw, err = io.ReadAll(env.Stdin)
		if err != nil {
			m.errorf("Failed to read policy from stdin: %s", err)
			return exitLocal
		}
	} else {
		raw, err = os.ReadFile(src)
		if err != nil {
			m.errorf("Error opening policy file: %s", err)
			return exitLocal
		}
	}
	client, ok := m.client()
	if !ok {
		return exitRemote
	}
	if err := client.Sys().PutPolicyWithContext(ctx, name, string(raw)); err != nil {
		m.errorf("Error uploading policy: %s", err)
		return exitRemote
	}
	m.output("Success! Uploaded policy: " + name)
	return exitOK
}

func runPolicyRead(ctx context.Context, env *Env, args []string) int {
	m := newVaultMeta(env, "policy read")
	rest, client, code, ok := m.start(args, 1, 1)
	if !ok {
		return code
	}
	name := strings.ToLower(strings.TrimSpace(rest[0]))
	rules, err := client.Sys().GetPolicyWithContext(ctx, name)
	if err != nil {
		m.errorf("Error reading policy named %s: %s", name, err)
		return exitRemote
	}
	if rules == "" {
		m.errorf("No policy named: %s", name)
		return exitRemote
	}
	if m.tableFormat() {
		m.output(strings.TrimSpace(rules))
		return exitOK
	}
	return m.outputData(map[string]any{"policy": rules})
}

func runPolicyList(ctx context.Context, env *Env, args []string) int {
	m := newVaultMeta(env, "policy list")
	_, client, code, ok := m.start(args, 0, 0)
	if !ok {
		return code
	}
	policies, err := client.Sys().ListPoliciesWithContext(ctx)
	if err != nil {
		m.errorf("Error listing policies: %s", err)
		return exitRemote
	}
	if m.tableFormat() {
		for _, p := range policies {
			m.output(p)
		}
		return exitOK
	}
	return m.outputData(policies)
}

func runPolicyDelete(ctx context.Context, env *Env, args []string) int {
	m := newVaultMeta(env, "policy delete")
	rest, client, code, ok := m.start(args, 1, 1)
	if !ok {
		return code
	}
	name := strings.TrimSpace(rest[0])
	if err := client.Sys().DeletePolicyWithContext(ctx, name); err != nil {
		m.errorf("Error deleting %s: %s", name, err)
		return exitRemote
	}
	m.output("Success! Deleted policy: " + name)
	return exitOK
}

// ---- mounts --------------------------------------------------------------

// mountFlags are the flags shared by `auth enable` and `secrets enable`.
type mountFlags struct {
	path, description, pluginName, listingVisibility string
	defaultTTL, maxTTL                               durationFlag
	local, sealWrap, externalEntropy                 bool
	options                                          mapFlag
}

func (f *mountFlags) register(m *vaultMeta) {
	f.options = mapFlag{}
	m.fs.StringVar(&f.path, "path", "", "Place where the engine or method will be accessible.")
	m.fs.StringVar(&f.description, "description", "", "Human-friendly description.")
	m.fs.StringVar(&f.pluginName, "plugin-name", "", "Name of the plugin.")
	m.fs.StringVar(&f.listingVisibility, "listing-visibility", "", "Whether to show the mount in the UI listing.")
	m.fs.Var(&f.defaultTTL, "default-lease-ttl", "Default lease TTL.")
	m.fs.Var(&f.maxTTL, "max-lease-ttl", "Maximum lease TTL.")
	m.fs.BoolVar(&f.local, "local", false, "Mark the mount as local-only.")
	m.fs.BoolVar(&f.sealWrap, "seal-wrap", false, "Enable seal wrapping.")
	m.fs.BoolVar(&f.externalEntropy, "external-entropy-access", false, "Enable external entropy access.")
	m.fs.Var(f.options, "options", "Key=value option for the mount; repeatable.")
}

func (f *mountFlags) input(typ string) *api.MountInput {
	in := &api.MountInput{
		Type:                  typ,
		Description:           f.description,
		Local:                 f.local,
		SealWrap:              f.sealWrap,
		ExternalEntropyAccess: f.externalEntropy,
		Config: api.MountConfigInput{
			DefaultLeaseTTL:   durationString(f.defaultTTL),
			MaxLeaseTTL:       durationString(f.maxTTL),
			ListingVisibility: f.listingVisibility,
		},
	}
	if len(f.options) > 0 {
		in.Options = map[string]string(f.options)
	}
	return in
}

// target returns the type of `auth enable TYPE` or `secrets enable TYPE`
// ("plugin" means -plugin-name) and the mount path: -path, else the plugin
// name, else the type.
func (f *mountFlags) target(arg string) (typ, p string) {
	typ = strings.TrimSpace(arg)
	if typ == "plugin" {
		typ = f.pluginName
	}
	p = f.path
	if p == "" {
		p = typ
		if f.pluginName != "" {
			p = f.pluginName
		}
	}
	return typ, ensureTrailingSlash(sanitizePath(p))
}

func runAuthEnable(ctx context.Context, env *Env, args []string) int {
	m := newVaultMeta(env, "auth enable")
	var f mountFlags
	f.register(m)
	var tokenType string
	m.fs.StringVar(&tokenType, "token-type", "", "Type of token issued by the method.")
	rest, client, code, ok := m.start(args, 1, 1)
	if !ok {
		return code
	}
	typ, p := f.target(rest[0])
	in := f.input(typ)
	in.Config.TokenType = tokenType
	if err := client.Sys().EnableAuthWithOptionsWithContext(ctx, p, in); err != nil {
		m.errorf("Error enabling %s auth: %s", typ, err)
		return exitRemote
	}
	m.output(fmt.Sprintf("Success! Enabled %s auth method at: %s", typ, p))
	return exitOK
}

func runAuthDisable(ctx context.Context, env *Env, args []string) int {
	return runUnmount(ctx, env, args, "auth disable", "auth method", (*api.Sys).DisableAuthWithContext)
}

// runUnmount implements `auth disable` and `secrets disable`: what names
// the mount in the messages.
func runUnmount(ctx context.Context, env *Env, args []string, name, what string, disable func(*api.Sys, context.Context, string) error) int {
	m := newVaultMeta(env, name)
	rest, client, code, ok := m.start(args, 1, 1)
	if !ok {
		return code
	}
	p := ensureTrailingSlash(sanitizePath(rest[0]))
	if err := disable(client.Sys(), ctx, p); err != nil {
		m.errorf("Error disabling %s at %s: %s", what, p, err)
		return exitRemote
	}
	m.output("Success! Disabled the " + what + " (if it existed) at: " + p)
	return exitOK
}

// mountRows returns the table rows of `auth list` / `secrets list`.
func mountRows(mounts map[string]*api.MountOutput, detailed bool) []string {
	paths := make([]string, 0, len(mounts))
	for p := range mounts {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	if !detailed {
		out := []string{"Path | Type | Accessor | Description"}
		for _, p := range paths {
			mt := mounts[p]
			out = append(out, fmt.Sprintf("%s | %s | %s | %s", p, mt.Type, mt.Accessor, mt.Description))
		}
		return out
	}
	ttl := func(typ string, v int) string {
		switch {
		case typ == "system" || typ == "cubbyhole" || typ == "identity":
			return ""
		case v != 0:
			return humanDuration(time.Duration(v) * time.Second)
		default:
			return "system"
		}
	}
	out := []string{"Path | Type | Accessor | Default TTL | Max TTL | Force No Cache | Replication | Seal Wrap | Options | Description | UUID | Version"}
	for _, p := range paths {
		mt := mounts[p]
		repl := "replicated"
		if mt.Local {
			repl = "local"
		}
		opts := ""
		if len(mt.Options) > 0 {
			opts = fmt.Sprintf("%v", mt.Options)
		}
		out = append(out, fmt.Sprintf("%s | %s | %s | %s | %s | %t | %s | %t | %s | %s | %s | %s",
			p, mt.Type, mt.Accessor, ttl(mt.Type, mt.Config.DefaultLeaseTTL),
			ttl(mt.Type, mt.Config.MaxLeaseTTL), mt.Config.ForceNoCache, repl, mt.SealWrap, opts,
			mt.Description, mt.UUID, mt.PluginVersion))
	}
	return out
}

func runAuthList(ctx context.Context, env *Env, args []string) int {
	return runMountList(ctx, env, args, "auth list", "Error listing enabled authentications", (*api.Sys).ListAuthWithContext)
}

// runMountList implements `auth list` and `secrets list`; failure is the
// start of the error message.
func runMountList(ctx context.Context, env *Env, args []string, name, failure string, list func(*api.Sys, context.Context) (map[string]*api.MountOutput, error)) int {
	m := newVaultMeta(env, name)
	var detailed bool
	m.fs.BoolVar(&detailed, "detailed", false, "Print detailed information.")
	_, client, code, ok := m.start(args, 0, 0)
	if !ok {
		return code
	}
	mounts, err := list(client.Sys(), ctx)
	if err != nil {
		m.errorf("%s: %s", failure, err)
		return exitRemote
	}
	if !m.tableFormat() {
		return m.outputData(mounts)
	}
	m.output(tableOutput(mountRows(mounts, detailed), "|"))
	return exitOK
}

func runSecretsEnable(ctx context.Context, env *Env, args []string) int {
	m := newVaultMeta(env, "secrets enable")
	var f mountFlags
	f.register(m)
	var version int
	m.fs.IntVar(&version, "version", 0, "Version of the KV engine (1 or 2).")
	rest, client, code, ok := m.start(args, 1, 1)
	if !ok {
		return code
	}
	typ, p := f.target(rest[0])
	in := f.input(typ)
	if version > 0 {
		if in.Options == nil {
			in.Options = map[string]string{}
		}
		in.Options["version"] = fmt.Sprint(version)
	}
	if err := client.Sys().MountWithContext(ctx, p, in); err != nil {
		m.errorf("Error enabling: %s", err)
		return exitRemote
	}
	m.output(fmt.Sprintf("Success! Enabled the %s secrets engine at: %s", typ, p))
	return exitOK
}

func runSecretsDisable(ctx context.Context, env *Env, args []string) int {
	return runUnmount(ctx, env, args, "secrets disable", "secrets engine", (*api.Sys).UnmountWithContext)
}

func runSecretsList(ctx context.Context, env *Env, args []string) int {
	return runMountList(ctx, env, args, "secrets list", "Error listing secrets engines", (*api.Sys).ListMountsWithContext)
}

func runSecretsTune(ctx context.Context, env *Env, args []string) int {
	m := newVaultMeta(env, "secrets tune")
	var defaultTTL, maxTTL durationFlag
	var description, listingVisibility string
	var version int
	options := mapFlag{}
	m.fs.Var(&defaultTTL, "default-lease-ttl", "Default lease TTL.")
	m.fs.Var(&maxTTL, "max-lease-ttl", "Maximum lease TTL.")
	m.fs.StringVar(&description, "description", "", "Human-friendly description.")
	m.fs.StringVar(&listingVisibility, "listing-visibility", "", "Whether to show the mount in the UI listing.")
	m.fs.IntVar(&version, "version", 0, "Version of the KV engine to upgrade to.")
	m.fs.Var(options, "options", "Key=value option for the mount; repeatable.")
	rest, client, code, ok := m.start(args, 1, 1)
	if !ok {
		return code
	}
	p := ensureTrailingSlash(sanitizePath(rest[0]))
	in := api.TuneMountConfigInput{}
	if defaultTTL.set {
		s := durationString(defaultTTL)
		in.DefaultLeaseTTL = &s
	}
	if maxTTL.set {
		s := durationString(maxTTL)
		in.MaxLeaseTTL = &s
	}
	m.fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "description":
			in.Description = &description
		case "listing-visibility":
			in.ListingVisibility = &listingVisibility
		}
	})
	if version > 0 {
		options["version"] = fmt.Sprint(version)
	}
	if len(options) > 0 {
		o := map[string]string(options)
		in.Options = &o
	}
	return tuneMount(ctx, m, client, p, in)
}

// tuneMount posts sys/mounts/<p>/tune and reports the outcome like vault.
func tuneMount(ctx context.Context, m *vaultMeta, client *api.Client, p string, in api.TuneMountConfigInput) int {
	if err := client.Sys().TuneMountAllowNilWithContext(ctx, p, in); err != nil {
		m.errorf("Error tuning secrets engine %s: %s", p, err)
		return exitRemote
	}
	m.output("Success! Tuned the secrets engine at: " + p)
	return exitOK
}

// ---- generic read/write/list/delete --------------------------------------

// readSecret reads p with query; it reports an error or an empty answer
// ("No value found at p") and returns false.
func (m *vaultMeta) readSecret(ctx context.Context, client *api.Client, p string, query map[string][]string) (*api.Secret, bool) {
	secret, err := client.Logical().ReadWithDataWithContext(ctx, p, query)
	if err != nil {
		m.errorf("Error reading %s: %s", p, err)
		return nil, false
	}
	if secret == nil {
		m.errorf("No value found at %s", p)
		return nil, false
	}
	return secret, true
}

// remoteErrorf reports a failed request, then the response the server sent
// with it, if any; it returns exitRemote.
func (m *vaultMeta) remoteErrorf(secret *api.Secret, format string, args ...any) int {
	m.errorf(format, args...)
	m.outputSecret(secret)
	return exitRemote
}

// write writes data to p and prints the outcome like `vault write`.
func (m *vaultMeta) write(ctx context.Context, client *api.Client, p string, data map[string]any) int {
	secret, err := client.Logical().WriteWithContext(ctx, p, data)
	if err != nil {
		return m.remoteErrorf(secret, "Error writing data to %s: %s", p, err)
	}
	return m.printWritten(p, secret)
}

// printWritten prints the answer to a write at p: a success line when the
// server sent no body, else -field or the secret.
func (m *vaultMeta) printWritten(p string, secret *api.Secret) int {
	if secret == nil {
		if m.tableFormat() {
			m.output("Success! Data written to: " + p)
		}
		return exitOK
	}
	if m.field != "" {
		return m.printField(secret, m.field)
	}
	return m.outputSecret(secret)
}

// printDeleted prints the success line of a delete at p.
func (m *vaultMeta) printDeleted(p string) int {
	if m.tableFormat() {
		m.output("Success! Data deleted (if it existed) at: " + p)
	}
	return exitOK
}

func runRead(ctx context.Context, env *Env, args []string) int {
	m := newVaultMeta(env, "read")
	m.addFieldFlag()
	rest, code, ok := m.parseArgs(args, 1, -1)
	if !ok {
		return code
	}
	p := sanitizePath(rest[0])
	query, ok := m.argsQuery(rest[1:])
	if !ok {
		return exitLocal
	}
	client, ok := m.client()
	if !ok {
		return exitRemote
	}
	if m.outputFormat() == "raw" {
		return m.readRaw(ctx, client, p, query)
	}
	secret, ok := m.readSecret(ctx, client, p, query)
	if !ok {
		return exitRemote
	}
	if m.field != "" {
		return m.printField(secret, m.field)
	}
	return m.outputSecret(secret)
}

// readRaw prints the response body as is (-format=raw).
func (m *vaultMeta) readRaw(ctx context.Context, client *api.Client, p string, query map[string][]string) int {
	resp, err := client.Logical().ReadRawWithDataWithContext(ctx, p, query)
	if resp != nil {
		defer func() { _ = resp.Body.Close() }()
	}
	if err != nil {
		m.errorf("Error reading %s: %s", p, err)
		return exitRemote
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		m.errorf("Error reading %s: %s", p, err)
		return exitRemote
	}
	if len(b) == 0 {
		m.errorf("No value found at %s", p)
		return exitRemote
	}
	m.output(string(b))
	return exitOK
}

func runWrite(ctx context.Context, env *Env, args []string) int {
	m := newVaultMeta(env, "write")
	m.addFieldFlag()
	var force bool
	m.fs.BoolVar(&force, "force", false, "Allow the operation to continue with no key=value pairs.")
	m.fs.BoolVar(&force, "f", false, "Alias of -force.")
	rest, code, ok := m.parseArgs(args, 1, -1)
	if !ok {
		return code
	}
	p := sanitizePath(rest[0])
	data, ok := m.argsData(rest[1:])
	if !ok {
		return exitLocal
	}
	if len(data) == 0 && !force {
		m.errorf("Must supply data or use -force")
		return exitLocal
	}
	client, ok := m.client()
	if !ok {
		return exitRemote
	}
	return m.write(ctx, client, p, data)
}

func runList(ctx context.Context, env *Env, args []string) int {
	m := newVaultMeta(env, "list")
	rest, client, code, ok := m.start(args, 1, 1)
	if !ok {
		return code
	}
	p := ensureTrailingSlash(sanitizePath(rest[0]))
	secret, err := client.Logical().ListWithContext(ctx, p)
	if err != nil {
		m.errorf("Error listing %s: %s", p, err)
		return exitRemote
	}
	return m.outputListSecret(secret, p)
}

// outputListSecret prints the keys of a list response.
func (m *vaultMeta) outputListSecret(secret *api.Secret, p string) int {
	if secret == nil || secret.Data == nil {
		m.errorf("No value found at %s", p)
		return exitRemote
	}
	keys, ok := secret.Data["keys"].([]any)
	if !ok {
		m.errorf("No entries found at %s", p)
		return exitRemote
	}
	if m.tableFormat() {
		m.printWarnings(secret)
	}
	return m.outputData(keys)
}

func runDelete(ctx context.Context, env *Env, args []string) int {
	m := newVaultMeta(env, "delete")
	rest, code, ok := m.parseArgs(args, 1, -1)
	if !ok {
		return code
	}
	p := sanitizePath(rest[0])
	query, ok := m.argsQuery(rest[1:])
	if !ok {
		return exitLocal
	}
	client, ok := m.client()
	if !ok {
		return exitRemote
	}
	secret, err := client.Logical().DeleteWithDataWithContext(ctx, p, query)
	if err != nil {
		return m.remoteErrorf(secret, "Error deleting %s: %s", p, err)
	}
	return m.printDeleted(p)
}
