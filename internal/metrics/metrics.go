// Package metrics builds the daemon's Prometheus registry: Go runtime and
// process collectors, build information, and host CPU, memory, load and disk
// gauges read with gopsutil at scrape time. Components register their own
// metrics on the registry they are given; nothing here is global.
package metrics

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/shirou/gopsutil/v3/cpu"
	"github.com/shirou/gopsutil/v3/disk"
	"github.com/shirou/gopsutil/v3/load"
	"github.com/shirou/gopsutil/v3/mem"

	"github.com/zhiyin/zhiyin/internal/buildinfo"
)

// Namespace prefixes every zhiyin metric.
const Namespace = "zhiyin"

// NewRegistry returns a registry with the standard collectors. dataDir is
// the path whose file system the disk gauges describe.
func NewRegistry(dataDir string, log *slog.Logger) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newBuildInfo(),
		&hostCollector{dataDir: dataDir, log: log},
	)
	return reg
}

func newBuildInfo() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help: "Always 1; the labels say which build is running.",
		ConstLabels: prometheus.Labels{
			"version": buildinfo.Version, "commit": buildinfo.Commit,
			"goversion": buildinfo.GoVersion(),
		},
	})
	g.Set(1)
	return g
}

var (
	descCPU = prometheus.NewDesc(Namespace+"_host_cpu_seconds_total",
		"Seconds all CPUs of the host spent in each mode.", []string{"mode"}, nil)
	descCPUCount = prometheus.NewDesc(Namespace+"_host_cpus",
		"Logical CPUs of the host.", nil, nil)
	descMemTotal = prometheus.NewDesc(Namespace+"_host_memory_total_bytes",
		"Physical memory of the host.", nil, nil)
	descMemAvail = prometheus.NewDesc(Namespace+"_host_memory_available_bytes",
		"Memory available to new processes without swapping.", nil, nil)
	descLoad = prometheus.NewDesc(Namespace+"_host_load",
		"Host load average.", []string{"window"}, nil)
	descDiskTotal = prometheus.NewDesc(Namespace+"_host_disk_total_bytes",
		"Size of the file system holding the data directory.", []string{"path"}, nil)
	descDiskFree = prometheus.NewDesc(Namespace+"_host_disk_free_bytes",
		"Free space on the file system holding the data directory (for unprivileged users).", []string{"path"}, nil)
)

// hostCollector reads host figures at scrape time. A figure that cannot be
// read is left out (and logged at debug), never reported as zero.
type hostCollector struct {
	dataDir string
	log     *slog.Logger
}

func (h *hostCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCPU, descCPUCount, descMemTotal, descMemAvail, descLoad, descDiskTotal, descDiskFree} {
		ch <- d
	}
}

func (h *hostCollector) Collect(ch chan<- prometheus.Metric) {
	if ts, err := cpu.Times(false); err == nil && len(ts) == 1 {
		t := ts[0]
		for mode, v := range map[string]float64{
			"user": t.User, "system": t.System, "idle": t.Idle, "iowait": t.Iowait,
			"nice": t.Nice, "irq": t.Irq, "softirq": t.Softirq, "steal": t.Steal,
		} {
			ch <- prometheus.MustNewConstMetric(descCPU, prometheus.CounterValue, v, mode)
		}
	} else if err != nil {
		h.log.Debug("host metrics: cpu times", "err", err)
	}
	if n, err := cpu.Counts(true); err == nil {
		ch <- prometheus.MustNewConstMetric(descCPUCount, prometheus.GaugeValue, float64(n))
	}
	if vm, err := mem.VirtualMemory(); err == nil {
		ch <- prometheus.MustNewConstMetric(descMemTotal, prometheus.GaugeValue, float64(vm.Total))
		ch <- prometheus.MustNewConstMetric(descMemAvail, prometheus.GaugeValue, float64(vm.Available))
	} else {
		h.log.Debug("host metrics: memory", "err", err)
	}
	if la, err := load.Avg(); err == nil {
		ch <- prometheus.MustNewConstMetric(descLoad, prometheus.GaugeValue, la.Load1, "1m")
		ch <- prometheus.MustNewConstMetric(descLoad, prometheus.GaugeValue, la.Load5, "5m")
		ch <- prometheus.MustNewConstMetric(descLoad, prometheus.GaugeValue, la.Load15, "15m")
	}
	if du, err := disk.Usage(h.dataDir); err == nil {
		ch <- prometheus.MustNewConstMetric(descDiskTotal, prometheus.GaugeValue, float64(du.Total), h.dataDir)
		ch <- prometheus.MustNewConstMetric(descDiskFree, prometheus.GaugeValue, float64(du.Free), h.dataDir)
	} else {
		h.log.Debug("host metrics: disk usage", "path", h.dataDir, "err", err)
	}
}
