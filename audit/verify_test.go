package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// threeSegments builds a valid 30-record trail in three segments of ten.
// Record 14 is line 4 of segment 2.
func threeSegments(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeTrail(t, dir, 30)
	splitSegments(t, dir, 10)
	verifyOK(t, dir, 30)
	return dir
}

// editLines rewrites segment n of dir with edit applied to its lines.
func editLines(t *testing.T, dir string, n int, edit func(lines [][]byte) [][]byte) {
	t.Helper()
	writeLines(t, segPath(dir, n), edit(readLines(t, segPath(dir, n))))
}

// reseal recomputes a record's hash the way a forger would.
func reseal(line []byte) []byte {
	body := append(bytes.Clone(line[:len(line)-suffixLen]), '}')
	sum := sha256.Sum256(body)
	return append(body[:len(body)-1], hashField+hex.EncodeToString(sum[:])+`"}`...)
}

// wantBad verifies dir and checks that it names want as the first bad
// record, with a reason starting with want.Reason.
func wantBad(t *testing.T, dir string, want Problem) {
	t.Helper()
	rep, err := Verify(context.Background(), dir, VerifyOptions{})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.OK || rep.Bad == nil {
		t.Fatalf("Verify passed a tampered trail: %+v", rep)
	}
	got := *rep.Bad
	if got.Segment != want.Segment || got.Line != want.Line || got.Seq != want.Seq || !strings.HasPrefix(got.Reason, want.Reason) {
		t.Errorf("Verify named %s\nwant %s...", &got, &want)
	}
	if rep.Records != want.Seq-1 {
		t.Errorf("Verify counted %d good records before the bad one, want %d", rep.Records, want.Seq-1)
	}
}

func TestVerifyAcceptsAnIntactTrailAcrossSegments(t *testing.T) {
	dir := threeSegments(t)
	rep := verifyOK(t, dir, 30)
	if rep.Segments != 3 {
		t.Errorf("Segments = %d, want 3", rep.Segments)
	}
	if want := lineHash(readLines(t, segPath(dir, 3))[9]); rep.Head != want {
		t.Errorf("Head = %s, want %s", rep.Head, want)
	}
}

