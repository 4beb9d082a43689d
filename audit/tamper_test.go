package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"

	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// The attacks of issue 6, each against a real trail written by a Log with
// checkpoints and a file witness (see newSignedTrail: three segments of ten
// records, checkpoints at seq 5, 10, ..., 30), each named by Verify at the
// right place.

// forgeChain rewrites the trail's records as a forger would: edit gets and
// returns the records of all segments in order; every record is then
// renumbered and rechained so that the hash chain alone verifies. Segments
// keep their record counts (the last one absorbs any difference).
func forgeChain(t *testing.T, dir string, edit func(recs [][]byte) [][]byte) {
	t.Helper()
	segs, _ := listSegments(dir)
	var all [][]byte
	var counts []int
	for _, s := range segs {
		lines := readLines(t, segPath(dir, s.num))
		counts = append(counts, len(lines))
		all = append(all, lines...)
	}
	all = edit(all)
	var prev [sha256.Size]byte
	out := make([][]byte, len(all))
	for i, line := range all {
		// The event after seq and prev, with its closing brace back.
		at := bytes.Index(line, []byte(`","time":`)) + 1
		rest := append(bytes.Clone(line[at:len(line)-suffixLen]), '}')
		var rec []byte
		rec, prev = appendRecord(nil, uint64(i+1), &prev, rest)
		out[i] = rec[:len(rec)-1]
	}
	for i, s := range segs {
		n := counts[i]
		if i == len(segs)-1 || n > len(out) {
			n = len(out)
		}
		writeLines(t, segPath(dir, s.num), out[:n])
		out = out[n:]
	}
}

// resign rewrites checkpoints.jsonl to vouch for the trail as it now is,
// signed with key: what someone holding the checkpoint key could do.
func resign(t *testing.T, dir string, key ed25519.PrivateKey) {
	t.Helper()
	var lines [][]byte
	var prev *Checkpoint
	for _, c := range readCheckpoints(t, dir) {
		recs := readLines(t, segPath(dir, mustSegNum(c.Segment)))
		var size int64
		for _, r := range recs {
			size += int64(len(r)) + 1
			if lineSeq(r) == c.Seq {
				c.Head, c.Size = lineHash(r), size
				break
			}
		}
		c.Prev = ""
		if prev != nil {
			c.Prev = prev.Hash()
		}
		c.sign(key)
		prev = &c
		lines = append(lines, bytes.TrimSuffix(c.line(), []byte("\n")))
	}
	writeLines(t, cpPath(dir), lines)
}

func mustSegNum(name string) int {
	n, _ := segmentNumber(name)
	return n
}

func editCheckpoints(t *testing.T, dir string, edit func(l [][]byte) [][]byte) {
	t.Helper()
	writeLines(t, cpPath(dir), edit(readLines(t, cpPath(dir))))
}

