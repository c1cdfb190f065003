package cli

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
	"golang.org/x/term"
)

// Environment variables read by the client commands, as the vault CLI names
// them.
const (
	envVaultAddr       = "VAULT_ADDR"
	envVaultToken      = "VAULT_TOKEN"
	envVaultSkipVerify = "VAULT_SKIP_VERIFY"
	envVaultCACert     = "VAULT_CACERT"
	envVaultFormat     = "VAULT_FORMAT"
	envVaultMaxRetries = "VAULT_MAX_RETRIES"
	envVaultTimeout    = "VAULT_CLIENT_TIMEOUT"
	envVaultNamespace  = "VAULT_NAMESPACE"
	envVaultProxyAddr  = "VAULT_PROXY_ADDR"
	envVaultHTTPProxy  = "VAULT_HTTP_PROXY"

	// defaultVaultAddr is the vault CLI's default server address.
	defaultVaultAddr = "https://127.0.0.1:8200"
	// tokenHelperFile is the token helper's file name under $HOME.
	tokenHelperFile = ".vault-token"
	// defaultClientTimeout bounds each HTTP request, as the vault CLI's 60s.
	defaultClientTimeout = 60 * time.Second
)

// Exit codes of the vault CLI: 1 for local problems (flags, arguments,
// files), 2 for errors returned by the server.
const (
	exitOK     = 0
	exitLocal  = 1
	exitRemote = 2
)

// errNoHome reports that the token helper cannot find the home directory.
var errNoHome = errors.New("error getting user's home directory: $HOME is not set")

// vaultMeta holds the flags and environment every client command shares
// (server address, TLS, output format) and builds the API client.
type vaultMeta struct {
	env *Env
	fs  *flag.FlagSet

	address       string
	caCert        string
	tlsSkipVerify bool
	format        string

	// field is the -field flag, registered only by commands that take it.
	field string
	// interleaved lets flags follow positional arguments (kv commands).
	interleaved bool
}

// newVaultMeta returns the shared state of one client command named name.
func newVaultMeta(env *Env, name string) *vaultMeta {
	m := &vaultMeta{env: env}
	m.fs = flag.NewFlagSet(name, flag.ContinueOnError)
	m.fs.SetOutput(io.Discard)
	m.fs.StringVar(&m.address, "address", "", "Address of the server (VAULT_ADDR).")
	m.fs.StringVar(&m.caCert, "ca-cert", "", "PEM CA certificate file (VAULT_CACERT).")
	m.fs.BoolVar(&m.tlsSkipVerify, "tls-skip-verify", false, "Disable TLS verification (VAULT_SKIP_VERIFY).")
	m.fs.StringVar(&m.format, "format", "", "Output format: table, json or yaml (VAULT_FORMAT).")
	return m
}

// addFieldFlag registers -field.
func (m *vaultMeta) addFieldFlag() {
	m.fs.StringVar(&m.field, "field", "", "Print only this field, without a trailing newline.")
}

// parse parses args and returns the positional arguments. ok is false when
// the caller must return code (help or a flag error, already reported).
func (m *vaultMeta) parse(args []string) (rest []string, code int, ok bool) {
	var err error
	if m.interleaved {
		rest, err = parseInterleaved(m.fs, args)
	} else {
		err = m.fs.Parse(args)
		rest = m.fs.Args()
	}
	if errors.Is(err, flag.ErrHelp) {
		m.usage()
		return nil, exitOK, false
	}
	if err != nil {
		m.errorf("%s", err)
		return nil, exitLocal, false
	}
	if !m.interleaved {
		var late []string
		for _, a := range rest {
			if len(a) > 1 && strings.HasPrefix(a, "-") && m.fs.Lookup(flagName(a)) != nil {
				late = append(late, a)
			}
		}
		if len(late) > 0 {
			m.warn(fmt.Sprintf("Command flags must be provided before positional arguments. The following arguments will not be parsed as flags: [%s]", strings.Join(late, ",")))
		}
	}
	f := m.outputFormat()
	switch f {
	case "table", "json", "yaml", "yml", "raw":
	default:
		m.errorf("Invalid output format: %s", f)
		return nil, exitLocal, false
	}
	return rest, exitOK, true
}