func TestVerifyAcceptsATrailWithAnEmptyLastSegment(t *testing.T) {
	dir := threeSegments(t)
	if err := os.WriteFile(segPath(dir, 4), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	verifyOK(t, dir, 30)
}

func TestVerifyOfAnEmptyTrailIsOK(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("not a segment\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep := verifyOK(t, dir, 0)
	if rep.Segments != 0 || rep.Head != "" {
		t.Errorf("empty trail: %+v", rep)
	}
}

func TestVerifyOfAMissingDirectoryIsAnError(t *testing.T) {
	if _, err := Verify(context.Background(), filepath.Join(t.TempDir(), "nope"), VerifyOptions{}); err == nil {
		t.Fatal("Verify of a missing directory succeeded")
	}
}

func TestVerifyNamesTheFirstAlteredRecord(t *testing.T) {
	// Each case changes one byte of record 14 (segment 2, line 4); pos
	// finds it in the line, whose '\n' is at len(line).
	index := func(s string, off int) func([]byte) int {
		return func(line []byte) int { return bytes.Index(line, []byte(s)) + off }
	}
	hashAt := func(line []byte) int { return len(line) - suffixLen + len(hashField) }
	flip := func(b byte) byte { return b ^ 1 }
	tests := []struct {
		name   string
		pos    func(line []byte) int
		to     func(byte) byte
		reason string
	}{
		{"opening brace", func([]byte) int { return 0 }, flip, "hash mismatch"},
		{"seq digit", index(`"seq":`, 6), flip, "hash mismatch"},
		{"prev digit", index(`"prev":"`, 8), flip, "hash mismatch"},
		{"time", index(`"time":"`, 12), flip, "hash mismatch"},
		{"subject", index(`alice`, 0), flip, "hash mismatch"},
		{"byte of a Chinese character", index(`朝`, 1), flip, "hash mismatch"},
		{"decision", index(`"allow"`, 1), flip, "hash mismatch"},
		{"rows count", index(`"rows":20`, 7), flip, "hash mismatch"},
		{"last byte of the event", func(line []byte) int { return len(line) - suffixLen - 1 }, flip, "hash mismatch"},
		{"hash digit to another digit", hashAt, func(b byte) byte {
			if b == '0' {
				return '1'
			}
			return '0'
		}, "hash mismatch"},
		{"hash digit to upper case", func(line []byte) int {
			return hashAt(line) + bytes.IndexAny(line[hashAt(line):], "abcdef")
		}, func(b byte) byte { return b - 'a' + 'A' }, "malformed record"},
		{"last hash digit", func(line []byte) int { return len(line) - 3 }, func(b byte) byte {
			if b == 'f' {
				return 'e'
			}
			return 'f'
		}, "hash mismatch"},
		{"hash key", index(`,"hash":"`, 3), flip, "malformed record"},
		{"closing brace", func(line []byte) int { return len(line) - 1 }, flip, "malformed record"},
		{"newline", func(line []byte) int { return len(line) }, flip, "hash mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := threeSegments(t)
			path := segPath(dir, 2)
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			lines := bytes.SplitAfter(raw, []byte("\n"))
			line := bytes.TrimSuffix(lines[3], []byte("\n"))
			off := len(bytes.Join(lines[:3], nil)) + tt.pos(line)
			was := raw[off]
			raw[off] = tt.to(was)
			if raw[off] == was {
				t.Fatalf("case does not change the byte %q", was)
			}
			if err := os.WriteFile(path, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			wantBad(t, dir, Problem{Segment: "trail-00000002.jsonl", Line: 4, Seq: 14, Reason: tt.reason})
		})
	}
}

func TestVerifyNamesTheFirstRecordOutOfChain(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, dir string)
		want   Problem
	}{
		{
			"record deleted",
			func(t *testing.T, dir string) {
				editLines(t, dir, 2, func(l [][]byte) [][]byte { return append(l[:3], l[4:]...) })
			},
			Problem{Segment: "trail-00000002.jsonl", Line: 4, Seq: 14, Reason: "sequence gap: expected 14, found 15"},
		},
		{
			"first record of the trail deleted",
			func(t *testing.T, dir string) {
				editLines(t, dir, 1, func(l [][]byte) [][]byte { return l[1:] })
			},
			Problem{Segment: "trail-00000001.jsonl", Line: 1, Seq: 1, Reason: "sequence gap: expected 1, found 2"},
		},
		{
			"first record of a segment deleted",
			func(t *testing.T, dir string) {
				editLines(t, dir, 3, func(l [][]byte) [][]byte { return l[1:] })
			},
			Problem{Segment: "trail-00000003.jsonl", Line: 1, Seq: 21, Reason: "sequence gap: expected 21, found 22"},
		},
		{
			"records swapped",
			func(t *testing.T, dir string) {
				editLines(t, dir, 2, func(l [][]byte) [][]byte { l[3], l[4] = l[4], l[3]; return l })
			},
			Problem{Segment: "trail-00000002.jsonl", Line: 4, Seq: 14, Reason: "sequence gap: expected 14, found 15"},
		},
		{
			"record duplicated",
			func(t *testing.T, dir string) {
				editLines(t, dir, 2, func(l [][]byte) [][]byte { return append(l[:4], append([][]byte{l[3]}, l[4:]...)...) })
			},
			Problem{Segment: "trail-00000002.jsonl", Line: 5, Seq: 15, Reason: "sequence out of order: expected 15, found 14"},
		},
		{
			"record of another trail inserted",
			func(t *testing.T, dir string) {
				other := t.TempDir()
				writeTrail(t, other, 1)
				alien := readLines(t, segPath(other, 1))[0]
				editLines(t, dir, 2, func(l [][]byte) [][]byte { return append(l[:4], append([][]byte{alien}, l[4:]...)...) })
			},
			Problem{Segment: "trail-00000002.jsonl", Line: 5, Seq: 15, Reason: "sequence out of order: expected 15, found 1"},
		},
		{
			"garbage line inserted",
			func(t *testing.T, dir string) {
				editLines(t, dir, 2, func(l [][]byte) [][]byte {
					return append(l[:4], append([][]byte{[]byte(`{"seq":15,"note":"hello"}`)}, l[4:]...)...)
				})
			},
			Problem{Segment: "trail-00000002.jsonl", Line: 5, Seq: 15, Reason: "malformed record"},
		},
		{
			"empty line inserted",
			func(t *testing.T, dir string) {
				editLines(t, dir, 2, func(l [][]byte) [][]byte { return append(l[:4], append([][]byte{{}}, l[4:]...)...) })
			},
			Problem{Segment: "trail-00000002.jsonl", Line: 5, Seq: 15, Reason: "malformed record: empty line"},
		},
		{
			"carriage return before the newline",
			func(t *testing.T, dir string) {
				editLines(t, dir, 2, func(l [][]byte) [][]byte { l[3] = append(l[3], '\r'); return l })
			},
			Problem{Segment: "trail-00000002.jsonl", Line: 4, Seq: 14, Reason: "malformed record"},
		},
		{
			"record rewritten and its hash recomputed",
			func(t *testing.T, dir string) {
				editLines(t, dir, 2, func(l [][]byte) [][]byte {
					l[3] = reseal(bytes.Replace(l[3], []byte(`"alice"`), []byte(`"mallory"`), 1))
					return l
				})
			},
			Problem{Segment: "trail-00000002.jsonl", Line: 5, Seq: 15, Reason: "prev does not match the previous record's hash"},
		},
		{
			"record relinked and its hash recomputed",
			func(t *testing.T, dir string) {
				editLines(t, dir, 2, func(l [][]byte) [][]byte {
					l[3] = reseal(bytes.Replace(l[3], []byte(lineHash(l[2])), []byte(lineHash(l[1])), 1))
					return l
				})
			},
			Problem{Segment: "trail-00000002.jsonl", Line: 4, Seq: 14, Reason: "prev does not match the previous record's hash"},
		},
		{
			"final record torn",
			func(t *testing.T, dir string) {
				path := segPath(dir, 3)
				if err := os.Truncate(path, fileSize(t, path)-40); err != nil {
					t.Fatal(err)
				}
			},
			Problem{Segment: "trail-00000003.jsonl", Line: 10, Seq: 30, Reason: "malformed record: incomplete final line"},
		},
		{
			"middle segment removed",
			func(t *testing.T, dir string) {
				if err := os.Remove(segPath(dir, 2)); err != nil {
					t.Fatal(err)
				}
			},
			Problem{Segment: "trail-00000002.jsonl", Line: 0, Seq: 11, Reason: "segment missing"},
		},
		{
			"first segment removed",
			func(t *testing.T, dir string) {
				if err := os.Remove(segPath(dir, 1)); err != nil {
					t.Fatal(err)
				}
			},
			Problem{Segment: "trail-00000001.jsonl", Line: 0, Seq: 1, Reason: "segment missing"},
		},
		{
			"middle segment emptied",
			func(t *testing.T, dir string) {
				if err := os.WriteFile(segPath(dir, 2), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			Problem{Segment: "trail-00000003.jsonl", Line: 1, Seq: 11, Reason: "sequence gap: expected 11, found 21"},
		},
		{
			"segments swapped",
			func(t *testing.T, dir string) {
				tmp := filepath.Join(dir, "tmp")
				for _, mv := range [][2]string{{segPath(dir, 1), tmp}, {segPath(dir, 2), segPath(dir, 1)}, {tmp, segPath(dir, 2)}} {
					if err := os.Rename(mv[0], mv[1]); err != nil {
						t.Fatal(err)
					}
				}
			},
			Problem{Segment: "trail-00000001.jsonl", Line: 1, Seq: 1, Reason: "sequence gap: expected 1, found 11"},
		},
		{
			"segment replaced by a symlink",
			func(t *testing.T, dir string) {
				target := filepath.Join(t.TempDir(), "copy.jsonl")
				if err := os.Rename(segPath(dir, 2), target); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(target, segPath(dir, 2)); err != nil {
					t.Fatal(err)
				}
			},
			Problem{Segment: "trail-00000002.jsonl", Line: 0, Seq: 11, Reason: "segment is not a regular file"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := threeSegments(t)
			tt.tamper(t, dir)
			wantBad(t, dir, tt.want)
		})
	}
}

// TestVerifyDetectsEveryOneByteChange changes every byte of a small trail in
// turn, two ways, and wants each change named at the line it is in.
func TestVerifyDetectsEveryOneByteChange(t *testing.T) {
	dir := t.TempDir()
	writeTrail(t, dir, 3)
	path := segPath(dir, 1)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw := bytes.Clone(orig)
	line := 1
	for off := range raw {
		for _, mask := range []byte{0x01, 0x20} {
			raw[off] ^= mask
			if err := os.WriteFile(path, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			raw[off] ^= mask
			rep, err := Verify(context.Background(), dir, VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK {
				t.Fatalf("byte %d (%q) ^ %#x went undetected", off, raw[off], mask)
			}
			if rep.Bad.Line != line || rep.Bad.Seq != uint64(line) {
				t.Fatalf("byte %d (%q) ^ %#x in line %d: Verify named %s", off, raw[off], mask, line, rep.Bad)
			}
		}
		if raw[off] == '\n' {
			line++
		}
	}
}

func TestVerifyStreamsRecordsLargerThanItsBuffer(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	appendN(t, l, 1)
	big := sampleEvent(2)
	big.Reason = strings.Repeat("没有原始数据 ", 200_000) // ~3.8 MB, beyond the 256 KiB read buffer
	if err := l.Append(context.Background(), big); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	verifyOK(t, dir, 3)

	editLines(t, dir, 1, func(l [][]byte) [][]byte { l[1][len(l[1])/2] ^= 1; return l })
	wantBad(t, dir, Problem{Segment: "trail-00000001.jsonl", Line: 2, Seq: 2, Reason: "hash mismatch"})
}
