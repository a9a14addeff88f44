package inference

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Reasons a model asked to run on CUDA runs on the CPU; they are the values
// of the reason label of zhiyin_inference_provider_fallbacks_total.
const (
	FallbackNoProviderLibrary = "no_provider_library" // the ORT library has no CUDA provider next to it
	FallbackNoDriver          = "no_driver"           // libcuda/libnvidia-ml cannot be loaded
	FallbackNoDevice          = "no_device"           // the driver sees no GPU, or not the configured one
	FallbackProviderError     = "provider_error"      // ONNX Runtime refused the CUDA provider (CUDA/cuDNN libraries missing, version mismatch)
	FallbackSessionError      = "session_error"       // the session could not be created on CUDA
)

// CUDAStatus says whether the CUDA execution provider can be used.
type CUDAStatus struct {
	Usable bool `json:"usable"`
	// Reason is one of the Fallback* constants when not usable.
	Reason string `json:"reason,omitempty"`
	// Detail is a sentence saying what was found and what to do.
	Detail          string `json:"detail"`
	ProviderLibrary string `json:"provider_library"`
	DriverVersion   string `json:"driver_version,omitempty"`
	GPUs            []GPU  `json:"gpus,omitempty"`
}

// cudaFix is the one-line fix for a missing CUDA setup.
const cudaFix = "install the zhiyin-cuda add-on (or run scripts/fetch-deps.sh --cuda in a source tree and set inference.ort_library to third_party/onnxruntime-cuda/libonnxruntime.so.1), the NVIDIA driver, CUDA 13 and cuDNN 9; or set inference.provider: cpu"

// probeCUDA checks, without ONNX Runtime, what the CUDA provider needs: its
// library next to the ORT library, the NVIDIA driver and the device.
func probeCUDA(ortLib string, deviceID int) CUDAStatus {
	st := CUDAStatus{ProviderLibrary: filepath.Join(filepath.Dir(ortLib), cudaProviderLib)}
	if ortLib == "" {
		st.Reason, st.Detail = FallbackNoProviderLibrary, "no ONNX Runtime library loaded"
		return st
	}
	if _, err := os.Stat(st.ProviderLibrary); err != nil {
		st.Reason = FallbackNoProviderLibrary
		st.Detail = fmt.Sprintf("%s not found: %s is a CPU-only ONNX Runtime; %s", st.ProviderLibrary, ortLib, gpuSummary(&st))
		return st
	}
	count := 0
	if n, err := openNVML(); err == nil {
		st.DriverVersion = n.driverVersionString()
		gpus, gerr := n.gpus()
		n.close()
		if gerr != nil {
			st.Reason, st.Detail = FallbackNoDevice, gerr.Error()
			return st
		}
		st.GPUs, count = gpus, len(gpus)
	} else {
		c, v, derr := cudaDriverDevices()
		if derr != nil {
			st.Reason, st.Detail = FallbackNoDriver, derr.Error()
			return st
		}
		if v > 0 {
			st.DriverVersion = "CUDA " + strconv.Itoa(v/1000) + "." + strconv.Itoa(v%1000/10)
		}
		count = c
	}
	switch {
	case count == 0:
		st.Reason, st.Detail = FallbackNoDevice, "the NVIDIA driver sees no GPU"
	case deviceID >= count:
		st.Reason, st.Detail = FallbackNoDevice, fmt.Sprintf("inference.cuda.device_id is %d but only %d GPU(s) are present", deviceID, count)
	default:
		st.Usable = true
		st.Detail = fmt.Sprintf("%d GPU(s), provider %s", count, st.ProviderLibrary)
	}
	return st
}

// gpuSummary says what the NVIDIA driver reports, for messages about a
// missing provider library: the GPUs are there or not regardless. It fills
// st's driver version and GPUs when NVML answers.
func gpuSummary(st *CUDAStatus) string {
	n, err := openNVML()
	if err != nil {
		if c, v, derr := cudaDriverDevices(); derr == nil {
			return fmt.Sprintf("NVIDIA driver (CUDA %d.%d) sees %d GPU(s)", v/1000, v%1000/10, c)
		}
		return "no NVIDIA driver: " + err.Error()
	}
	defer n.close()
	st.DriverVersion = n.driverVersionString()
	gpus, err := n.gpus()
	if err != nil {
		return "NVIDIA driver " + st.DriverVersion + ": " + err.Error()
	}
	st.GPUs = gpus
	if len(gpus) == 0 {
		return "NVIDIA driver " + st.DriverVersion + " sees no GPU"
	}
	names := make([]string, len(gpus))
	for i, g := range gpus {
		names[i] = fmt.Sprintf("%d: %s", g.Index, g.Name)
	}
	return fmt.Sprintf("NVIDIA driver %s sees %d GPU(s) (%s)", st.DriverVersion, len(gpus), strings.Join(names, "; "))
}

// cudaOptions maps the configuration to CUDA provider option keys.
func cudaOptions(c CUDAConfig) map[string]string {
	m := map[string]string{
		"device_id":                 strconv.Itoa(c.DeviceID),
		"do_copy_in_default_stream": "0",
		"arena_extend_strategy":     "kSameAsRequested",
		"cudnn_conv_algo_search":    "HEURISTIC",
	}
	if c.CopyInDefaultStream {
		m["do_copy_in_default_stream"] = "1"
	}
	if c.ArenaExtendStrategy == "next_power_of_two" {
		m["arena_extend_strategy"] = "kNextPowerOfTwo"
	}
	switch c.CuDNNConvAlgoSearch {
	case "exhaustive":
		m["cudnn_conv_algo_search"] = "EXHAUSTIVE"
	case "default":
		m["cudnn_conv_algo_search"] = "DEFAULT"
	}
	if c.MemoryLimit > 0 {
		m["gpu_mem_limit"] = strconv.FormatInt(int64(c.MemoryLimit), 10)
	}
	return m
}
