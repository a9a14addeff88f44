package inference

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct { unsigned long long total, free, used; } zy_nvml_mem;

// zy_dlopen opens name; on failure it copies dlerror()'s message into err
// within the same C call, because dlerror is per thread and a goroutine may
// move to another thread between two cgo calls.
static void *zy_dlopen(const char *name, char *err, size_t n) {
	void *h = dlopen(name, RTLD_LAZY | RTLD_LOCAL);
	if (h == NULL && n > 0) {
		const char *e = dlerror();
		snprintf(err, n, "%s", e ? e : "dlopen failed");
	}
	return h;
}
static void *zy_dlsym(void *h, const char *name) { return dlsym(h, name); }
static int zy_dlclose(void *h) { return dlclose(h); }

static int zy_call_void(void *fn) { return ((int (*)(void))fn)(); }
static int zy_call_uintp(void *fn, unsigned int *n) { return ((int (*)(unsigned int *))fn)(n); }
static int zy_call_intp(void *fn, int *n) { return ((int (*)(int *))fn)(n); }
static int zy_call_uint(void *fn, unsigned int n) { return ((int (*)(unsigned int))fn)(n); }
static int zy_nvml_handle(void *fn, unsigned int i, void **dev) { return ((int (*)(unsigned int, void **))fn)(i, dev); }
static int zy_nvml_memory(void *fn, void *dev, zy_nvml_mem *m) { return ((int (*)(void *, zy_nvml_mem *))fn)(dev, m); }
static int zy_nvml_name(void *fn, void *dev, char *buf, unsigned int n) { return ((int (*)(void *, char *, unsigned int))fn)(dev, buf, n); }
static int zy_nvml_string(void *fn, char *buf, unsigned int n) { return ((int (*)(char *, unsigned int))fn)(buf, n); }
static const char *zy_nvml_error(void *fn, int code) { return ((const char *(*)(int))fn)(code); }
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"
)

// Library names opened with dlopen; neither is linked, so zhiyin runs on
// machines without the NVIDIA driver.
const (
	nvmlLibrary     = "libnvidia-ml.so.1"
	cudaDriverLib   = "libcuda.so.1"
	cudaProviderLib = "libonnxruntime_providers_cuda.so"
	sharedProvLib   = "libonnxruntime_providers_shared.so"
)

// GPU describes one GPU as NVML reports it.
type GPU struct {
	Index       int    `json:"index"`
	Name        string `json:"name"`
	MemoryTotal uint64 `json:"memory_total_bytes"`
	MemoryUsed  uint64 `json:"memory_used_bytes"`
}

// dlib is a dlopen'ed library.
type dlib struct{ h unsafe.Pointer }

func dlopen(name string) (*dlib, error) {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	var buf [512]C.char
	h := C.zy_dlopen(cs, &buf[0], C.size_t(len(buf)))
	if h == nil {
		return nil, errors.New(C.GoString(&buf[0]))
	}
	return &dlib{h: h}, nil
}

func (l *dlib) sym(name string) (unsafe.Pointer, error) {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	p := C.zy_dlsym(l.h, cs)
	if p == nil {
		return nil, fmt.Errorf("symbol %s not found", name)
	}
	return p, nil
}

func (l *dlib) close() {
	if l != nil && l.h != nil {
		C.zy_dlclose(l.h)
		l.h = nil
	}
}

// nvml is an initialised NVML library. Safe for concurrent use.
type nvml struct {
	mu                                    sync.Mutex
	lib                                   *dlib
	shutdown, count, handle, memory, name unsafe.Pointer
	driverVersion, errString              unsafe.Pointer
}

// openNVML loads libnvidia-ml.so.1 and initialises it. The error says what
// is missing (no driver installed, no device).
func openNVML() (*nvml, error) {
	lib, err := dlopen(nvmlLibrary)
	if err != nil {
		return nil, fmt.Errorf("NVML not available (the NVIDIA driver is not installed): %v", err)
	}
	n := &nvml{lib: lib}
	syms := []struct {
		p    *unsafe.Pointer
		name string
	}{
		{&n.shutdown, "nvmlShutdown"}, {&n.count, "nvmlDeviceGetCount_v2"},
		{&n.handle, "nvmlDeviceGetHandleByIndex_v2"}, {&n.memory, "nvmlDeviceGetMemoryInfo"},
		{&n.name, "nvmlDeviceGetName"}, {&n.driverVersion, "nvmlSystemGetDriverVersion"},
		{&n.errString, "nvmlErrorString"},
	}
	for _, s := range syms {
		if *s.p, err = lib.sym(s.name); err != nil {
			lib.close()
			return nil, fmt.Errorf("%s: %v", nvmlLibrary, err)
		}
	}
	initFn, err := lib.sym("nvmlInit_v2")
	if err != nil {
		lib.close()
		return nil, fmt.Errorf("%s: %v", nvmlLibrary, err)
	}
	if rc := C.zy_call_void(initFn); rc != 0 {
		msg := n.errorString(int(rc))
		lib.close()
		return nil, fmt.Errorf("NVML init failed: %s", msg)
	}
	return n, nil
}

