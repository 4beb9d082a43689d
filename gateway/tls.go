package gateway

// TLS as the gateway puts it to use: the listener's certificate (and
// client CAs), read at start and read again when their files change, and
// each source's client configuration towards its department. The settings
// are in config_tls.go; department.go sets the client configuration on the
// source's transport.

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// certDebounce is how long the certificate files must stay quiet after a
// change before they are read: a renewal writes the certificate and the
// key one after the other, and a read between the two would see a pair
// that does not match.
const certDebounce = 200 * time.Millisecond

// ServerTLS is the listener's TLS configuration under listen_tls, or nil
// when the gateway serves plain HTTP. It reads the key pair (and the
// client CAs) now, and fails when they cannot be read. Until ctx ends it
// watches their directories and reads them again after each change: new
// handshakes get the new pair, established connections keep theirs. A
// change that does not load (a half-written file, a key that does not
// match the certificate) leaves the last good pair in force and is logged.
func (c *Config) ServerTLS(ctx context.Context, logger *slog.Logger) (*tls.Config, error) {
	lt := c.ListenTLS
	if lt == nil {
		return nil, nil
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// Clean, to compare with the names of fsnotify's events.
	path := func(p string) string {
		if p == "" {
			return ""
		}
		return filepath.Clean(c.Path(p))
	}
	sc := &serverCerts{
		certFile: path(lt.CertFile),
		keyFile:  path(lt.KeyFile),
		caFile:   path(lt.ClientCAFile),
		log:      logger,
		base: &tls.Config{
			MinVersion: tlsVersions[lt.MinVersion],
			NextProtos: []string{"h2", "http/1.1"},
		},
	}
	if lt.ClientCAFile != "" {
		sc.base.ClientAuth = tls.RequireAndVerifyClientCert
	}
	// Watch before the first read, so that a change between the two is
	// not missed.
	w, err := sc.watch()
	if err != nil {
		return nil, fmt.Errorf("listen_tls: watch the certificate files: %w", err)
	}
	if err := sc.load(); err != nil {
		w.Close()
		return nil, err
	}
	go sc.follow(ctx, w)
	// GetConfigForClient hands each handshake the configuration of the
	// pair in force; the base config's session ticket keys stay in use, and
	// a resumed session's client certificate is verified again against the
	// client CAs in force.
	return &tls.Config{
		MinVersion: sc.base.MinVersion,
		NextProtos: sc.base.NextProtos,
		ClientAuth: sc.base.ClientAuth,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return sc.current.Load().config, nil
		},
	}, nil
}

// serverCerts is the listener's key pair and client CAs, as last read.
type serverCerts struct {
	certFile, keyFile, caFile string // caFile "" without client_ca_file
	log                       *slog.Logger
	base                      *tls.Config // every setting but the files'
	current                   atomic.Pointer[loadedCerts]
}

// loadedCerts is one good read of the files.
type loadedCerts struct {
	config *tls.Config
	// sums are the SHA-256 of what the files held, so that a change event
	// that changed nothing (a touch, a rewrite of the same bytes) puts
	// nothing new in force and logs nothing.
	sums [3][sha256.Size]byte
}

