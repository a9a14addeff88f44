package store

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Environment of the crash-writer child process.
const (
	crashEnvDB    = "ZHIYIN_STORE_CRASH_DB"
	crashEnvRound = "ZHIYIN_STORE_CRASH_ROUND"
)

// crashSet is the schema of the crash test: every acknowledged write inserts
// one ack row and bumps its writer's counter, so a torn transaction shows up
// as sum(counters.n) != count(acks).
func crashSet() MigrationSet {
	return set("crash", map[string]string{
		"0001_acks.sql": `
			CREATE TABLE acks (id TEXT PRIMARY KEY, g INTEGER NOT NULL, payload BLOB NOT NULL);
			CREATE TABLE counters (g INTEGER PRIMARY KEY, n INTEGER NOT NULL);`,
	})
}

// TestHelperCrashWriter is not a test: it is the child process of
// TestCrashSafety. It writes until it is killed, printing "ack ID" only after
// Write returned nil for ID and "nack ID" after a Write that must not commit
// returned its error.
func TestHelperCrashWriter(t *testing.T) {
	path := os.Getenv(crashEnvDB)
	if path == "" {
		t.Skip("child process of TestCrashSafety; runs only when it sets " + crashEnvDB)
	}
	round := os.Getenv(crashEnvRound)
	cfg := DefaultConfig()
	cfg.Path = path
	cfg.GroupCommit.QueueSize = 64 // keep the in-flight set small and varied
	ctx := context.Background()
	db, err := Open(ctx, cfg, nil, nil, Options{Exclusive: true}, crashSet())
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(3)
	}
	var out sync.Mutex
	say := func(s string) {
		out.Lock()
		defer out.Unlock()
		os.Stdout.WriteString(s + "\n") // unbuffered: one write(2) per line
	}
	say("ready")
	errRefused := errors.New("refused")
	for g := range 32 {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(g), uint64(len(round))))
			for i := 0; ; i++ {
				id := fmt.Sprintf("%s-%d-%d", round, g, i)
				refuse := i%7 == 3
				payload := make([]byte, 64+rng.IntN(4096))
				err := db.Write(ctx, func(tx *sql.Tx) error {
					if _, err := tx.Exec(`INSERT INTO acks(id, g, payload) VALUES (?, ?, ?)`, id, g, payload); err != nil {
						return err
					}
					if _, err := tx.Exec(`INSERT INTO counters(g, n) VALUES (?, 1)
						ON CONFLICT(g) DO UPDATE SET n = n + 1`, g); err != nil {
						return err
					}
					if refuse {
						return errRefused
					}
					return nil
				})
				switch {
				case err == nil && !refuse:
					say("ack " + id)
				case errors.Is(err, errRefused):
					say("nack " + id)
				default:
					say(fmt.Sprintf("error %s %v", id, err))
				}
			}
		}()
	}
	time.Sleep(time.Minute) // the parent kills us long before
	t.Fatal("crash writer was not killed")
}

// TestCrashSafety SIGKILLs a process in the middle of a write load and checks
// that the database is intact and holds every acknowledged write.
func TestCrashSafety(t *testing.T) {
	path := testConfig(t).Path
	acked := map[string]bool{}
	var nacked []string
	rounds := 4
	if testing.Short() {
		rounds = 2
	}
	for round := range rounds {
		killAfter := 1000 + rand.IntN(2000)
		a, n := crashRound(t, path, fmt.Sprint("r", round), killAfter)
		for id := range a {
			acked[id] = true
		}
		nacked = append(nacked, n...)

		ctx := context.Background()
		if err := IntegrityCheck(ctx, path); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		// The kernel dropped the dead child's flock.
		db, err := Open(ctx, configAt(path), testLog(t), nil, Options{Exclusive: true}, crashSet())
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		present := map[string]bool{}
		rows, err := db.Read().Query(`SELECT id FROM acks`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			present[id] = true
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		missing := 0
		for id := range acked {
			if !present[id] {
				missing++
				if missing < 5 {
					t.Errorf("round %d: acknowledged write %s is missing", round, id)
				}
			}
		}
		for _, id := range nacked {
			if present[id] {
				t.Errorf("round %d: refused write %s is present", round, id)
			}
		}
		var sum, rowsN int
		if err := db.Read().QueryRow(`SELECT (SELECT coalesce(sum(n), 0) FROM counters), (SELECT count(*) FROM acks)`).Scan(&sum, &rowsN); err != nil {
			t.Fatal(err)
		}
		if sum != rowsN {
			t.Errorf("round %d: counters sum to %d but acks has %d rows: a transaction was torn", round, sum, rowsN)
		}
		t.Logf("round %d: killed after %d acks; %d acked in all, %d rows present (unacknowledged in-flight writes may commit)",
			round, len(a), len(acked), len(present))
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if missing > 0 {
			t.Fatalf("round %d: %d acknowledged writes lost", round, missing)
		}
	}
}

// configAt returns the defaults with the database at path.
func configAt(path string) Config {
	cfg := DefaultConfig()
	cfg.Path = path
	return cfg
}

// crashRound runs one child until killAfter acks, SIGKILLs it and returns
// the ids it acknowledged and refused.
func crashRound(t *testing.T, path, round string, killAfter int) (acked map[string]bool, nacked []string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCrashWriter$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnvDB+"="+path, crashEnvRound+"="+round)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()

	acked = map[string]bool{}
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "ready":
			// While the child serves, a second daemon is locked out
			// and told the child's pid.
			_, err := Open(context.Background(), configAt(path), nil, nil, Options{Exclusive: true}, crashSet())
			var le *LockedError
			if !errors.As(err, &le) || le.PID != cmd.Process.Pid {
				t.Errorf("exclusive Open beside the child: err = %v, want ErrLocked with pid %d", err, cmd.Process.Pid)
			}
		case strings.HasPrefix(line, "ack "):
			acked[strings.TrimPrefix(line, "ack ")] = true
			if len(acked) >= killAfter && !killed {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		case strings.HasPrefix(line, "nack "):
			nacked = append(nacked, strings.TrimPrefix(line, "nack "))
		case strings.HasPrefix(line, "error "):
			t.Errorf("child: %s", line)
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before %d acks (%d): %v\n%s", killAfter, len(acked), err, stderr.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v\n%s", err, stderr.String())
	}
	return acked, nacked
}
