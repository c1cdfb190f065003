package core

import (
	"context"
	"errors"
	"testing"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/logical/framework"
	"github.com/keyward/keyward/internal/storage/inmem"
)

// cidrAuthFactory is a minimal auth method whose unauthenticated "login"
// returns an Auth bound to 127.0.0.1/32 and 10.0.0.0/8.
func cidrAuthFactory(context.Context, logical.BackendConfig) (logical.Backend, error) {
	b := &framework.Backend{
		Paths: []*framework.Path{{
			Pattern: "login",
			Operations: map[logical.Operation]framework.OperationFunc{
				logical.UpdateOperation: func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
					return &logical.Response{Auth: &logical.Auth{
						DisplayName: "test",
						BoundCIDRs:  []string{"127.0.0.1/32", "10.0.0.0/8"},
					}}, nil
				},
			},
		}},
		Special: &logical.Paths{Unauthenticated: []string{"login"}},
	}
	// "sneak" is an authenticated path that (wrongly) returns an Auth.
	b.Paths = append(b.Paths, &framework.Path{
		Pattern: "sneak",
		Operations: map[logical.Operation]framework.OperationFunc{
			logical.UpdateOperation: func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
				return &logical.Response{Auth: &logical.Auth{DisplayName: "sneak", Policies: []string{"default"}}}, nil
			},
		},
	})
	if err := b.Compile(); err != nil {
		return nil, err
	}
	return b, nil
}

// TestBoundCIDRsEnforced checks that a token bound to CIDRs is refused
// when used from anywhere else.
func TestBoundCIDRsEnforced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, err := New(Config{Physical: inmem.New(), Registry: &Registry{Auth: map[string]logical.Factory{"cidr": cidrAuthFactory}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	if _, err = c.DevInitialize(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err = c.Mount(ctx, &MountEntry{Table: tableAuth, Path: "cidr", Type: "cidr"}); err != nil {
		t.Fatal(err)
	}
	resp, err := c.HandleRequest(ctx, &logical.Request{
		Operation: logical.UpdateOperation, Path: "auth/cidr/login",
		Connection: &logical.Connection{RemoteAddr: "127.0.0.1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tok := resp.Auth.ClientToken
	tests := []struct {
		addr   string
		denied bool
	}{
		{addr: "127.0.0.1"},
		{addr: "10.9.8.7"},
		{addr: "::ffff:10.1.1.1"},
		{addr: "192.168.1.1", denied: true},
		{addr: "::1", denied: true},
		{addr: "", denied: true},
		{addr: "not-an-ip", denied: true},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			_, err := c.HandleRequest(ctx, &logical.Request{
				Operation: logical.ReadOperation, Path: "auth/token/lookup-self", ClientToken: tok,
				Connection: &logical.Connection{RemoteAddr: tc.addr},
			})
			if got := errors.Is(err, logical.ErrPermissionDenied); got != tc.denied {
				t.Errorf("from %q: err = %v, want denied=%v", tc.addr, err, tc.denied)
			}
			if !tc.denied && err != nil {
				t.Errorf("from %q: %v", tc.addr, err)
			}
		})
	}
}

// TestAuthOutsideLoginMintsNothing: an Auth returned by an authenticated
// path of an auth method does not become a token.
func TestAuthOutsideLoginMintsNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, err := New(Config{Physical: inmem.New(), Registry: &Registry{Auth: map[string]logical.Factory{"cidr": cidrAuthFactory}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	dev, err := c.DevInitialize(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if err = c.Mount(ctx, &MountEntry{Table: tableAuth, Path: "cidr", Type: "cidr"}); err != nil {
		t.Fatal(err)
	}
	resp, err := c.HandleRequest(ctx, &logical.Request{
		Operation: logical.UpdateOperation, Path: "auth/cidr/sneak", ClientToken: dev.RootToken,
		Connection: &logical.Connection{RemoteAddr: "127.0.0.1"},
	})
	var coded *logical.CodedError
	if !errors.As(err, &coded) || coded.Status != 500 {
		t.Fatalf("auth from a non-login path: resp %+v, err %v; want a 500 error", resp, err)
	}
	if resp != nil {
		t.Fatalf("auth from a non-login path returned a response: %+v", resp)
	}
}