func TestVerifyDetectsEveryAttackOnASignedTrail(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, s *signedTrail)
		want   Problem // Reason is a prefix
	}{
		{"record edited",
			func(t *testing.T, s *signedTrail) {
				editLines(t, s.dir, 2, func(l [][]byte) [][]byte { l[3] = bytes.Replace(l[3], []byte("alice"), []byte("carol"), 1); return l })
			},
			Problem{Segment: "trail-00000002.jsonl", Line: 4, Seq: 14, Reason: "hash mismatch"}},
		{"record removed",
			func(t *testing.T, s *signedTrail) {
				editLines(t, s.dir, 2, func(l [][]byte) [][]byte { return append(l[:3], l[4:]...) })
			},
			Problem{Segment: "trail-00000002.jsonl", Line: 4, Seq: 14, Reason: "sequence gap: expected 14, found 15"}},
		{"records reordered",
			func(t *testing.T, s *signedTrail) {
				editLines(t, s.dir, 2, func(l [][]byte) [][]byte { l[3], l[4] = l[4], l[3]; return l })
			},
			Problem{Segment: "trail-00000002.jsonl", Line: 4, Seq: 14, Reason: "sequence gap"}},
		{"record inserted",
			func(t *testing.T, s *signedTrail) {
				editLines(t, s.dir, 2, func(l [][]byte) [][]byte { return append(l[:4], append([][]byte{l[0]}, l[4:]...)...) })
			},
			Problem{Segment: "trail-00000002.jsonl", Line: 5, Seq: 15, Reason: "sequence out of order"}},
		{"record edited and the chain recomputed",
			func(t *testing.T, s *signedTrail) {
				forgeChain(t, s.dir, func(r [][]byte) [][]byte {
					r[13] = bytes.Replace(r[13], []byte(`"allow"`), []byte(`"deny"`), 1)
					return r
				})
			},
			Problem{Segment: "trail-00000002.jsonl", Line: 5, Seq: 15, Checkpoint: 3, Reason: "chain rewritten: record 15 is not the head checkpoint 3 signed (a record in seq 11..15"}},
		{"record removed and the rest renumbered and rechained",
			func(t *testing.T, s *signedTrail) {
				forgeChain(t, s.dir, func(r [][]byte) [][]byte { return append(r[:13], r[14:]...) })
			},
			Problem{Segment: "trail-00000002.jsonl", Line: 5, Seq: 15, Checkpoint: 3, Reason: "chain rewritten"}},
		{"record inserted and the rest renumbered and rechained",
			func(t *testing.T, s *signedTrail) {
				forgeChain(t, s.dir, func(r [][]byte) [][]byte { return append(r[:13], append([][]byte{r[2]}, r[13:]...)...) })
			},
			Problem{Segment: "trail-00000002.jsonl", Line: 5, Seq: 15, Checkpoint: 3, Reason: "chain rewritten"}},
		{"middle segment deleted",
			func(t *testing.T, s *signedTrail) { os.Remove(segPath(s.dir, 2)) },
			Problem{Segment: "trail-00000002.jsonl", Line: 0, Seq: 11, Reason: "segment missing"}},
		{"last segment deleted",
			func(t *testing.T, s *signedTrail) { os.Remove(segPath(s.dir, 3)) },
			Problem{Segment: "trail-00000003.jsonl", Line: 0, Seq: 21, Checkpoint: 5, Reason: "segment missing (trail cut): checkpoint 5 covers records up to seq 25"}},
		{"trail cut after its last checkpoint",
			func(t *testing.T, s *signedTrail) {
				editLines(t, s.dir, 3, func(l [][]byte) [][]byte { return l[:7] })
			},
			Problem{Segment: "trail-00000003.jsonl", Line: 8, Seq: 28, Checkpoint: 6, Reason: "trail cut: checkpoint 6 covers records up to seq 30"}},
		{"trail and its checkpoints cut together: the witness is ahead",
			func(t *testing.T, s *signedTrail) {
				editLines(t, s.dir, 3, func(l [][]byte) [][]byte { return l[:5] })
				editCheckpoints(t, s.dir, func(l [][]byte) [][]byte { return l[:5] })
			},
			Problem{Segment: "trail-00000003.jsonl", Line: 6, Seq: 26, Checkpoint: 6, Reason: "trail cut: the witness's checkpoint 6 covers records up to seq 30"}},
		{"checkpoints cut, records kept",
			func(t *testing.T, s *signedTrail) {
				editCheckpoints(t, s.dir, func(l [][]byte) [][]byte { return l[:4] })
			},
			Problem{Segment: checkpointFile, Line: 5, Seq: 30, Checkpoint: 6, Reason: "checkpoints cut: the witness holds checkpoint 6"}},
		{"checkpoint edited",
			func(t *testing.T, s *signedTrail) {
				editCheckpoints(t, s.dir, func(l [][]byte) [][]byte {
					l[2] = bytes.Replace(l[2], []byte(`"seq":15`), []byte(`"seq":14`), 1)
					return l
				})
			},
			Problem{Segment: checkpointFile, Line: 3, Seq: 14, Checkpoint: 3, Reason: "checkpoint 3: bad signature"}},
		{"checkpoint removed",
			func(t *testing.T, s *signedTrail) {
				editCheckpoints(t, s.dir, func(l [][]byte) [][]byte { return append(l[:2], l[3:]...) })
			},
			Problem{Segment: checkpointFile, Line: 3, Seq: 20, Checkpoint: 3, Reason: "checkpoint number 4, expected 3"}},
		{"checkpoints reordered",
			func(t *testing.T, s *signedTrail) {
				editCheckpoints(t, s.dir, func(l [][]byte) [][]byte { l[2], l[3] = l[3], l[2]; return l })
			},
			Problem{Segment: checkpointFile, Line: 3, Seq: 20, Checkpoint: 3, Reason: "checkpoint number 4, expected 3"}},
		{"checkpoint with an unsigned field added",
			func(t *testing.T, s *signedTrail) {
				editCheckpoints(t, s.dir, func(l [][]byte) [][]byte { l[1] = append([]byte(`{"note":"x",`), l[1][1:]...); return l })
			},
			Problem{Segment: checkpointFile, Line: 2, Seq: 6, Checkpoint: 2, Reason: "malformed checkpoint: json: unknown field"}},
		{"chain and checkpoints forged with another key",
			func(t *testing.T, s *signedTrail) {
				forgeChain(t, s.dir, func(r [][]byte) [][]byte { return append(r[:13], r[14:]...) })
				resign(t, s.dir, testKey("mallory"))
			},
			Problem{Segment: checkpointFile, Line: 1, Seq: 5, Checkpoint: 1, Reason: "checkpoint 1: signed by key " + KeyID(pubOf(testKey("mallory"))) + ", which is not a trusted"}},
		{"chain and checkpoints rewritten by the key holder: the witness kept the original",
			func(t *testing.T, s *signedTrail) {
				forgeChain(t, s.dir, func(r [][]byte) [][]byte { return append(r[:13], r[14:]...) })
				resign(t, s.dir, s.key)
			},
			Problem{Segment: checkpointFile, Line: 6, Seq: 30, Checkpoint: 6, Reason: "checkpoint 6 differs from the witness's"}},
		{"segments merged",
			func(t *testing.T, s *signedTrail) {
				appendFile(t, segPath(s.dir, 2), joinLines(readLines(t, segPath(s.dir, 3))))
				os.Remove(segPath(s.dir, 3))
			},
			Problem{Segment: "trail-00000002.jsonl", Line: 15, Seq: 25, Checkpoint: 5, Reason: "checkpoint 5 places record 25 at byte"}},
		{"checkpoints deleted and the witness kept",
			func(t *testing.T, s *signedTrail) { os.Remove(cpPath(s.dir)) },
			Problem{Segment: checkpointFile, Line: 0, Seq: 30, Checkpoint: 6, Reason: "checkpoints cut"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSignedTrail(t)
			tt.tamper(t, s)
			rep := verifyWith(t, s.dir, s.opts())
			if rep.OK || rep.Bad == nil {
				t.Fatalf("Verify passed a tampered trail: %+v", rep)
			}
			got := *rep.Bad
			if got.Segment != tt.want.Segment || got.Line != tt.want.Line || got.Seq != tt.want.Seq ||
				got.Checkpoint != tt.want.Checkpoint || !strings.HasPrefix(got.Reason, tt.want.Reason) {
				t.Errorf("Verify named %s [checkpoint %d]\n          want %s [checkpoint %d]...", &got, got.Checkpoint, &tt.want, tt.want.Checkpoint)
			}
		})
	}
}

