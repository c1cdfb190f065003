// Package config loads the server configuration file: Vault's HCL format
// (ui, listener "tcp", storage "file"|"inmem", api_addr, default_lease_ttl,
// max_lease_ttl, log_level, disable_mlock, ...). Loading goes raw file →
// validated, typed Config; every problem is reported with the file, line
// and key it concerns, and an unknown key is an error.
package config

import (
	"errors"
	"fmt"
	"math/big"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
)

// Default lease TTLs when the file sets none (Vault's 768h).
const (
	DefaultLeaseTTL = 768 * time.Hour
	DefaultMaxTTL   = 768 * time.Hour
	// DefaultMaxRequestSize is the listener's body limit (Vault's 32 MiB).
	DefaultMaxRequestSize = 32 << 20
)

// Config is a validated server configuration.
type Config struct {
	UI              bool
	Listeners       []Listener
	Storage         Storage
	APIAddr         string
	ClusterAddr     string
	DefaultLeaseTTL time.Duration
	MaxLeaseTTL     time.Duration
	LogLevel        string
	DisableMlock    bool
	ClusterName     string
}

// Listener is one `listener "tcp"` block.
type Listener struct {
	Address        string
	ClusterAddress string
	TLSDisable     bool
	TLSCertFile    string
	TLSKeyFile     string
	MaxRequestSize int64
}

// Storage is the `storage` block.
type Storage struct {
	// Type is "file" or "inmem".
	Type string
	// Path is the file backend's directory.
	Path string
}

type rawListener struct {
	Type           string         `hcl:"type,label"`
	Address        *hcl.Attribute `hcl:"address"`
	ClusterAddress *hcl.Attribute `hcl:"cluster_address"`
	TLSDisable     *hcl.Attribute `hcl:"tls_disable"`
	TLSCertFile    *hcl.Attribute `hcl:"tls_cert_file"`
	TLSKeyFile     *hcl.Attribute `hcl:"tls_key_file"`
	MaxRequestSize *hcl.Attribute `hcl:"max_request_size"`
}

type rawStorage struct {
	Type string         `hcl:"type,label"`
	Path *hcl.Attribute `hcl:"path"`
	// node_id is accepted for compatibility with raft-style configs.
	NodeID *hcl.Attribute `hcl:"node_id"`
}

type rawConfig struct {
	UI              *hcl.Attribute `hcl:"ui"`
	Listeners       []*rawListener `hcl:"listener,block"`
	Storage         []*rawStorage  `hcl:"storage,block"`
	Backend         []*rawStorage  `hcl:"backend,block"`
	APIAddr         *hcl.Attribute `hcl:"api_addr"`
	ClusterAddr     *hcl.Attribute `hcl:"cluster_addr"`
	ClusterName     *hcl.Attribute `hcl:"cluster_name"`
	DefaultLeaseTTL *hcl.Attribute `hcl:"default_lease_ttl"`
	MaxLeaseTTL     *hcl.Attribute `hcl:"max_lease_ttl"`
	LogLevel        *hcl.Attribute `hcl:"log_level"`
	DisableMlock    *hcl.Attribute `hcl:"disable_mlock"`
}

// Load reads and validates the configuration file at path.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, src)
}

// Parse validates src, the contents of the file called filename (used in
// error messages). A ".json" filename is parsed as HCL's JSON syntax.
func Parse(filename string, src []byte) (*Config, error) {
	p := hclparse.NewParser()
	var f *hcl.File
	var diags hcl.Diagnostics
	if strings.HasSuffix(filename, ".json") {
		f, diags = p.ParseJSON(src, filename)
	} else {
		f, diags = p.ParseHCL(src, filename)
	}
	if diags.HasErrors() {
		return nil, diagError(diags)
	}
	var raw rawConfig
	if diags := gohcl.DecodeBody(f.Body, nil, &raw); diags.HasErrors() {
		return nil, diagError(diags)
	}
	return raw.validate()
}

func diagError(diags hcl.Diagnostics) error {
	var errs []error
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + d.Detail
		}
		if d.Subject != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %s", d.Subject.Filename, d.Subject.Start.Line, msg))
		} else {
			errs = append(errs, errors.New(msg))
		}
	}
	return errors.Join(errs...)
}

// problem collects validation errors with their position.
type problem struct{ errs []error }

func (p *problem) add(a *hcl.Attribute, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s:%d: %s: %s", a.Range.Filename, a.Range.Start.Line, a.Name, fmt.Sprintf(format, args...)))
}

func value(a *hcl.Attribute) (cty.Value, error) {
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() {
		return cty.NilVal, diagError(diags)
	}
	if v.IsNull() || !v.IsKnown() {
		return cty.NilVal, errors.New("value must be set")
	}
	return v, nil
}

// str returns a string attribute ("" when absent).
func (p *problem) str(a *hcl.Attribute) string {
	if a == nil {
		return ""
	}
	v, err := value(a)
	if err != nil {
		p.add(a, "%v", err)
		return ""
	}
	switch v.Type() {
	case cty.String:
		return v.AsString()
	case cty.Number:
		return v.AsBigFloat().Text('f', -1)
	case cty.Bool:
		return strconv.FormatBool(v.True())
	default:
		p.add(a, "must be a string, got %s", v.Type().FriendlyName())
		return ""
	}
}

