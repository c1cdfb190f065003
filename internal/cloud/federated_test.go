package cloud_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/cloud/cloudtest"
)

// testIssuer is a minimal OIDC issuer (like a cluster's service-account
// issuer) that signs assertions.
type testIssuer struct {
	srv *httptest.Server
	key *rsa.PrivateKey
}

func newTestIssuer(t *testing.T) *testIssuer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ti := &testIssuer{key: k}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": ti.srv.URL, "jwks_uri": ti.srv.URL + "/openid/v1/jwks",
			"response_types_supported": []string{"id_token"}, "subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("/openid/v1/jwks", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	ti.srv = httptest.NewTLSServer(mux)
	t.Cleanup(ti.srv.Close)
	return ti
}

func (ti *testIssuer) sign(t *testing.T, sub, aud string, now time.Time) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: ti.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(jwt.Claims{Issuer: ti.srv.URL, Subject: sub, Audience: jwt.Audience{aud},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestFederatedClientAssertion(t *testing.T) {
	t.Parallel()
	iss := newTestIssuer(t)
	c := cloudtest.StartWith(t, cloudtest.Options{FederationClient: iss.srv.Client()})
	c.CreateResourceGroup(t, "rg", "eastus")
	id := c.CreateIdentity(t, "rg", "workload")
	if _, _, err := c.Server.PutFederatedCredential(context.Background(), id.ID, "k8s", iss.srv.URL, "system:serviceaccount:default:app", []string{"api://AzureADTokenExchange"}); err != nil {
		t.Fatal(err)
	}
	newCred := func(sub string) *azidentity.ClientAssertionCredential {
		cred, err := azidentity.NewClientAssertionCredential(c.TenantID, id.ClientID, func(context.Context) (string, error) {
			return iss.sign(t, sub, "api://AzureADTokenExchange", c.Now()), nil
		}, &azidentity.ClientAssertionCredentialOptions{
			ClientOptions: azcore.ClientOptions{Cloud: c.CloudConfig(), Transport: c.HTTPClient()}, DisableInstanceDiscovery: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		return cred
	}
	tok, err := newCred("system:serviceaccount:default:app").GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	claims := decodeClaims(t, tok.Token)
	for k, want := range map[string]any{"oid": id.PrincipalID, "appid": id.ClientID, "aud": "https://vault.azure.net", "appidacr": "2"} {
		if diff := cmp.Diff(want, claims[k]); diff != "" {
			t.Errorf("%s: %s", k, diff)
		}
	}
	_, err = newCred("system:serviceaccount:default:other").GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) || afe.RawResponse.StatusCode != http.StatusBadRequest {
		t.Fatalf("wrong subject: %v", err)
	}
}
