package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// child is a server process the harness started.
type child struct {
	name string
	cmd  *exec.Cmd
	log  string // its stderr (and stdout after the ready line)
	done chan struct{}
	err  error // set before done closes
}

// startChild starts cmd with its output in dir/name.log. When wantReady is
// set it waits for the READY line and decodes its JSON into v.
func startChild(ctx context.Context, dir, name string, cmd *exec.Cmd, wantReady bool, v any) (*child, error) {
	logPath := filepath.Join(dir, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	c := &child{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	cmd.Stderr = lf
	dieWithParent(cmd)
	var stdout io.ReadCloser
	if wantReady {
		if stdout, err = cmd.StdoutPipe(); err != nil {
			lf.Close()
			return nil, err
		}
	} else {
		cmd.Stdout = lf
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		c.err = cmd.Wait()
		lf.Close()
		close(c.done)
	}()
	if !wantReady {
		return c, nil
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			if !sent && strings.HasPrefix(sc.Text(), readyPrefix) {
				lines <- strings.TrimPrefix(sc.Text(), readyPrefix)
				sent = true
				continue
			}
			fmt.Fprintln(lf, sc.Text())
		}
		if !sent {
			close(lines)
		}
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			<-c.done
			return nil, fmt.Errorf("%s exited before it was ready (%v); see %s", name, c.err, logPath)
		}
		if err := json.Unmarshal([]byte(line), v); err != nil {
			c.stop()
			return nil, fmt.Errorf("%s: ready line %q: %w", name, line, err)
		}
		return c, nil
	case <-time.After(60 * time.Second):
		c.stop()
		return nil, fmt.Errorf("%s not ready after 60s; see %s", name, logPath)
	case <-ctx.Done():
		c.stop()
		return nil, ctx.Err()
	}
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// exited reports an early exit, with the log to read.
func (c *child) exited() error {
	select {
	case <-c.done:
		return fmt.Errorf("%s exited (%v); see %s", c.name, c.err, c.log)
	default:
		return nil
	}
}

// stop asks the process and its group to end (SIGTERM), and kills them
// after five seconds.
func (c *child) stop() {
	if c == nil {
		return
	}
	select {
	case <-c.done:
		return
	default:
	}
	signalGroup(c.cmd, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		signalGroup(c.cmd, syscall.SIGKILL)
		<-c.done
	}
	// Whatever of its group outlived it (nginx's workers, say) goes too.
	signalGroup(c.cmd, syscall.SIGKILL)
}

// waitHTTP polls url until it answers want, the child exits or 60s pass.
func waitHTTP(ctx context.Context, c *child, url string, want int) error {
	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	for {
		resp, err := client.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
		}
		if err := c.exited(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s did not answer %d within 60s (last: %v); see %s", c.name, url, want, err, c.log)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freeAddr returns a loopback address with a port free at the time of the
// call (for servers that cannot report the port they chose).
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// clockTick is USER_HZ, the unit of /proc/PID/stat times; it is 100 on
// every Linux architecture Go supports.
const clockTick = 100

// procStat is what the harness reads of /proc/PID/stat.
type procStat struct {
	ppid int
	cpu  time.Duration // utime + stime of all its threads
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name is in parentheses and may hold anything; the
	// fields after the last ')' are fixed: state ppid ... utime(14) stime(15).
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ppid, err1 := strconv.Atoi(f[1])
	ut, err2 := strconv.ParseInt(f[11], 10, 64)
	st, err3 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return procStat{ppid: ppid, cpu: time.Duration(ut+st) * time.Second / clockTick}, nil
}

// treeCPU is the CPU time of the processes rooted at pids and all their
// descendants (nginx's workers, say).
func treeCPU(pids ...int) (time.Duration, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	stats := map[int]procStat{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil {
			stats[pid] = st
		}
	}
	in := map[int]bool{}
	for _, p := range pids {
		if _, ok := stats[p]; !ok {
			return 0, fmt.Errorf("process %d is gone", p)
		}
		in[p] = true
	}
	// Descendants: repeat until no process joins (the tree is shallow).
	for grew := true; grew; {
		grew = false
		for pid, st := range stats {
			if !in[pid] && in[st.ppid] {
				in[pid], grew = true, true
			}
		}
	}
	var total time.Duration
	for pid := range in {
		total += stats[pid].cpu
	}
	return total, nil
}

// memStatus is a process's resident memory, from /proc/PID/status.
type memStatus struct {
	rss, hwm int64 // bytes: VmRSS now, VmHWM its peak so far
	// anon and file split rss: anonymous memory (the Go heap, stacks,
	// the runtime's own) and mapped files (the binary, the bbolt state
	// file), which the kernel counts as resident as they are touched.
	anon, file int64
}

// openFiles counts the process's open file descriptors: under an HTTP
// load, mostly connections, each holding a goroutine and its buffers.
func openFiles(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0
	}
	return len(ents)
}

func readMem(pid int) (memStatus, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memStatus{}, err
	}
	var m memStatus
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		dst := map[string]*int64{"VmRSS": &m.rss, "VmHWM": &m.hwm, "RssAnon": &m.anon, "RssFile": &m.file}[k]
		if !ok || dst == nil {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return memStatus{}, fmt.Errorf("/proc/%d/status: %s", pid, line)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return memStatus{}, err
		}
		*dst = n << 10
	}
	if m.rss == 0 {
		return memStatus{}, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
	}
	return m, nil
}
