// What NVML and the CUDA driver share: a library opened at run time (dlopen, closed by RAII)
// whose entry points are looked up by name, and an error that carries the library's own return
// code and the function that failed. Each library derives its own error type from ApiError, so
// that the bindings can raise a distinct Python exception for each.
#pragma once

#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

namespace energycore {

/// A call into a run-time-loaded library failed: `code` is the library's return code,
/// `function` the entry point (or "dlopen"/"dlsym" when the library itself was unusable).
class ApiError : public std::runtime_error {
 public:
  ApiError(int code, std::string function, const std::string& message)
      : std::runtime_error(message), code_(code), function_(std::move(function)) {}
  int code() const noexcept { return code_; }
  const std::string& function() const noexcept { return function_; }

 private:
  int code_;
  std::string function_;
};

/// A shared library opened with dlopen(RTLD_NOW | RTLD_LOCAL) and closed in the destructor.
class SharedLibrary {
 public:
  /// Opens `path`; on failure `ok()` is false and `error()` holds dlerror()'s text.
  explicit SharedLibrary(const std::string& path);
  ~SharedLibrary();
  SharedLibrary(const SharedLibrary&) = delete;
  SharedLibrary& operator=(const SharedLibrary&) = delete;

  bool ok() const noexcept { return handle_ != nullptr; }
  const std::string& path() const noexcept { return path_; }
  const std::string& error() const noexcept { return error_; }

  /// Sets `f` to the entry point `name` (nullptr when the library lacks it); returns whether
  /// it was found. dlsym returns void*; the conversion to a function pointer is conditionally
  /// supported and exact on every POSIX platform.
  template <class F>
  bool resolve(F*& f, const char* name) const noexcept {
    void* p = symbol(name);
    static_assert(sizeof(p) == sizeof(f), "function and object pointers differ in size");
    std::memcpy(&f, &p, sizeof(p));
    return f != nullptr;
  }

 private:
  void* symbol(const char* name) const noexcept;
  std::string path_;
  std::string error_;
  void* handle_ = nullptr;
};

}  // namespace energycore
