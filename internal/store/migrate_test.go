package store

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMigrationsApplyInOrderAndReopenIsIdempotent(t *testing.T) {
	cfg := testConfig(t)
	// 0002 depends on 0001 and 0003 on 0002: a wrong order fails.
	s := set("orders", map[string]string{
		"0003_index.sql": `CREATE INDEX orders_customer ON orders(customer_id);`,
		"0001_customers.sql": `CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);
			INSERT INTO customers(name) VALUES ('a');`,
		"0002_orders.sql": `CREATE TABLE orders (id INTEGER PRIMARY KEY,
			customer_id INTEGER NOT NULL REFERENCES customers(id));`,
		"README.md": "ignored",
	})
	other := set("other", map[string]string{"0001_t.sql": `CREATE TABLE other_t (x);`})
	ctx := context.Background()

	for round := range 3 {
		db, err := Open(ctx, cfg, testLog(t), prometheus.NewRegistry(), Options{Exclusive: true}, s, other)
		if err != nil {
			t.Fatalf("round %d: Open: %v", round, err)
		}
		rows, err := db.Read().Query(`SELECT component, version, name FROM schema_migrations ORDER BY component, version`)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var c, n string
			var v int
			if err := rows.Scan(&c, &v, &n); err != nil {
				t.Fatal(err)
			}
			got = append(got, c+"/"+n)
		}
		rows.Close()
		want := "orders/customers orders/orders orders/index other/t"
		if strings.Join(got, " ") != want {
			t.Fatalf("round %d: schema_migrations = %v, want %s", round, got, want)
		}
		// The data migration ran once, not once per Open.
		if n := count(t, db.Read(), "customers"); n != 1 {
			t.Fatalf("round %d: customers = %d, want 1", round, n)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMigrationsAddedLaterAreApplied(t *testing.T) {
	cfg := testConfig(t)
	v1 := map[string]string{"0001_a.sql": `CREATE TABLE a (x);`}
	db := openT(t, cfg, Options{}, set("c", v1))
	db.Close()
	v2 := map[string]string{"0001_a.sql": v1["0001_a.sql"], "0002_b.sql": `ALTER TABLE a ADD COLUMN y;`}
	db = openT(t, cfg, Options{}, set("c", v2))
	if _, err := db.Read().Exec(`SELECT x, y FROM a`); err != nil {
		t.Fatalf("column added by 0002 missing: %v", err)
	}
}

func TestFailingMigrationLeavesNothingApplied(t *testing.T) {
	cfg := testConfig(t)
	good := map[string]string{"0001_a.sql": `CREATE TABLE a (x);`}
	db := openT(t, cfg, Options{}, set("c", good))
	db.Close()

	tests := []struct {
		name string
		sql  string
	}{
		{"syntax error after a statement", `CREATE TABLE b (y); INSERT INTO a VALUES (1); THIS IS NOT SQL;`},
		{"constraint violation", `CREATE TABLE b (y UNIQUE); INSERT INTO b VALUES (1); INSERT INTO b VALUES (1);`},
		{"deferred foreign key violation", `CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE b (y REFERENCES p(id));
			PRAGMA defer_foreign_keys = ON; INSERT INTO a VALUES (5); INSERT INTO b VALUES (7);`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bad := map[string]string{"0001_a.sql": good["0001_a.sql"], "0002_b.sql": tc.sql}
			_, err := Open(context.Background(), cfg, testLog(t), nil, Options{}, set("c", bad))
			if err == nil {
				t.Fatal("Open with a failing migration succeeded")
			}
			if !strings.Contains(err.Error(), "migrate c to version 0002 (b)") {
				t.Errorf("error does not name the migration: %v", err)
			}
			raw := rawOpen(t, cfg.Path)
			var n int
			if err := raw.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'b'`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Error("table b of the failed migration exists")
			}
			if err := raw.QueryRow(`SELECT count(*) FROM a`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("rows inserted by the failed migration: %d", n)
			}
			if err := raw.QueryRow(`SELECT max(version) FROM schema_migrations WHERE component = 'c'`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Errorf("recorded version = %d, want 1", n)
			}
			raw.Close()
		})
	}
	// Fixed, it applies.
	fixed := map[string]string{"0001_a.sql": good["0001_a.sql"], "0002_b.sql": `CREATE TABLE b (y);`}
	db = openT(t, cfg, Options{}, set("c", fixed))
	if n := count(t, db.Read(), "b"); n != 0 {
		t.Fatalf("b has %d rows", n)
	}
}

func TestDowngradeRefused(t *testing.T) {
	cfg := testConfig(t)
	newer := map[string]string{"0001_a.sql": `CREATE TABLE a (x);`, "0002_b.sql": `CREATE TABLE b (x);`}
	db := openT(t, cfg, Options{}, set("c", newer))
	db.Close()
	before := fileBytes(t, cfg.Path)

	older := map[string]string{"0001_a.sql": newer["0001_a.sql"]}
	_, err := Open(context.Background(), cfg, testLog(t), nil, Options{}, set("c", older))
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open with an older binary: err = %v, want ErrSchemaTooNew", err)
	}
	for _, want := range []string{"version 2", "only up to 1", "newer zhiyin"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if string(fileBytes(t, cfg.Path)) != string(before) {
		t.Error("the refused Open changed the database file")
	}
	// A component this binary does not know is left alone.
	db = openT(t, cfg, Options{}, set("other", map[string]string{"0001_o.sql": `CREATE TABLE o (x);`}))
	db.Close()
}

func TestInvalidMigrationSets(t *testing.T) {
	a := `CREATE TABLE a (x);`
	tests := []struct {
		name string
		sets []MigrationSet
		want string
	}{
		{"gap", []MigrationSet{set("c", map[string]string{"0001_a.sql": a, "0003_c.sql": a})}, "version 0002 is missing"},
		{"does not start at 1", []MigrationSet{set("c", map[string]string{"0002_a.sql": a})}, "version 0001 is missing"},
		{"duplicate", []MigrationSet{set("c", map[string]string{"0001_a.sql": a, "0001_b.sql": a})}, "appears twice"},
		{"zero", []MigrationSet{set("c", map[string]string{"0000_a.sql": a})}, "start at 0001"},
		{"bad name", []MigrationSet{set("c", map[string]string{"1_a.sql": a})}, "NNNN_lowercase_name.sql"},
		{"upper case name", []MigrationSet{set("c", map[string]string{"0001_Add.sql": a})}, "NNNN_lowercase_name.sql"},
		{"empty file", []MigrationSet{set("c", map[string]string{"0001_a.sql": "  \n"})}, "is empty"},
		{"empty component", []MigrationSet{set("", map[string]string{"0001_a.sql": a})}, "component name"},
		{"bad component", []MigrationSet{set("Chan nels", map[string]string{"0001_a.sql": a})}, "component name"},
		{"nil FS", []MigrationSet{{Component: "c"}}, "no FS"},
		{"component twice", []MigrationSet{
			set("c", map[string]string{"0001_a.sql": a}),
			set("c", map[string]string{"0001_b.sql": a}),
		}, "given twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			_, err := Open(context.Background(), cfg, testLog(t), nil, Options{}, tc.sets...)
			if !errors.Is(err, ErrInvalidMigrations) {
				t.Fatalf("err = %v, want ErrInvalidMigrations", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestMigrationSetFromSubdirectory(t *testing.T) {
	// The way owners embed: files under migrations/, passed through fs.Sub.
	fsys := fstest.MapFS{
		"migrations/0001_a.sql": {Data: []byte(`CREATE TABLE a (x);`)},
		"migrations/0002_b.sql": {Data: []byte(`CREATE TABLE b (x);`)},
	}
	sub, err := fs.Sub(fsys, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	db := openT(t, testConfig(t), Options{}, MigrationSet{Component: "c", FS: sub})
	if n := count(t, db.Read(), "b"); n != 0 {
		t.Fatal(n)
	}
}

func TestHandEditedVersionTableRefused(t *testing.T) {
	cfg := testConfig(t)
	files := map[string]string{"0001_a.sql": `CREATE TABLE a (x);`, "0002_b.sql": `CREATE TABLE b (x);`}
	db := openT(t, cfg, Options{}, set("c", files))
	db.Close()
	raw := rawOpen(t, cfg.Path)
	if _, err := raw.Exec(`DELETE FROM schema_migrations WHERE component = 'c' AND version = 1`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	_, err := Open(context.Background(), cfg, testLog(t), nil, Options{}, set("c", files))
	if err == nil || !strings.Contains(err.Error(), "edited by hand") {
		t.Fatalf("err = %v, want a hand-edit error", err)
	}
}
