package gateway

import (
	"crypto/tls"
	"net"
	"strings"
)

// The configuration of TLS: the gateway's own listener (listen_tls) and
// each source's upstream (sources[i].tls). gateway/tls.go puts it to use.

// ListenTLSConfig serves the gateway over HTTPS. The certificate, its key
// and the client CAs are read at start (the gateway does not start without
// them) and read again whenever one of their files changes, so a renewed
// certificate is in force for new connections without a restart.
type ListenTLSConfig struct {
	// CertFile holds the server's certificate chain (PEM), leaf first.
	// Required.
	CertFile string `yaml:"cert_file"`
	// KeyFile holds the certificate's private key (PEM). Required.
	KeyFile string `yaml:"key_file"`
	// ClientCAFile, when set, holds the PEM certificates that may sign
	// client certificates: every connection must then present one that
	// verifies against them (mutual TLS), or the handshake fails.
	ClientCAFile string `yaml:"client_ca_file"`
	// MinVersion is the oldest TLS version accepted: "1.2" (default) or
	// "1.3". Cipher suites are Go's defaults.
	//
	//config:enum tlsVersions
	MinVersion string `yaml:"min_version"`
}

// SourceTLSConfig says how the gateway verifies a department's HTTPS
// upstream and how it identifies itself to it. The files are read once,
// when the gateway starts.
type SourceTLSConfig struct {
	// CAFile holds the PEM certificates that may sign the upstream's
	// certificate; only they are trusted, instead of the system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the gateway's client certificate (PEM,
	// leaf first) and its key, for a department that asks for one
	// (mutual TLS). Set both or neither.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the private key of cert_file (PEM).
	KeyFile string `yaml:"key_file"`
	// ServerName is the name sent in SNI and that the upstream's
	// certificate must carry (default the upstream URL's host).
	ServerName string `yaml:"server_name"`
}

// tlsVersions are the min_version values listen_tls accepts.
var tlsVersions = map[string]uint16{"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}

func (l *ListenTLSConfig) validate(bad func(field, format string, args ...any)) {
	if l == nil {
		return
	}
	if l.CertFile == "" {
		bad("listen_tls.cert_file", "required")
	}
	if l.KeyFile == "" {
		bad("listen_tls.key_file", "required")
	}
	if l.MinVersion == "" {
		l.MinVersion = "1.2"
	}
	if _, ok := tlsVersions[l.MinVersion]; !ok {
		bad("listen_tls.min_version", `want "1.2" or "1.3", got %q`, l.MinVersion)
	}
}

// validate checks the tls block of the source at field f, whose upstream
// has the given scheme.
func (t *SourceTLSConfig) validate(f, scheme string, bad func(field, format string, args ...any)) {
	if t == nil {
		return
	}
	if scheme == "http" {
		bad(f+".tls", "the upstream is plain http: use an https upstream, or remove tls")
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		bad(f+".tls", "set both cert_file and key_file, or neither")
	}
	if t.ServerName != "" && !validServerName(t.ServerName) {
		bad(f+".tls.server_name", "want a host name or IP address, got %q", t.ServerName)
	}
}

// validServerName accepts a DNS name (letters, digits, -, _ and dots; no
// port, scheme or path) or an IP address.
func validServerName(s string) bool {
	if net.ParseIP(s) != nil {
		return true
	}
	if len(s) > 253 || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, "..") {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}
