// CUDA driver events on a caller's stream, the driver loaded at run time (dlopen).
//
// energycore needs neither the CUDA toolkit at build time nor torch/CuPy at run time: the
// caller passes a raw stream handle (e.g. torch.cuda.current_stream().cuda_stream) and the
// events are recorded on it through libcuda.so.1 (or ENERGYCORE_CUDA_LIBRARY). The caller's
// CUDA context must be current on the calling thread, as it is for torch or CuPy users.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "energycore/dynlib.hpp"

namespace energycore::cuda {

/// A CUDA driver call failed: `code` is the CUresult, `function` the driver entry point
/// (or "dlopen"/"dlsym").
class Error : public ApiError {
 public:
  using ApiError::ApiError;
};

class Driver;  // the dlopen handle and the entry points (cuda_events.cpp)

/// The CUDA driver, opened and initialised (cuInit) once per object.
class Runtime {
 public:
  explicit Runtime(const std::string& path = "");
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  const std::string& path() const noexcept { return path_; }
  const Driver& driver() const { return *driver_; }

 private:
  std::string path_;
  std::unique_ptr<Driver> driver_;
};

/// A pair of events timing a span of work on one stream: start() records the first event,
/// stop() the second, elapsed_s() waits for the second and returns the time between them.
/// The events are destroyed with the object.
class EventTimer {
 public:
  explicit EventTimer(std::shared_ptr<const Runtime> rt);
  ~EventTimer();
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;

  void start(std::uintptr_t stream);
  void stop(std::uintptr_t stream);
  /// Seconds between the two events; blocks until the stop event completed.
  double elapsed_s();

 private:
  std::shared_ptr<const Runtime> rt_;
  void* begin_ = nullptr;
  void* end_ = nullptr;
  bool started_ = false, stopped_ = false;
};

}  // namespace energycore::cuda