// flagName returns the name of a "-name=value" or "--name" argument.
func flagName(arg string) string {
	name := strings.TrimLeft(arg, "-")
	if i := strings.IndexByte(name, '='); i >= 0 {
		name = name[:i]
	}
	return name
}

// parseInterleaved parses flags that may appear before, between or after
// positional arguments; "--" ends flag parsing.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for len(args) > 0 {
		if args[0] == "--" {
			return append(rest, args[1:]...), nil
		}
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		remaining := fs.Args()
		// The flag package stops at the first non-flag argument, or after
		// consuming a "--" terminator.
		if used := len(args) - len(remaining); used > 0 && args[used-1] == "--" {
			return append(rest, remaining...), nil
		}
		if len(remaining) == 0 {
			break
		}
		rest = append(rest, remaining[0])
		args = remaining[1:]
	}
	return rest, nil
}

// usage prints the command's flags.
func (m *vaultMeta) usage() {
	_, _ = fmt.Fprintf(m.env.Stdout, "Usage: keyward %s [options] [args]\n\n", m.fs.Name())
	m.fs.VisitAll(func(f *flag.Flag) {
		_, _ = fmt.Fprintf(m.env.Stdout, "  -%s\n      %s\n", f.Name, f.Usage)
	})
}

// outputFormat returns the -format flag, else VAULT_FORMAT, else "table".
func (m *vaultMeta) outputFormat() string {
	f := m.format
	if f == "" {
		f = m.env.Getenv(envVaultFormat)
	}
	if f == "" {
		f = "table"
	}
	return strings.ToLower(f)
}

// tableFormat reports whether the output format is the human table.
func (m *vaultMeta) tableFormat() bool { return m.outputFormat() == "table" }

// output writes one line to stdout.
func (m *vaultMeta) output(s string) { _, _ = fmt.Fprintln(m.env.Stdout, s) }

// errorf writes one line to stderr.
func (m *vaultMeta) errorf(format string, args ...any) {
	_, _ = fmt.Fprintf(m.env.Stderr, format+"\n", args...)
}

// warn writes a wrapped warning to stderr.
func (m *vaultMeta) warn(s string) { _, _ = fmt.Fprintln(m.env.Stderr, wrapAtLength(s, 0)) }

// argCount checks the number of positional arguments; it reports the
// problem like vault and returns false when the count is wrong.
func (m *vaultMeta) argCount(args []string, min, max int) bool {
	switch {
	case len(args) < min:
		if min == max {
			m.errorf("Not enough arguments (expected %d, got %d)", min, len(args))
		} else {
			m.errorf("Not enough arguments (expected at least %d, got %d)", min, len(args))
		}
		return false
	case max >= 0 && len(args) > max:
		if min == max {
			m.errorf("Too many arguments (expected %d, got %d)", max, len(args))
		} else {
			m.errorf("Too many arguments (expected at most %d, got %d)", max, len(args))
		}
		return false
	}
	return true
}

// parseArgs parses args and checks that between minArgs and maxArgs
// positional arguments remain (maxArgs < 0: no upper bound). ok is false
// when the caller must return code; the problem is already reported.
func (m *vaultMeta) parseArgs(args []string, minArgs, maxArgs int) (rest []string, code int, ok bool) {
	rest, code, ok = m.parse(args)
	if !ok {
		return nil, code, false
	}
	if !m.argCount(rest, minArgs, maxArgs) {
		return nil, exitLocal, false
	}
	return rest, exitOK, true
}

// start is parseArgs followed by client, the opening of a command with
// nothing to check in between. ok is false when the caller must return
// code (exitRemote when the client cannot be built).
func (m *vaultMeta) start(args []string, minArgs, maxArgs int) (rest []string, client *api.Client, code int, ok bool) {
	rest, code, ok = m.parseArgs(args, minArgs, maxArgs)
	if !ok {
		return nil, nil, code, false
	}
	if client, ok = m.client(); !ok {
		return nil, nil, exitRemote, false
	}
	return rest, client, exitOK, true
}

