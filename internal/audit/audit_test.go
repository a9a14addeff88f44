package audit

import (
	"context"
	"database/sql"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/internal/store"
	"github.com/zhiyin/zhiyin/internal/store/storetest"
)

func newTestDB(t *testing.T) *store.DB {
	return storetest.Open(t, storetest.Fast(), store.MigrationSet{Component: MigrationComponent, FS: Migrations()})
}

func TestRecordList(t *testing.T) {
	ctx := context.Background()
	db := newTestDB(t)
	t0 := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	entries := []Entry{
		{At: t0, Actor: "cli:root", Action: "keys.add", Target: "k20250301080000"},
		{At: t0.Add(time.Minute), Actor: "key:ab12", Action: "session.export", Target: "user-1", Detail: map[string]string{"sessions": "3"}},
		{At: t0.Add(2 * time.Minute), Actor: "system", Action: "session.retention", Detail: map[string]string{"deleted": "10", "days": "30"}},
	}
	for _, e := range entries {
		if err := Record(ctx, db, e); err != nil {
			t.Fatal(err)
		}
	}
	// Same millisecond: insertion order breaks the tie (newest first).
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		return RecordTx(tx, Entry{At: t0.Add(2 * time.Minute), Actor: "loopback", Action: "session.delete_user", Target: "user-2"})
	}); err != nil {
		t.Fatal(err)
	}

	got, err := List(ctx, db, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{At: t0.Add(2 * time.Minute), Actor: "loopback", Action: "session.delete_user", Target: "user-2"},
		entries[2], entries[1], entries[0],
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("List =\n%+v\nwant\n%+v", got, want)
	}

	tests := []struct {
		name  string
		since time.Time
		limit int
		want  int
	}{
		{"since excludes older", t0.Add(time.Minute), 0, 3},
		{"limit", time.Time{}, 2, 2},
		{"future", t0.Add(time.Hour), 10, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := List(ctx, db, tt.since, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.want {
				t.Fatalf("got %d entries, want %d", len(got), tt.want)
			}
		})
	}
}

func TestRecordDefaultsTime(t *testing.T) {
	ctx := context.Background()
	db := newTestDB(t)
	before := time.Now().Add(-time.Second)
	if err := Record(ctx, db, Entry{Actor: "system", Action: "x"}); err != nil {
		t.Fatal(err)
	}
	got, err := List(ctx, db, before, 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("List = %v, %v", got, err)
	}
	if got[0].At.Before(before) || got[0].At.Location() != time.UTC {
		t.Errorf("At = %v", got[0].At)
	}
}

func TestRecordRefuses(t *testing.T) {
	ctx := context.Background()
	db := newTestDB(t)
	long := strings.Repeat("x", MaxFieldLen+1)
	many := map[string]string{}
	for i := range MaxDetail + 1 {
		many[string(rune('a'+i%26))+strings.Repeat("k", i)] = "v"
	}
	tests := []struct {
		name string
		e    Entry
		want string
	}{
		{"no actor", Entry{Action: "a"}, "actor is empty"},
		{"no action", Entry{Actor: "a"}, "action is empty"},
		{"long target", Entry{Actor: "a", Action: "a", Target: long}, "target is 257 bytes"},
		{"long detail value", Entry{Actor: "a", Action: "a", Detail: map[string]string{"k": long}}, "detail k is 257 bytes"},
		{"too many details", Entry{Actor: "a", Action: "a", Detail: many}, "detail has 33 entries"},
		{"bad utf-8", Entry{Actor: "a\xff", Action: "a"}, "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Record(ctx, db, tt.e)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	got, err := List(ctx, db, time.Time{}, 0)
	if err != nil || len(got) != 0 {
		t.Fatalf("List = %v, %v; want nothing recorded", got, err)
	}
}

func TestRecordTxRollsBackWithTheAct(t *testing.T) {
	ctx := context.Background()
	db := newTestDB(t)
	boom := errors.New("the act failed")
	err := db.Write(ctx, func(tx *sql.Tx) error {
		if err := RecordTx(tx, Entry{Actor: "system", Action: "x"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	got, err := List(ctx, db, time.Time{}, 0)
	if err != nil || len(got) != 0 {
		t.Fatalf("List = %v, %v; want the entry rolled back", got, err)
	}
}
