// The one thread pool of the core: every capability's parallel loops run on it.
//
// The pool is created on first use and grows on demand up to the machine's hardware threads minus
// one (the calling thread always works too). A thread that cannot be created (std::system_error,
// say under an address-space or process limit) is not an error: the loop runs on the threads the
// pool already has, or inline on the caller. Loops may nest and may be started from several
// threads at once; a loop's caller drives it to completion, so neither deadlocks.
#pragma once

#include <functional>

#include "energycore/types.hpp"

namespace energycore {

/// The machine's hardware threads (std::thread::hardware_concurrency(), at least 1).
int hardware_threads() noexcept;

/// Number of threads to use for `requested`: <= 0 means all hardware threads, and no request
/// gets more than the machine has.
int resolve_threads(int requested) noexcept;

/// Runs `task(i)` for every i in [0, n) on up to `n_threads` threads (capped at the hardware
/// threads); `n_threads` <= 1 runs the loop inline on the calling thread, in order. Indices are
/// handed out dynamically, so tasks must write to disjoint places and not depend on which thread
/// runs them. The first exception thrown by a task is re-thrown on the caller once every started
/// task has finished; the indices not yet started are skipped.
void parallel_for(Index n, int n_threads, const std::function<void(Index)>& task);

/// A thread budget over the shared pool, for code that sizes its work blocks by the thread count.
class Workers {
 public:
  explicit Workers(int n_threads) noexcept : n_(resolve_threads(n_threads < 1 ? 1 : n_threads)) {}
  /// The number of threads loops run on (the caller included).
  int size() const noexcept { return n_; }
  void run(Index n, const std::function<void(Index)>& task) const { parallel_for(n, n_, task); }

 private:
  int n_;
};

}  // namespace energycore