func (n *nvml) errorString(rc int) string {
	if n.errString == nil {
		return fmt.Sprintf("error %d", rc)
	}
	return C.GoString(C.zy_nvml_error(n.errString, C.int(rc)))
}

// close shuts NVML down. Nil-safe and idempotent.
func (n *nvml) close() {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.lib == nil {
		return
	}
	C.zy_call_void(n.shutdown)
	n.lib.close()
	n.lib = nil
}

// gpus lists the GPUs with their memory use.
func (n *nvml) gpus() ([]GPU, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.lib == nil {
		return nil, errors.New("NVML closed")
	}
	var cnt C.uint
	if rc := C.zy_call_uintp(n.count, &cnt); rc != 0 {
		return nil, fmt.Errorf("NVML device count: %s", n.errorString(int(rc)))
	}
	out := make([]GPU, 0, int(cnt))
	for i := 0; i < int(cnt); i++ {
		var dev unsafe.Pointer
		if rc := C.zy_nvml_handle(n.handle, C.uint(i), &dev); rc != 0 {
			return nil, fmt.Errorf("NVML device %d: %s", i, n.errorString(int(rc)))
		}
		var mem C.zy_nvml_mem
		if rc := C.zy_nvml_memory(n.memory, dev, &mem); rc != 0 {
			return nil, fmt.Errorf("NVML device %d memory: %s", i, n.errorString(int(rc)))
		}
		buf := make([]byte, 96)
		name := ""
		if rc := C.zy_nvml_name(n.name, dev, (*C.char)(unsafe.Pointer(&buf[0])), C.uint(len(buf))); rc == 0 {
			name = C.GoString((*C.char)(unsafe.Pointer(&buf[0])))
		}
		out = append(out, GPU{Index: i, Name: name, MemoryTotal: uint64(mem.total), MemoryUsed: uint64(mem.used)})
	}
	return out, nil
}

// driverVersionString returns the NVIDIA driver version.
func (n *nvml) driverVersionString() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.lib == nil {
		return ""
	}
	buf := make([]byte, 96)
	if rc := C.zy_nvml_string(n.driverVersion, (*C.char)(unsafe.Pointer(&buf[0])), C.uint(len(buf))); rc != 0 {
		return ""
	}
	return C.GoString((*C.char)(unsafe.Pointer(&buf[0])))
}

// usedMemory returns the memory in use on GPU index, or ok=false.
func (n *nvml) usedMemory(index int) (uint64, bool) {
	if n == nil {
		return 0, false
	}
	gpus, err := n.gpus()
	if err != nil || index < 0 || index >= len(gpus) {
		return 0, false
	}
	return gpus[index].MemoryUsed, true
}

// cudaDriverDevices loads libcuda.so.1, initialises the driver API and
// returns the device count and driver version (e.g. 13000). It is the probe
// used when NVML is absent.
func cudaDriverDevices() (count int, version int, err error) {
	lib, err := dlopen(cudaDriverLib)
	if err != nil {
		return 0, 0, fmt.Errorf("the NVIDIA CUDA driver is not installed: %v", err)
	}
	defer lib.close()
	initFn, err := lib.sym("cuInit")
	if err != nil {
		return 0, 0, err
	}
	if rc := C.zy_call_uint(initFn, 0); rc != 0 {
		if rc == 100 { // CUDA_ERROR_NO_DEVICE
			return 0, 0, nil
		}
		return 0, 0, fmt.Errorf("cuInit failed with CUDA error %d", int(rc))
	}
	if vfn, err := lib.sym("cuDriverGetVersion"); err == nil {
		var v C.int
		if C.zy_call_intp(vfn, &v) == 0 {
			version = int(v)
		}
	}
	cfn, err := lib.sym("cuDeviceGetCount")
	if err != nil {
		return 0, version, err
	}
	var n C.int
	if rc := C.zy_call_intp(cfn, &n); rc != 0 {
		return 0, version, fmt.Errorf("cuDeviceGetCount failed with CUDA error %d", int(rc))
	}
	return int(n), version, nil
}
