// Package redistest runs real redis-server processes for tests: each on a
// free loopback port, with its own temporary directory, configured by the
// repository's deploy/redis.conf (append-only file, fsync on every write),
// and stopped when the test ends.
//
// A machine without redis-server skips the test, except under CI (the CI
// environment variable set), where a missing server is a failure.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one redis-server process.
type Server struct {
	t    testing.TB
	bin  string
	conf string // deploy/redis.conf, "" when not found
	dir  string
	port int

	cluster bool     // a one-node Redis Cluster holding every slot
	extra   []string // more configuration, as command-line arguments

	mu     sync.Mutex
	proc   *os.Process // nil when not running
	exited chan error  // the result of the running process's Wait
	log    *os.File
}

// Start starts a redis-server for t and stops it when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, false)
}

// StartCluster starts a one-node Redis Cluster holding all 16384 slots.
// It refuses, as any cluster does, a script or transaction whose keys lie
// in different slots: what works on it works on a cluster of many nodes.
func StartCluster(t testing.TB) *Server {
	t.Helper()
	return start(t, true)
}

// StartWith starts a redis-server with more configuration directives,
// given as redis-server's command-line arguments (--user alice on ...).
func StartWith(t testing.TB, args ...string) *Server {
	t.Helper()
	return start(t, false, args...)
}

func start(t testing.TB, cluster bool, extra ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-server is not installed (CI is set, so this fails rather than skips): %v", err)
		}
		t.Skipf("redis-server is not installed: %v", err)
	}
	s := &Server{t: t, bin: bin, conf: shippedConfig(), dir: t.TempDir(), cluster: cluster, extra: extra}
	t.Cleanup(s.stop)
	var last error
	for range 5 {
		if s.port, err = freePort(); err != nil {
			t.Fatal(err)
		}
		if last = s.start(); last == nil {
			return s
		}
	}
	t.Fatalf("redis-server did not start: %v", last)
	return nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Dir is the server's working directory, holding its append-only file.
func (s *Server) Dir() string { return s.dir }

// Client returns a client of the server (a cluster client for a cluster),
// closed when the test ends.
func (s *Server) Client() redis.UniversalClient {
	c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{s.Addr()}, IsClusterMode: s.cluster,
		DialTimeout: time.Second, DialerRetries: 1, MaxRetries: 1})
	s.t.Cleanup(func() { c.Close() })
	return c
}

// Kill ends the server with SIGKILL, as a crash would: only what it had
// fsync'd survives.
func (s *Server) Kill() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	s.proc.Kill()
	<-s.exited
	s.proc = nil
	s.log.Close()
}

// Restart starts the killed server again on the same port and directory.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	if err := s.start(); err != nil {
		s.t.Fatalf("restart redis-server: %v", err)
	}
}

func (s *Server) stop() {
	s.Kill()
}

// start runs redis-server on s.port and waits until it answers PING.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var args []string
	if s.conf != "" {
		args = append(args, s.conf)
	} else {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--maxmemory-policy", "noeviction")
	}
	args = append(args, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--daemonize", "no", "--logfile", "", "--unixsocket", "")
	if s.cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(s.dir, "nodes.conf"))
	}
	args = append(args, s.extra...)
	if err := s.launch(args); err != nil {
		return err
	}
	if s.cluster {
		c := redis.NewClient(&redis.Options{Addr: s.Addr(), DialTimeout: 200 * time.Millisecond})
		defer c.Close()
		return s.claimSlots(c)
	}
	return nil
}

// launch runs the server binary with args and waits until it answers PING.
func (s *Server) launch(args []string) error {
	log, err := os.OpenFile(filepath.Join(s.dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-exited:
			log.Close()
			return fmt.Errorf("redis-server exited: %v\n%s", err, s.tail())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			log.Close()
			return fmt.Errorf("redis-server on %s did not answer: %v\n%s", s.Addr(), err, s.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.proc, s.exited, s.log = cmd.Process, exited, log
	return nil
}

// claimSlots gives the node every slot (a restarted node has them from
// nodes.conf) and waits for the cluster to be ok.
func (s *Server) claimSlots(c *redis.Client) error {
	ctx := context.Background()
	info, err := c.ClusterInfo(ctx).Result()
	if err != nil {
		return err
	}
	if !strings.Contains(info, "cluster_slots_assigned:16384") {
		if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
			return fmt.Errorf("cluster addslotsrange: %w", err)
		}
	}
	for deadline := time.Now().Add(15 * time.Second); ; {
		info, err := c.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster not ok: %v %s", err, info)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) tail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// shippedConfig finds deploy/redis.conf above the working directory, so
// that the tests run the configuration the repository ships.
func shippedConfig() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		p := filepath.Join(dir, "deploy", "redis.conf")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Sentinel is a redis-sentinel process watching one master.
type Sentinel struct {
	*Server
	// Master is the name of the master set it watches.
	Master string
}

// StartSentinel starts a Sentinel watching m as the master set "sluice"
// (quorum 1), stopped when the test ends.
func StartSentinel(t testing.TB, m *Server) *Sentinel {
	t.Helper()
	s := &Server{t: t, bin: m.bin, dir: t.TempDir()}
	t.Cleanup(s.stop)
	conf := filepath.Join(s.dir, "sentinel.conf")
	var last error
	for range 5 {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		s.port = port
		// Sentinel rewrites its configuration file: each start gets a fresh one.
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor sluice 127.0.0.1 %d 1\nsentinel down-after-milliseconds sluice 1000\n",
			port, s.dir, m.port)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if last = s.launch([]string{conf, "--sentinel"}); last == nil {
			break
		}
	}
	if last != nil {
		t.Fatalf("redis-sentinel did not start: %v", last)
	}
	c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr()})
	defer c.Close()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		addr, err := c.GetMasterAddrByName(context.Background(), "sluice").Result()
		if err == nil && len(addr) == 2 && addr[1] == strconv.Itoa(m.port) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sentinel does not know the master: %v %v", addr, err)
		}
	}
	return &Sentinel{Server: s, Master: "sluice"}
}

// Topology is a way Redis is deployed, as a test starts it: a name and
// a client of a fresh deployment.
type Topology struct {
	Name   string
	Client func(t testing.TB) redis.UniversalClient
}

// Topologies are the deployments a backend must work on: one server, a
// one-node Cluster (which refuses a script whose keys are in different
// slots) and a server behind a Sentinel.
func Topologies() []Topology {
	return []Topology{
		{"single", func(t testing.TB) redis.UniversalClient { return Start(t).Client() }},
		{"cluster", func(t testing.TB) redis.UniversalClient { return StartCluster(t).Client() }},
		{"sentinel", func(t testing.TB) redis.UniversalClient {
			sen := StartSentinel(t, Start(t))
			c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{sen.Addr()}, MasterName: sen.Master})
			t.Cleanup(func() { c.Close() })
			return c
		}},
	}
}