func TestVerifyWithTheWrongKeyFails(t *testing.T) {
	s := newSignedTrail(t)
	rep := verifyWith(t, s.dir, VerifyOptions{Keys: []ed25519.PublicKey{pubOf(testKey("other"))}})
	if rep.OK || rep.Bad.Segment != checkpointFile || rep.Bad.Line != 1 || !strings.Contains(rep.Bad.Reason, "not a trusted checkpoint key") {
		t.Errorf("Verify with another key: %+v %v", rep, rep.Bad)
	}
	// The old and the new key after a rotation both verify.
	rep = verifyWith(t, s.dir, VerifyOptions{Keys: []ed25519.PublicKey{pubOf(testKey("other")), pubOf(s.key)}})
	if !rep.OK {
		t.Errorf("Verify with both keys: %v", rep.Bad)
	}
}

func TestVerifyWithoutAKeyChecksAllButSignaturesAndSaysSo(t *testing.T) {
	s := newSignedTrail(t)
	rep := verifyWith(t, s.dir, VerifyOptions{})
	if !rep.OK || rep.SignaturesChecked || rep.Checkpoints != 6 {
		t.Fatalf("Verify: %+v", rep)
	}
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "signatures were not checked") {
		t.Errorf("warnings %q", rep.Warnings)
	}
	editLines(t, s.dir, 3, func(l [][]byte) [][]byte { return l[:7] })
	if rep := verifyWith(t, s.dir, VerifyOptions{}); rep.OK || rep.Bad.Seq != 28 {
		t.Errorf("a cut trail without a key: %+v", rep)
	}
}

