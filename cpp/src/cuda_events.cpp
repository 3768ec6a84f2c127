// CUDA driver events through libcuda loaded at run time.
#include "energycore/cuda_events.hpp"

#include <cstdlib>

namespace energycore::cuda {

namespace {
using CUresult = int;
using CUevent = void*;
using CUstream = void*;
constexpr unsigned kEventDefault = 0;

std::string default_path() {
  const char* env = std::getenv("ENERGYCORE_CUDA_LIBRARY");
  return (env && *env) ? std::string(env) : std::string("libcuda.so.1");
}
}  // namespace

class Driver {
 public:
  explicit Driver(const std::string& path) : lib_(path) {
    if (!lib_.ok())
      throw Error(-1, "dlopen",
                  "could not load the CUDA driver '" + path + "': " + lib_.error() +
                      " (ENERGYCORE_CUDA_LIBRARY sets the path)");
    resolve(init, "cuInit");
    resolve(event_create, "cuEventCreate");
    resolve(event_record, "cuEventRecord");
    resolve(event_sync, "cuEventSynchronize");
    resolve(event_elapsed, "cuEventElapsedTime");
    resolve(event_destroy, "cuEventDestroy_v2");
    lib_.resolve(error_string, "cuGetErrorString");
  }

  void check(CUresult r, const char* function) const {
    if (r == 0) return;
    const char* text = nullptr;
    if (error_string) error_string(r, &text);
    throw Error(r, function,
                std::string(function) + " failed: " + (text ? text : "unknown error") +
                    " (CUDA error " + std::to_string(r) + ")");
  }

  CUresult (*init)(unsigned) = nullptr;
  CUresult (*event_create)(CUevent*, unsigned) = nullptr;
  CUresult (*event_record)(CUevent, CUstream) = nullptr;
  CUresult (*event_sync)(CUevent) = nullptr;
  CUresult (*event_elapsed)(float*, CUevent, CUevent) = nullptr;
  CUresult (*event_destroy)(CUevent) = nullptr;
  CUresult (*error_string)(CUresult, const char**) = nullptr;

 private:
  template <class F>
  void resolve(F*& f, const char* name) {
    if (!lib_.resolve(f, name))
      throw Error(-1, "dlsym",
                  "'" + lib_.path() + "' is not a usable CUDA driver: " + name + " is missing");
  }
  SharedLibrary lib_;
};

Runtime::Runtime(const std::string& path) : path_(path.empty() ? default_path() : path) {
  driver_ = std::make_unique<Driver>(path_);
  driver_->check(driver_->init(0), "cuInit");
}

Runtime::~Runtime() = default;

EventTimer::EventTimer(std::shared_ptr<const Runtime> rt) : rt_(std::move(rt)) {
  if (!rt_) throw std::invalid_argument("EventTimer: no CUDA runtime");
  const Driver& d = rt_->driver();
  d.check(d.event_create(&begin_, kEventDefault), "cuEventCreate");
  try {
    d.check(d.event_create(&end_, kEventDefault), "cuEventCreate");
  } catch (...) {
    d.event_destroy(begin_);
    throw;
  }
}

EventTimer::~EventTimer() {
  const Driver& d = rt_->driver();
  if (end_) d.event_destroy(end_);
  if (begin_) d.event_destroy(begin_);
}

void EventTimer::start(std::uintptr_t stream) {
  const Driver& d = rt_->driver();
  d.check(d.event_record(begin_, reinterpret_cast<CUstream>(stream)), "cuEventRecord");
  started_ = true;
  stopped_ = false;
}

void EventTimer::stop(std::uintptr_t stream) {
  if (!started_) throw std::logic_error("EventTimer: stop() before start()");
  const Driver& d = rt_->driver();
  d.check(d.event_record(end_, reinterpret_cast<CUstream>(stream)), "cuEventRecord");
  stopped_ = true;
}

double EventTimer::elapsed_s() {
  if (!stopped_) throw std::logic_error("EventTimer: elapsed_s() before stop()");
  const Driver& d = rt_->driver();
  d.check(d.event_sync(end_), "cuEventSynchronize");
  float ms = 0.0f;
  d.check(d.event_elapsed(&ms, begin_, end_), "cuEventElapsedTime");
  return 1e-3 * static_cast<double>(ms);
}

}  // namespace energycore::cuda
