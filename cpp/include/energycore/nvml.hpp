// NVML loaded at run time: device enumeration, the total-energy counter, instant power, and a
// power-sampler thread that keeps a timeline and integrates it.
//
// Nothing NVIDIA is needed at build time: the few NVML types and constants used are declared
// here, and libnvidia-ml.so.1 (or the path in ENERGYCORE_NVML_LIBRARY) is opened with dlopen
// when a Session is created. Every NVML failure is thrown as nvml::Error carrying the NVML
// return code and the function that failed; no function ever returns a made-up number.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "energycore/dynlib.hpp"

namespace energycore::nvml {

/// NVML return codes that energycore distinguishes (values of nvmlReturn_t).
enum Code : int {
  kSuccess = 0,
  kUninitialized = 1,
  kInvalidArgument = 2,
  kNotSupported = 3,
  kNoPermission = 4,
  kNotFound = 6,
  kDriverNotLoaded = 9,
  kLibraryNotFound = 12,
  kFunctionNotFound = 13,
  kGpuIsLost = 15,
  kUnknown = 999,
};

/// An NVML call failed: `code` is the nvmlReturn_t value, `function` the NVML entry point
/// (or "dlopen"/"dlsym" when the library itself could not be used).
class Error : public ApiError {
 public:
  using ApiError::ApiError;
};

/// Seconds on the monotonic clock shared by the sampler and the Python meter.
double monotonic_s();

/// One device visible to the process. A MIG device is measured through its parent GPU.
struct DeviceInfo {
  int index = 0;              ///< position in the visible list (the CUDA ordinal)
  std::string uuid;           ///< UUID of the visible device (GPU-... or MIG-...)
  std::string name;           ///< product name of the physical GPU
  bool is_mig = false;        ///< the visible device is a MIG instance
  int physical = 0;           ///< NVML index of the physical GPU that is measured
  std::string physical_uuid;  ///< UUID of that physical GPU
};

class Library;  // the dlopen handle and the resolved entry points (nvml.cpp)

/// An initialised NVML: nvmlInit_v2 on construction, nvmlShutdown in the destructor.
/// Thread-safe for reading counters and power (NVML itself is thread-safe).
class Session {
 public:
  /// Opens `path` (empty: ENERGYCORE_NVML_LIBRARY, else "libnvidia-ml.so.1") and initialises.
  explicit Session(const std::string& path = "");
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  /// The library path that was opened.
  const std::string& path() const noexcept { return path_; }
  /// Number of physical GPUs NVML sees.
  int physical_count() const;
  /// The visible devices: `visible` is the value of CUDA_VISIBLE_DEVICES (indices, GPU- or MIG-
  /// UUIDs or UUID prefixes, comma-separated); `has_visible` false means "all GPUs".
  std::vector<DeviceInfo> devices(bool has_visible, const std::string& visible) const;
  /// Total energy since driver load, millijoules (nvmlDeviceGetTotalEnergyConsumption).
  unsigned long long energy_mj(int physical) const;
  /// Instant power in milliwatts: field NVML_FI_DEV_POWER_INSTANT, else nvmlDeviceGetPowerUsage.
  unsigned int power_mw(int physical) const;
  /// Whether the energy counter answers on this GPU (NOT_SUPPORTED gives false; others throw).
  bool counter_supported(int physical) const;
  /// The energy counters of several GPUs (mJ) and the monotonic time of the reading (the
  /// midpoint of the reads), in one call so that time and counters belong together.
  std::pair<double, std::vector<unsigned long long>> energy_snapshot(
      const std::vector<int>& physical) const;

 private:
  void* handle(int physical) const;
  std::string path_;
  std::unique_ptr<Library> lib_;
  mutable std::atomic<int> field_ok_{-1};  // -1 unknown, 1 the field works, 0 use PowerUsage
};

/// A copy of part of the sampler timeline: times (s) and power (W), row-major n x n_gpus.
struct Timeline {
  std::vector<double> t;
  std::vector<double> power_w;
  int n_gpus = 0;
};

/// A thread that reads the power of some GPUs every `period_s` seconds into a timeline.
/// The thread is owned by the object: stop() or the destructor joins it. If a read fails
/// (GPU lost, ...) or the thread dies of any other error, sampling stops, `running()` turns false
/// and the error is kept; integrate() and timeline() then throw it, and `error()` returns it.
/// start() and stop() may be called from any thread, concurrently.
class PowerSampler {
 public:
  PowerSampler(std::shared_ptr<const Session> session, std::vector<int> physical, double period_s);
  ~PowerSampler();
  PowerSampler(const PowerSampler&) = delete;
  PowerSampler& operator=(const PowerSampler&) = delete;

  /// Start the thread (one sample is taken before it returns). A thread that cannot be created
  /// throws std::system_error and leaves the sampler stopped.
  void start();
  void stop();  ///< stop and join; idempotent; never throws the sampling error
  bool running() const noexcept { return running_.load(); }
  double period_s() const noexcept { return period_; }
  int n_gpus() const noexcept { return static_cast<int>(physical_.size()); }
  std::size_t size() const;  ///< samples held
  void sample_now();         ///< take one sample on the calling thread
  /// Energy per GPU (J) between t0 and t1: trapezoids over the samples, the power at t0 and t1
  /// interpolated (held constant outside the sampled range). Throws the sampling error if any.
  std::vector<double> integrate(double t0, double t1) const;
  /// The samples with t0 <= t <= t1.
  Timeline timeline(double t0, double t1) const;
  /// Drop samples older than t (keeping the last one before t, for interpolation).
  void discard_before(double t);
  /// Number of samples in [t0, t1].
  std::size_t count(double t0, double t1) const;
  /// Whether sampling failed, and with what: (code, function, message) of the error.
  bool failed() const;
  Error error() const;  ///< the kept error; std::logic_error when none

 private:
  void loop();
  void append(double t, const std::vector<double>& p);
  void throw_if_failed() const;
  void fail(int code, std::string function, std::string message);
  void join_locked();  // with control_mu_ held

  std::shared_ptr<const Session> session_;
  std::vector<int> physical_;
  double period_;
  std::mutex control_mu_;  // serialises start() and stop(), which own thread_
  std::atomic<bool> stop_{false};
  std::mutex wake_mu_;  // with wake_, lets stop() interrupt the wait between samples
  std::condition_variable wake_;
  std::atomic<bool> running_{false};
  mutable std::mutex mu_;  // guards the timeline and the error
  std::vector<double> t_;  // sample times
  std::vector<double> p_;  // power, row-major samples x gpus
  std::size_t first_ = 0;  // first live sample (discard_before moves it)
  bool failed_ = false;
  int error_code_ = 0;
  std::string error_function_, error_message_;
  std::thread thread_;
};

}  // namespace energycore::nvml
