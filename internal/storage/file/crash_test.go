package file_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/file"
)

// Environment of the crash child (the test binary re-executed).
const (
	crashDirEnv   = "KEYWARD_FILE_CRASH_DIR"
	crashStartEnv = "KEYWARD_FILE_CRASH_START"
)

// crashKey spreads entries over new folders so that folder creation is
// part of what gets killed.
func crashKey(i int) string { return fmt.Sprintf("crash/d%04d/k%07d", i/8, i) }

// crashValue is deterministic and of varying size (up to ~20 KiB, every
// fourth one ~500 KiB to widen the window in which a non-atomic write would
// be torn), so a torn write cannot pass for a complete one.
func crashValue(i int) []byte {
	n := 1 + (i*37)%2000
	if i%4 == 3 {
		n = 50_000
	}
	return bytes.Repeat([]byte(fmt.Sprintf("<%07d>", i)), n)
}

// runCrashChild writes entries forever, printing "put N" / "del N" after
// each acknowledged operation. It is killed by the parent.
func runCrashChild(dir string, start int) {
	b, err := file.New(dir)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	ctx := context.Background()
	for i := start; ; i++ {
		if err := b.Put(ctx, &storage.Entry{Key: crashKey(i), Value: crashValue(i)}); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Println("put", i)
		if err := b.Put(ctx, &storage.Entry{Key: "crash/latest", Value: []byte(strconv.Itoa(i))}); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Println("latest", i)
		if i%7 == 6 {
			if err := b.Delete(ctx, crashKey(i-3)); err != nil {
				fmt.Println("error", err)
				os.Exit(2)
			}
			fmt.Println("del", i-3)
		}
	}
}

// TestCrashSafety kills a writer process with SIGKILL at random moments
// and checks that every acknowledged write is readable with its value,
// every acknowledged delete is gone, and no stored entry is torn.
func TestCrashSafety(t *testing.T) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		start, _ := strconv.Atoi(os.Getenv(crashStartEnv))
		runCrashChild(dir, start)
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	t.Parallel()
	dir := t.TempDir()
	r := mrand.New(mrand.NewPCG(uint64(os.Getpid()), 7))
	acked := map[int]bool{}   // put acknowledged
	deleted := map[int]bool{} // delete acknowledged
	inflight := map[int]bool{}
	// mayBeDeleted holds keys whose delete was started but not
	// acknowledged: either outcome is correct.
	mayBeDeleted := map[int]bool{}
	// lastLatest is the last acknowledged value of crash/latest; lastPut
	// the last acknowledged put, whose crash/latest write may be in flight.
	lastLatest, lastPut := -1, -1
	const rounds = 20
	for round := range rounds {
		start := round * 1_000_000
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashSafety$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashStartEnv+"="+strconv.Itoa(start))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err = cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill at a random moment once the child has acknowledged its
		// first write (no timing is asserted; the delay only randomizes
		// where in a Put the signal lands).
		delay := time.Duration(r.IntN(150_000)) * time.Microsecond
		var once sync.Once
		kill := func() {
			once.Do(func() {
				time.AfterFunc(delay, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
			})
		}
		sc := bufio.NewScanner(stdout)
		puts := 0
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 2 {
				continue // test framework chatter
			}
			n, aerr := strconv.Atoi(f[1])
			if aerr != nil {
				continue
			}
			switch f[0] {
			case "put":
				acked[n] = true
				inflight[n+1] = true
				lastPut = n
				puts++
			case "latest":
				lastLatest = n
				if n%7 == 6 {
					mayBeDeleted[n-3] = true
				}
			case "del":
				deleted[n] = true
			case "error":
				t.Fatalf("child failed: %s", sc.Text())
			}
			kill()
		}
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child did not die by SIGKILL: %v", round, err)
		}

		b, err := file.New(dir) // also removes the dead writer's temp files
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		for i := range acked {
			e, gerr := b.Get(ctx, crashKey(i))
			if deleted[i] {
				if !errors.Is(gerr, storage.ErrNotFound) {
					t.Errorf("round %d: deleted key %d: %v", round, i, gerr)
				}
				continue
			}
			if errors.Is(gerr, storage.ErrNotFound) && mayBeDeleted[i] {
				continue
			}
			if gerr != nil {
				t.Errorf("round %d: acknowledged key %d unreadable: %v", round, i, gerr)
				continue
			}
			if !bytes.Equal(e.Value, crashValue(i)) {
				t.Errorf("round %d: acknowledged key %d has a wrong value (%d bytes)", round, i, len(e.Value))
			}
		}
		e, err := b.Get(ctx, "crash/latest")
		switch {
		case lastLatest < 0 && errors.Is(err, storage.ErrNotFound):
		case err != nil:
			t.Fatalf("round %d: latest: %v", round, err)
		default:
			if got, aerr := strconv.Atoi(string(e.Value)); aerr != nil || (got != lastLatest && got != lastPut) {
				t.Errorf("round %d: latest = %q, want %d (acknowledged) or %d (in flight)", round, e.Value, lastLatest, lastPut)
			}
		}
		// No torn entry anywhere: every stored entry decodes, and an
		// unacknowledged (in-flight) entry is either absent or complete.
		n := 0
		walkErr := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if strings.HasPrefix(d.Name(), ".tmp-") {
				t.Errorf("round %d: temp file %s survived New", round, p)
			}
			return nil
		})
		if walkErr != nil {
			t.Fatal(walkErr)
		}
		folders, err := b.List(ctx, "crash/")
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range folders {
			if !strings.HasSuffix(f, "/") {
				continue
			}
			keys, err := b.List(ctx, "crash/"+f)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				i, err := strconv.Atoi(strings.TrimPrefix(k, "k"))
				if err != nil {
					t.Fatalf("unexpected key %q", k)
				}
				e, err := b.Get(ctx, "crash/"+f+k)
				if err != nil {
					t.Errorf("round %d: stored key %s%s unreadable (torn?): %v", round, f, k, err)
					continue
				}
				n++
				if !bytes.Equal(e.Value, crashValue(i)) {
					t.Errorf("round %d: stored key %d holds a torn value (%d bytes)", round, i, len(e.Value))
				}
				if !acked[i] && !inflight[i] {
					t.Errorf("round %d: key %d present but never written", round, i)
				}
			}
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: killed %v after the first ack, %d puts acknowledged; %d entries verified", round, delay, puts, n)
	}
}
