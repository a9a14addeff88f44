package lanes

import (
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/zhiyin/zhiyin/internal/config"
)

func TestLaneString(t *testing.T) {
	for _, tc := range []struct {
		l    Lane
		want string
	}{{Urgent, "urgent"}, {Normal, "normal"}, {Batch, "batch"}, {Lane(7), "lane(7)"}, {Lane(-1), "lane(-1)"}} {
		if got := tc.l.String(); got != tc.want {
			t.Errorf("%d.String() = %q, want %q", int(tc.l), got, tc.want)
		}
	}
}

func TestParseLane(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Lane
		err  bool
	}{
		{"urgent", Urgent, false},
		{"normal", Normal, false},
		{"batch", Batch, false},
		{" Urgent ", Urgent, false},
		{"BATCH", Batch, false},
		{"", 0, true},
		{"fast", 0, true},
		{"紧急", 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseLane(tc.in)
			if tc.err {
				if !errors.Is(err, ErrUnknownLane) {
					t.Fatalf("ParseLane(%q) error = %v, want ErrUnknownLane", tc.in, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseLane(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestLaneYAML(t *testing.T) {
	var v struct {
		Lane Lane `yaml:"lane"`
	}
	if err := yaml.Unmarshal([]byte("lane: urgent\n"), &v); err != nil || v.Lane != Urgent {
		t.Fatalf("unmarshal: %v %v", v.Lane, err)
	}
	if err := yaml.Unmarshal([]byte("lane: soon\n"), &v); !errors.Is(err, ErrUnknownLane) {
		t.Fatalf("unmarshal bad lane: %v", err)
	}
	v.Lane = Batch
	b, err := yaml.Marshal(v)
	if err != nil || string(b) != "lane: batch\n" {
		t.Fatalf("marshal: %q %v", b, err)
	}
	if _, err := Lane(9).MarshalText(); !errors.Is(err, ErrUnknownLane) {
		t.Fatalf("marshal bad lane: %v", err)
	}
}

func TestDefaultConfigValid(t *testing.T) {
	cfg := DefaultConfig()
	v := config.NewValidator("lanes")
	cfg.Validate(v)
	if err := v.Err(); err != nil {
		t.Fatal(err)
	}
	if cfg.Normal.Workers < 8 || cfg.Urgent.Workers < 1 || cfg.Batch.Workers < 1 {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want []string
	}{
		{"zero workers", func(c *Config) { c.Urgent.Workers = 0 }, []string{"lanes.urgent.workers: must be between 1 and 4096, got 0"}},
		{"too many workers", func(c *Config) { c.Batch.Workers = 5000 }, []string{"lanes.batch.workers"}},
		{"zero queue", func(c *Config) { c.Normal.QueueSize = 0 }, []string{"lanes.normal.queue_size: must be between 1 and 1000000, got 0"}},
		{"huge queue", func(c *Config) { c.Normal.QueueSize = 1_000_001 }, []string{"lanes.normal.queue_size"}},
		{"several", func(c *Config) { *c = Config{} }, []string{
			"lanes.urgent.workers", "lanes.urgent.queue_size", "lanes.normal.workers",
			"lanes.normal.queue_size", "lanes.batch.workers", "lanes.batch.queue_size",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mod(&cfg)
			v := config.NewValidator("lanes")
			cfg.Validate(v)
			var errs config.Errors
			if !errors.As(v.Err(), &errs) || len(errs) != len(tc.want) {
				t.Fatalf("errors = %v, want %d", v.Err(), len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want prefix %q", i, errs[i].Error(), w)
				}
			}
		})
	}
}

func TestConfigDecode(t *testing.T) {
	var cfg Config
	src := "urgent: {workers: 3, queue_size: 30}\nnormal: {workers: 4, queue_size: 40}\nbatch: {workers: 1, queue_size: 10}\n"
	if err := yaml.Unmarshal([]byte(src), &cfg); err != nil {
		t.Fatal(err)
	}
	want := Config{Urgent: LaneConfig{3, 30}, Normal: LaneConfig{4, 40}, Batch: LaneConfig{1, 10}}
	if cfg != want {
		t.Fatalf("decoded %+v, want %+v", cfg, want)
	}
}

func TestClassifier(t *testing.T) {
	c := NewClassifier(
		[]string{"紧急", "投诉", "报警", "ＳＯＳ", ""},
		[]string{"complaint"},
		[]string{"批量", "导出"},
		[]string{"bulk_export"},
	)
	for _, tc := range []struct {
		text string
		want Lane
	}{
		{"我要投诉你们的快递员", Urgent},
		{"sos 救命", Urgent},
		{"批量导出订单", Batch},
		{"紧急！批量退款", Urgent}, // urgent wins over batch
		{"我的快递到哪了", Normal},
		{"", Normal},
	} {
		if got := c.ByText(tc.text); got != tc.want {
			t.Errorf("ByText(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
	for _, tc := range []struct {
		intent  string
		current Lane
		want    Lane
	}{
		{"complaint", Normal, Urgent},
		{"complaint", Batch, Urgent},
		{"complaint", Urgent, Urgent},
		{"bulk_export", Normal, Normal}, // never lowered
		{"bulk_export", Urgent, Urgent},
		{"bulk_export", Batch, Batch},
		{"track_parcel", Batch, Batch},
		{"track_parcel", Urgent, Urgent},
		{"", Normal, Normal},
	} {
		if got := c.ByIntent(tc.intent, tc.current); got != tc.want {
			t.Errorf("ByIntent(%q, %v) = %v, want %v", tc.intent, tc.current, got, tc.want)
		}
	}
	for intent, want := range map[string]Lane{"complaint": Urgent, "bulk_export": Batch, "greet": Normal} {
		if got := c.IntentLane(intent); got != want {
			t.Errorf("IntentLane(%q) = %v, want %v", intent, got, want)
		}
	}
	var nilC *Classifier
	if nilC.ByText("投诉") != Normal || nilC.ByIntent("complaint", Batch) != Batch {
		t.Error("nil classifier must classify everything as given / normal")
	}
}

func FuzzParseLane(f *testing.F) {
	for _, s := range []string{"urgent", " Normal ", "BATCH", "", "紧急", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLane(s)
		if err != nil {
			if !errors.Is(err, ErrUnknownLane) {
				t.Fatalf("error %v does not wrap ErrUnknownLane", err)
			}
			return
		}
		if l2, err := ParseLane(l.String()); err != nil || l2 != l {
			t.Fatalf("%q → %v does not round-trip", s, l)
		}
	})
}
