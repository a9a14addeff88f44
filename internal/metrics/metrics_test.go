package metrics

import (
	"io"
	"log/slog"
	"testing"
)

func TestRegistryGathers(t *testing.T) {
	reg := NewRegistry(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
	}
	for _, want := range []string{
		"zhiyin_build_info", "go_goroutines", "process_resident_memory_bytes",
		"zhiyin_host_cpu_seconds_total", "zhiyin_host_memory_total_bytes", "zhiyin_host_memory_available_bytes",
		"zhiyin_host_disk_free_bytes", "zhiyin_host_disk_total_bytes", "zhiyin_host_load", "zhiyin_host_cpus",
	} {
		if !have[want] {
			t.Errorf("missing metric %s", want)
		}
	}
}

func TestMissingDataDirLeavesDiskOut(t *testing.T) {
	reg := NewRegistry("/nonexistent/zhiyin-data", slog.New(slog.NewTextHandler(io.Discard, nil)))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "zhiyin_host_disk_free_bytes" {
			t.Error("disk gauge reported for a path that does not exist (must be left out, not zero)")
		}
	}
}