// boolean parses Vault's lenient booleans: true/false, 1/0, "true"/"1"...
func (p *problem) boolean(a *hcl.Attribute) bool {
	if a == nil {
		return false
	}
	v, err := value(a)
	if err != nil {
		p.add(a, "%v", err)
		return false
	}
	switch v.Type() {
	case cty.Bool:
		return v.True()
	case cty.Number:
		f := v.AsBigFloat()
		if f.Cmp(big.NewFloat(0)) == 0 {
			return false
		}
		if f.Cmp(big.NewFloat(1)) == 0 {
			return true
		}
	case cty.String:
		b, err := strconv.ParseBool(strings.TrimSpace(v.AsString()))
		if err == nil {
			return b
		}
	}
	p.add(a, "must be a boolean (true, false, 1 or 0)")
	return false
}

func (p *problem) duration(a *hcl.Attribute, def time.Duration) time.Duration {
	if a == nil {
		return def
	}
	s := p.str(a)
	if s == "" {
		return def
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Duration(n) * time.Second
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return time.Duration(n) * 24 * time.Hour
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		p.add(a, "invalid duration %q", s)
		return def
	}
	return d
}

func (p *problem) size(a *hcl.Attribute, def int64) int64 {
	if a == nil {
		return def
	}
	s := p.str(a)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		p.add(a, "must be an integer number of bytes")
		return def
	}
	if n <= 0 {
		// Vault: zero or negative means the default / no limit; keep a limit.
		return def
	}
	return n
}

var logLevels = map[string]bool{"trace": true, "debug": true, "info": true, "warn": true, "warning": true, "error": true, "err": true}

func (r *rawConfig) validate() (*Config, error) {
	var p problem
	c := &Config{
		UI:           p.boolean(r.UI),
		APIAddr:      p.str(r.APIAddr),
		ClusterAddr:  p.str(r.ClusterAddr),
		ClusterName:  p.str(r.ClusterName),
		LogLevel:     strings.ToLower(p.str(r.LogLevel)),
		DisableMlock: p.boolean(r.DisableMlock),
	}
	c.DefaultLeaseTTL = p.duration(r.DefaultLeaseTTL, DefaultLeaseTTL)
	c.MaxLeaseTTL = p.duration(r.MaxLeaseTTL, DefaultMaxTTL)
	if c.DefaultLeaseTTL > c.MaxLeaseTTL && r.DefaultLeaseTTL != nil {
		p.add(r.DefaultLeaseTTL, "default_lease_ttl (%s) is greater than max_lease_ttl (%s)", c.DefaultLeaseTTL, c.MaxLeaseTTL)
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	} else if !logLevels[c.LogLevel] {
		p.add(r.LogLevel, "unknown log level %q (trace, debug, info, warn, error)", c.LogLevel)
	}
	for _, rl := range r.Listeners {
		if rl.Type != "tcp" {
			p.errs = append(p.errs, fmt.Errorf("listener %q: unsupported listener type (only \"tcp\")", rl.Type))
			continue
		}
		l := Listener{
			Address:        p.str(rl.Address),
			ClusterAddress: p.str(rl.ClusterAddress),
			TLSDisable:     p.boolean(rl.TLSDisable),
			TLSCertFile:    p.str(rl.TLSCertFile),
			TLSKeyFile:     p.str(rl.TLSKeyFile),
			MaxRequestSize: p.size(rl.MaxRequestSize, DefaultMaxRequestSize),
		}
		if l.Address == "" {
			l.Address = "127.0.0.1:8200"
		}
		if !l.TLSDisable {
			if l.TLSCertFile == "" && rl.TLSCertFile == nil {
				p.errs = append(p.errs, errors.New(`listener "tcp": tls_cert_file must be set when TLS is enabled (or set tls_disable = 1)`))
			}
			if l.TLSKeyFile == "" && rl.TLSKeyFile == nil {
				p.errs = append(p.errs, errors.New(`listener "tcp": tls_key_file must be set when TLS is enabled (or set tls_disable = 1)`))
			}
		}
		c.Listeners = append(c.Listeners, l)
	}
	storages := append(append([]*rawStorage{}, r.Storage...), r.Backend...)
	switch len(storages) {
	case 0:
		p.errs = append(p.errs, errors.New(`no storage block: add storage "file" { path = "..." } or storage "inmem" {}`))
	case 1:
		s := storages[0]
		c.Storage.Type = s.Type
		switch s.Type {
		case "file":
			c.Storage.Path = p.str(s.Path)
			if c.Storage.Path == "" {
				p.errs = append(p.errs, errors.New(`storage "file": 'path' must be set`))
			}
		case "inmem":
			if s.Path != nil {
				p.add(s.Path, `not supported by storage "inmem"`)
			}
		default:
			p.errs = append(p.errs, fmt.Errorf("storage %q: unsupported storage type (supported: file, inmem)", s.Type))
		}
	default:
		p.errs = append(p.errs, errors.New("only one storage block is allowed"))
	}
	if len(c.Listeners) == 0 {
		p.errs = append(p.errs, errors.New(`no listener block: add listener "tcp" { address = "..." }`))
	}
	if err := errors.Join(p.errs...); err != nil {
		return nil, err
	}
	return c, nil
}