// load reads the files and, when they hold a good pair that differs from
// the one in force, puts it in force.
func (sc *serverCerts) load() error {
	var raw [3][]byte
	var err error
	if raw[0], err = os.ReadFile(sc.certFile); err != nil {
		return fmt.Errorf("listen_tls.cert_file: %w", err)
	}
	if raw[1], err = os.ReadFile(sc.keyFile); err != nil {
		return fmt.Errorf("listen_tls.key_file: %w", err)
	}
	if sc.caFile != "" {
		if raw[2], err = os.ReadFile(sc.caFile); err != nil {
			return fmt.Errorf("listen_tls.client_ca_file: %w", err)
		}
	}
	var sums [3][sha256.Size]byte
	for i, b := range raw {
		sums[i] = sha256.Sum256(b)
	}
	if cur := sc.current.Load(); cur != nil && cur.sums == sums {
		return nil
	}
	pair, err := tls.X509KeyPair(raw[0], raw[1])
	if err != nil {
		// The error names neither file's content, only what is wrong.
		return fmt.Errorf("listen_tls: cert_file and key_file: %w", err)
	}
	if pair.Leaf == nil { // only under GODEBUG=x509keypairleaf=0
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return fmt.Errorf("listen_tls.cert_file: %w", err)
		}
	}
	cfg := sc.base.Clone()
	cfg.Certificates = []tls.Certificate{pair}
	if sc.caFile != "" {
		if cfg.ClientCAs, err = certPool(raw[2]); err != nil {
			return fmt.Errorf("listen_tls.client_ca_file: %w", err)
		}
	}
	sc.current.Store(&loadedCerts{config: cfg, sums: sums})
	leaf := pair.Leaf
	attrs := []any{"cert_file", sc.certFile, "serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter}
	if time.Now().After(leaf.NotAfter) {
		sc.log.Warn("TLS certificate in force has expired", attrs...)
	} else {
		sc.log.Info("TLS certificate in force", attrs...)
	}
	return nil
}

// watch watches the directories that hold the files: certificate tools
// (certbot, cert-manager, a plain mv) replace a file by renaming another
// over it, which a watch on the file itself would lose.
func (sc *serverCerts) watch() (*fsnotify.Watcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	for _, dir := range sc.dirs() {
		if err := w.Add(dir); err != nil {
			w.Close()
			return nil, err
		}
	}
	return w, nil
}

// dirs are the directories of the files, each once.
func (sc *serverCerts) dirs() []string {
	var dirs []string
	for _, f := range []string{sc.certFile, sc.keyFile, sc.caFile} {
		if f == "" {
			continue
		}
		if d := filepath.Dir(f); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// relevant reports whether a change to name may change the files: one of
// them, or a name starting with "..", as Kubernetes' secret volumes swap
// a "..data" symlink under the files' own symlinks.
func (sc *serverCerts) relevant(name string) bool {
	name = filepath.Clean(name)
	if strings.HasPrefix(filepath.Base(name), "..") {
		return true
	}
	return name == sc.certFile || name == sc.keyFile || (sc.caFile != "" && name == sc.caFile)
}

// follow reads the files again after each quiet spell following a change,
// until ctx ends.
func (sc *serverCerts) follow(ctx context.Context, w *fsnotify.Watcher) {
	defer w.Close()
	timer := time.NewTimer(certDebounce)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if ev.Op != fsnotify.Chmod && sc.relevant(ev.Name) {
				timer.Reset(certDebounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			// An overflow loses events: read again to be safe.
			sc.log.Warn("watch TLS certificate files", "error", err)
			timer.Reset(certDebounce)
		case <-timer.C:
			if err := sc.load(); err != nil {
				cur := sc.current.Load().config.Certificates[0].Leaf
				sc.log.Error("TLS certificate change not loaded; the previous certificate stays in force",
					"error", err, "serial", cur.SerialNumber.Text(16), "not_after", cur.NotAfter)
			}
		}
	}
}

// clientConfig is the TLS configuration a source's transport dials its
// department with: only ca_file's certificates trusted when it is set,
// the client certificate presented when the department asks for one, and
// server_name in SNI and verification. The files are read once.
func (t *SourceTLSConfig) clientConfig(c *Config) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		b, err := os.ReadFile(c.Path(t.CAFile))
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		if cfg.RootCAs, err = certPool(b); err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
	}
	if t.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(c.Path(t.CertFile), c.Path(t.KeyFile))
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file and tls.key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// certPool is the pool of the PEM certificates in b, of which there must
// be at least one.
func certPool(b []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New("no PEM certificate in it")
	}
	return pool, nil
}
