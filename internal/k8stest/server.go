package k8stest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
)

// server is the running etcd + kube-apiserver pair.
type server struct {
	dir        string // temporary directory, removed by stop
	repoRoot   string
	etcd       *proc
	apiserver  *proc
	restConfig *rest.Config
}

func startServer(cfg Config) (_ *server, err error) {
	root, rootErr := findRepoRoot()
	binDir := cfg.BinDir
	if binDir == "" {
		if rootErr != nil {
			return nil, fmt.Errorf("%w: %w", ErrBinariesMissing, rootErr)
		}
		binDir = filepath.Join(root, ".cache", "kube")
	}
	if missing := describeMissing(binDir); missing != nil {
		return nil, missing
	}
	timeout := cfg.StartTimeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}

	dir, err := os.MkdirTemp("", "k8stest-")
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir, repoRoot: root}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()

	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	s.etcd, err = startProcess(filepath.Join(binDir, "etcd"), filepath.Join(dir, "etcd.log"),
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls=http://127.0.0.1:"+strconv.Itoa(ports[1]),
		"--initial-advertise-peer-urls=http://127.0.0.1:"+strconv.Itoa(ports[1]),
		"--initial-cluster=default=http://127.0.0.1:"+strconv.Itoa(ports[1]),
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err != nil {
		return nil, err
	}

	certPEM, keyPEM, err := servingCert()
	if err != nil {
		return nil, err
	}
	saKey, saPub, err := serviceAccountKeys()
	if err != nil {
		return nil, err
	}
	adminToken, err := randomToken()
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		"serving.crt": certPEM,
		"serving.key": keyPEM,
		"sa.key":      saKey,
		"sa.pub":      saPub,
		// token,user,uid,"group1,group2"
		"tokens.csv": []byte(adminToken + `,admin,admin-uid,"system:masters"` + "\n"),
	}
	for name, b := range files {
		if werr := os.WriteFile(filepath.Join(dir, name), b, 0o600); werr != nil {
			return nil, werr
		}
	}
	securePort := strconv.Itoa(ports[2])
	s.apiserver, err = startProcess(filepath.Join(binDir, "kube-apiserver"), filepath.Join(dir, "kube-apiserver.log"),
		"--etcd-servers="+etcdURL,
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--tls-cert-file="+filepath.Join(dir, "serving.crt"),
		"--tls-private-key-file="+filepath.Join(dir, "serving.key"),
		"--secure-port="+securePort,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(dir, "sa.key"),
		"--token-auth-file="+filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--disable-admission-plugins=ServiceAccount",
		"--allow-privileged=true",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
	)
	if err != nil {
		return nil, err
	}

	s.restConfig = &rest.Config{
		Host:            "https://127.0.0.1:" + securePort,
		BearerToken:     adminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: certPEM},
		QPS:             1000,
		Burst:           2000,
		Timeout:         30 * time.Second,
	}
	if err := s.waitReady(timeout); err != nil {
		return nil, err
	}
	return s, nil
}

// waitReady polls /readyz until it answers 200, a process exits, or the
// timeout passes.
func (s *server) waitReady(timeout time.Duration) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.restConfig.CAData)
	hc := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}
	defer hc.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		for _, p := range []*proc{s.etcd, s.apiserver} {
			if p.exited() {
				return fmt.Errorf("%s exited during startup:\n%s", filepath.Base(p.cmd.Path), tailFile(p.log, 40))
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.restConfig.Host+"/readyz", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+s.restConfig.BearerToken)
		resp, err := hc.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready after %v:\n%s", timeout, tailFile(s.apiserver.log, 40))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// stop kills both processes by PID, waits for them and removes the
// temporary directory.
func (s *server) stop() {
	for _, p := range []*proc{s.apiserver, s.etcd} {
		if p == nil {
			continue
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

// proc is a child process whose exit is observed by one reaper goroutine.
type proc struct {
	cmd  *exec.Cmd
	log  string        // path of the file holding its stdout and stderr
	done chan struct{} // closed once the process has exited and been reaped
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func startProcess(path, logFile string, args ...string) (*proc, error) {
	f, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // the child holds its own descriptor
	// Not CommandContext: the processes outlive the call that starts them
	// and are stopped by server.stop (or die with the test binary).
	cmd := exec.Command(path, args...) //nolint:noctx // see above
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	p := &proc{cmd: cmd, log: logFile, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func tailFile(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// freePorts returns n distinct loopback TCP ports that were free a moment
// ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// servingCert returns a self-signed certificate for 127.0.0.1 and
// localhost, and its key, both PEM.
func servingCert() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "k8stest-apiserver"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// serviceAccountKeys returns an RSA key pair (PEM private key, PEM public
// key) for signing service account tokens.
func serviceAccountKeys() (keyPEM, pubPEM []byte, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), nil
}

func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