func TestVerifyWarnsOfRecordsAfterTheLastCheckpointAndAWitnessBehind(t *testing.T) {
	s := newSignedTrail(t)
	// Two records more by a log without the key, and a witness one behind.
	l := openLog(t, s.dir, Options{})
	appendN(t, l, 2)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.witness, readCheckpoints(t, s.dir)[4].line(), 0o600); err != nil {
		t.Fatal(err)
	}
	rep := verifyWith(t, s.dir, s.opts())
	if !rep.OK || rep.Records != 32 || rep.Covered != 30 {
		t.Fatalf("Verify: %+v %v", rep, rep.Bad)
	}
	want := []string{"2 record(s) after seq 30 are not covered", "the witness holds checkpoint 5, behind the trail's 6"}
	if len(rep.Warnings) != len(want) {
		t.Fatalf("warnings %q, want %q", rep.Warnings, want)
	}
	for i, w := range want {
		if !strings.HasPrefix(rep.Warnings[i], w) {
			t.Errorf("warning %q, want %q...", rep.Warnings[i], w)
		}
	}
}

func TestVerifyNamesAForgedWitness(t *testing.T) {
	s := newSignedTrail(t)
	c := readCheckpoints(t, s.dir)[5]
	c.Seq = 31
	c.sign(testKey("mallory"))
	if err := os.WriteFile(s.witness, c.line(), 0o600); err != nil {
		t.Fatal(err)
	}
	rep := verifyWith(t, s.dir, s.opts())
	if rep.OK || rep.Bad.Segment != "witness" || !strings.Contains(rep.Bad.Reason, "not a trusted checkpoint key") {
		t.Errorf("Verify with a forged witness: %+v", rep.Bad)
	}
}

func TestVerifyOfALiveTrailIsConsistent(t *testing.T) {
	root := t.TempDir()
	dir, wit := root+"/audit", root+"/witness.json"
	key := testKey("live")
	l := openLog(t, dir, Options{CheckpointKey: key, CheckpointEvery: 7, CheckpointInterval: 5 * time.Millisecond,
		SegmentMaxBytes: 20 << 10, Witness: NewFileWitness(wit)})
	const writers, each = 8, 60
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					if err := l.Append(context.Background(), sampleEvent(w*each+i)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}()
	opts := VerifyOptions{Keys: []ed25519.PublicKey{pubOf(key)}, Witness: NewFileWitness(wit)}
	for verified := 0; ; verified++ {
		select {
		case <-done:
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if rep := verifyWith(t, dir, opts); !rep.OK || rep.Records != writers*each || rep.Covered != writers*each {
				t.Fatalf("final Verify: %+v %v", rep, rep.Bad)
			}
			t.Logf("verified the live trail %d times", verified)
			return
		default:
		}
		if rep := verifyWith(t, dir, opts); !rep.OK {
			t.Fatalf("Verify of a live trail: %v", rep.Bad)
		}
		time.Sleep(time.Millisecond) // leave the writer a core
	}
}
