// Package k8stest runs a real etcd and kube-apiserver for tests and gives
// each test a client for them. One apiserver is shared by all tests of a
// test binary (startup takes seconds); it starts on the first Start call and
// stops when Main's m.Run returns. Without Main the processes still die with
// the test binary (parent-death signal), but their temporary directory is
// left behind.
//
// The binaries are looked up in Config.BinDir, else in .cache/kube of the
// repository root found by walking up from the working directory. Build
// them with scripts/build-kube.sh.
//
// There is no kubelet, scheduler or controller-manager: tests bind pods to
// nodes and set pod IPs themselves (CreatePod), pods must be deleted with a
// zero grace period (DeletePod), and namespaces are never finalized.
package k8stest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	aadv1 "github.com/keyward/keyward/api/aadpodidentity/v1"
)

// Config chooses where the binaries are. The zero value finds them under
// the repository root's .cache/kube.
type Config struct {
	// BinDir holds the etcd and kube-apiserver executables; "" means
	// <repo root>/.cache/kube.
	BinDir string
	// StartTimeout bounds the wait for /readyz; 0 means 2 minutes.
	StartTimeout time.Duration
}

// Env is a test's handle on the shared apiserver. Its fields are safe for
// concurrent use by parallel tests.
type Env struct {
	// RESTConfig authenticates as a cluster admin (group system:masters).
	// Copy it (rest.CopyConfig) before changing it.
	RESTConfig *rest.Config
	// Scheme knows the client-go built-in types, apiextensions/v1 and
	// aadpodidentity.k8s.io/v1.
	Scheme *runtime.Scheme
	// Client is an uncached controller-runtime client using Scheme and
	// RESTConfig.
	Client client.Client
	// RepoRoot is the repository root (holds go.mod and deploy/crds).
	RepoRoot string

	t testing.TB
}

var (
	sharedMu   sync.Mutex
	shared     *server // guarded by sharedMu; nil until first started
	sharedErr  error   // guarded by sharedMu; sticky start failure
	sharedConf Config  // guarded by sharedMu
)

// Main runs the tests of a package with the default Config and stops the
// shared apiserver afterwards. Call it from TestMain:
//
//	func TestMain(m *testing.M) { k8stest.Main(m) }
func Main(m *testing.M) { MainWithConfig(m, Config{}) }

// MainWithConfig is Main with an explicit Config.
func MainWithConfig(m *testing.M, cfg Config) {
	sharedMu.Lock()
	sharedConf = cfg
	sharedMu.Unlock()
	code := m.Run()
	sharedMu.Lock()
	if shared != nil {
		shared.stop()
		shared = nil
	}
	sharedMu.Unlock()
	os.Exit(code)
}

// NewScheme returns a scheme with the client-go built-in types,
// apiextensions/v1 and aadpodidentity.k8s.io/v1.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	utilruntime.Must(aadv1.AddToScheme(s))
	return s
}

// Start returns an Env on the shared apiserver, starting it if needed. It
// fails the test when the binaries are missing or the server does not
// become ready.
func Start(t testing.TB) *Env {
	t.Helper()
	sharedMu.Lock()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = startServer(sharedConf)
	}
	srv, err := shared, sharedErr
	sharedMu.Unlock()
	if err != nil {
		t.Fatalf("k8stest: %v", err)
	}
	scheme := NewScheme()
	c, err := client.New(rest.CopyConfig(srv.restConfig), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatalf("k8stest: client: %v", err)
	}
	return &Env{RESTConfig: rest.CopyConfig(srv.restConfig), Scheme: scheme, Client: c, RepoRoot: srv.repoRoot, t: t}
}

// ErrBinariesMissing reports that etcd or kube-apiserver was not found.
var ErrBinariesMissing = errors.New("kube binaries missing: run scripts/build-kube.sh from the repository root (builds .cache/kube/{etcd,kube-apiserver}, about 10 minutes)")

// findRepoRoot walks up from the working directory to the directory holding
// Keyward's go.mod.
func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("module github.com/keyward/keyward\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root (go.mod of github.com/keyward/keyward) not found above the working directory")
		}
		dir = parent
	}
}

// Context returns a context cancelled when the test ends.
func (e *Env) Context() context.Context { return e.t.Context() }

func describeMissing(binDir string) error {
	var missing []string
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if fi, err := os.Stat(filepath.Join(binDir, name)); err != nil || fi.Mode()&0o111 == 0 {
			missing = append(missing, filepath.Join(binDir, name))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w (missing: %v)", ErrBinariesMissing, missing)
}