// argsData parses K=V arguments (and "-" for stdin) into request data; it
// reports a bad argument and returns false.
func (m *vaultMeta) argsData(args []string) (map[string]any, bool) {
	data, err := parseArgsData(m.env.Stdin, args)
	if err != nil {
		m.errorf("Failed to parse K=V data: %s", err)
		return nil, false
	}
	return data, true
}

// argsQuery parses K=V arguments into query parameters (nil when there
// are none); it reports a bad argument and returns false.
func (m *vaultMeta) argsQuery(args []string) (map[string][]string, bool) {
	data, err := parseArgsDataString(m.env.Stdin, args)
	if err != nil {
		m.errorf("Failed to parse K=V data: %s", err)
		return nil, false
	}
	if len(data) == 0 {
		return nil, true
	}
	query := make(map[string][]string, len(data))
	for k, v := range data {
		query[k] = []string{v}
	}
	return query, true
}

// client builds the API client from the flags and the environment: address
// (-address, VAULT_ADDR), TLS (-ca-cert, VAULT_CACERT, -tls-skip-verify,
// VAULT_SKIP_VERIFY), retries and timeout, and the token (VAULT_TOKEN, else
// the token helper file). It reports errors itself.
func (m *vaultMeta) client() (*api.Client, bool) {
	c, err := m.newClient()
	if err != nil {
		m.errorf("%s", err)
		return nil, false
	}
	return c, true
}

func (m *vaultMeta) newClient() (*api.Client, error) {
	getenv := m.env.Getenv
	addr := m.address
	if addr == "" {
		addr = getenv(envVaultAddr)
	}
	if addr == "" {
		addr = defaultVaultAddr
	}
	timeout := defaultClientTimeout
	if v := getenv(envVaultTimeout); v != "" {
		d, err := parseDurationSecond(v)
		if err != nil {
			return nil, fmt.Errorf("could not parse %q", envVaultTimeout)
		}
		timeout = d
	}
	retries := 2
	if v := getenv(envVaultMaxRetries); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("could not parse %q", envVaultMaxRetries)
		}
		retries = int(n)
	}
	skipVerify := m.tlsSkipVerify
	if v := getenv(envVaultSkipVerify); v != "" && !skipVerify {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("could not parse %s", envVaultSkipVerify)
		}
		skipVerify = b
	}
	caCert := m.caCert
	if caCert == "" {
		caCert = getenv(envVaultCACert)
	}

	transport := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
	proxy := getenv(envVaultProxyAddr)
	if proxy == "" {
		proxy = getenv(envVaultHTTPProxy)
	}
	if proxy != "" {
		u, err := url.Parse(proxy)
		if err != nil {
			return nil, fmt.Errorf("could not parse proxy address %q: %w", proxy, err)
		}
		transport.Proxy = http.ProxyURL(u)
	}
	cfg := &api.Config{
		Address: addr,
		HttpClient: &http.Client{
			Transport: transport,
			Timeout:   timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		Timeout:      timeout,
		MaxRetries:   retries,
		MinRetryWait: time.Second,
		MaxRetryWait: 1500 * time.Millisecond,
	}
	if caCert != "" || skipVerify {
		if err := cfg.ConfigureTLS(&api.TLSConfig{CACert: caCert, Insecure: skipVerify}); err != nil {
			return nil, err
		}
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	// NewClient also consults the process environment; this command's
	// environment is authoritative.
	c.ClearNamespace()
	if ns := getenv(envVaultNamespace); ns != "" {
		c.SetNamespace(ns)
	}
	token := getenv(envVaultToken)
	if token == "" {
		t, err := readTokenHelper(m.env)
		if err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, errNoHome) {
			return nil, fmt.Errorf("error getting token: %w", err)
		}
		token = t
	}
	if token == "" {
		c.ClearToken()
	} else {
		c.SetToken(token)
	}
	return c, nil
}

