package cloud

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// Client is a small ARM/Graph client authenticated as a profile's service
// principal (client credentials), used by the `keyward cloud` CLI and the
// demo. Safe for concurrent use.
type Client struct {
	p    Profile
	hc   *http.Client
	mu   sync.Mutex
	toks map[string]string // guarded by mu; resource → access token
}

// NewClient returns a client for p, trusting p.CAFile.
func NewClient(p *Profile) (*Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if p.CAFile != "" {
		pem, err := os.ReadFile(p.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cloud: read CA: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cloud: no certificate in %s", p.CAFile)
		}
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	return &Client{p: *p, hc: hc, toks: map[string]string{}}, nil
}

// Profile returns the client's profile.
func (c *Client) Profile() Profile { return c.p }

func (c *Client) token(ctx context.Context, resource string) (string, error) {
	c.mu.Lock()
	t, ok := c.toks[resource]
	c.mu.Unlock()
	if ok {
		return t, nil
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.p.ClientID}, "client_secret": {c.p.ClientSecret}, "resource": {resource}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.p.AuthorityHost+c.p.TenantID+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("cloud: token: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", fmt.Errorf("cloud: token: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", &AADError{Status: resp.StatusCode, Err: body.Error, Description: body.Description}
	}
	c.mu.Lock()
	c.toks[resource] = body.AccessToken
	c.mu.Unlock()
	return body.AccessToken, nil
}

// ARM calls Resource Manager: method on path (e.g. /subscriptions/...)
// with api-version and an optional JSON body; it decodes a JSON answer into
// out (if non-nil). Error answers are returned as *ARMError.
func (c *Client) ARM(ctx context.Context, method, path, apiVersion string, query url.Values, body, out any) error {
	tok, err := c.token(ctx, "https://management.azure.com/")
	if err != nil {
		return err
	}
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	q.Set("api-version", apiVersion)
	u := strings.TrimSuffix(c.p.ARMEndpoint, "/") + path + "?" + q.Encode()
	return c.do(ctx, method, u, tok, body, out)
}

// Graph calls the Graph subset on the authority host.
func (c *Client) Graph(ctx context.Context, path string, query url.Values, out any) error {
	tok, err := c.token(ctx, "https://graph.microsoft.com/")
	if err != nil {
		return err
	}
	u := c.p.AuthorityHost + strings.TrimPrefix(path, "/")
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return c.do(ctx, http.MethodGet, u, tok, nil, out)
}

func (c *Client) do(ctx context.Context, method, u, tok string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("cloud: %s: %w", method, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
			return &ARMError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
		}
		return &ARMError{Status: resp.StatusCode, Code: http.StatusText(resp.StatusCode), Message: strings.TrimSpace(string(b))}
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("cloud: decode answer: %w", err)
		}
	}
	return nil
}

// IsNotFound reports whether err is an ARM 404.
func IsNotFound(err error) bool {
	var ae *ARMError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}