// tokenHelperPath returns $HOME/.vault-token.
func tokenHelperPath(env *Env) (string, error) {
	home := env.Getenv("HOME")
	if home == "" {
		return "", errNoHome
	}
	return filepath.Join(home, tokenHelperFile), nil
}

// readTokenHelper returns the token stored by login ("" when none).
func readTokenHelper(env *Env) (string, error) {
	p, err := tokenHelperPath(env)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// storeTokenHelper saves token to $HOME/.vault-token with mode 0600,
// replacing the file atomically.
func storeTokenHelper(env *Env, token string) error {
	p, err := tokenHelperPath(env)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".vault-token-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // best effort after rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close() //nolint:errcheck // already failing
		return err
	}
	if _, err := tmp.WriteString(token); err != nil {
		tmp.Close() //nolint:errcheck // already failing
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

// promptSecret asks for a secret value. On a terminal the input is hidden;
// otherwise one line is read from stdin.
func promptSecret(env *Env, prompt string) (string, error) {
	if f, ok := env.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		_, _ = fmt.Fprint(env.Stdout, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		_, _ = fmt.Fprintln(env.Stdout)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	}
	line, err := readLine(env.Stdin)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// readLine reads up to the first newline without buffering past it.
func readLine(r io.Reader) (string, error) {
	var sb strings.Builder
	buf := make([]byte, 1)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if buf[0] == '\n' {
				return sb.String(), nil
			}
			sb.WriteByte(buf[0])
		}
		if errors.Is(err, io.EOF) {
			if sb.Len() == 0 {
				return "", io.ErrUnexpectedEOF
			}
			return sb.String(), nil
		}
		if err != nil {
			return "", err
		}
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// sanitizePath trims spaces and leading/trailing slashes, as vault does.
func sanitizePath(s string) string {
	return strings.Trim(strings.TrimSpace(s), "/")
}

// ensureTrailingSlash appends "/" to a non-empty path that lacks it.
func ensureTrailingSlash(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || strings.HasSuffix(s, "/") {
		return s
	}
	return s + "/"
}

// parseDurationSecond parses "30" (seconds), Go durations ("1h30m") and
// days ("7d"), as vault's duration flags do.
func parseDurationSecond(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	if strings.HasSuffix(s, "d") {
		n, err := strconv.ParseInt(strings.TrimSuffix(s, "d"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	return d, nil
}

// durationFlag is a flag.Value holding a duration in vault's syntax.
type durationFlag struct {
	d   time.Duration
	set bool
}

func (f *durationFlag) String() string {
	if f == nil || !f.set {
		return ""
	}
	return f.d.String()
}

func (f *durationFlag) Set(s string) error {
	d, err := parseDurationSecond(s)
	if err != nil {
		return err
	}
	f.d, f.set = d, true
	return nil
}

// stringSliceFlag is a repeatable flag whose values may also be
// comma-separated.
type stringSliceFlag []string

func (f *stringSliceFlag) String() string { return strings.Join(*f, ",") }

func (f *stringSliceFlag) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*f = append(*f, p)
		}
	}
	return nil
}

// mapFlag is a repeatable key=value flag.
type mapFlag map[string]string

func (f mapFlag) String() string {
	keys := make([]string, 0, len(f))
	for k, v := range f {
		keys = append(keys, k+"="+v)
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

func (f mapFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("invalid key=value %q", s)
	}
	f[k] = v
	return nil
}

// optionalBool is a bool flag that remembers whether it was given.
type optionalBool struct {
	v   bool
	set bool
}

func (f *optionalBool) String() string { return strconv.FormatBool(f.v) }

func (f *optionalBool) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	f.v, f.set = b, true
	return nil
}

// IsBoolFlag lets "-flag" alone mean true.
func (f *optionalBool) IsBoolFlag() bool { return true }

// optionalInt is an int flag that remembers whether it was given.
type optionalInt struct {
	v   int
	set bool
}

func (f *optionalInt) String() string { return strconv.Itoa(f.v) }

func (f *optionalInt) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return err
	}
	f.v, f.set = n, true
	return nil
}

// responseStatus returns the HTTP status of an API error (0 if none).
func responseStatus(err error) int {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}
