// The shared thread pool (parallel.hpp).
#include "energycore/parallel.hpp"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace energycore {

int hardware_threads() noexcept {
  static const int hw = [] {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<int>(n);
  }();
  return hw;
}

int resolve_threads(int requested) noexcept {
  const int hw = hardware_threads();
  return requested <= 0 ? hw : std::min(requested, hw);
}

namespace {

// Workers and waiting callers spin (yielding) this many times before sleeping: during a GBDT fit
// loops follow each other within microseconds, and waking a sleeping thread takes much longer.
constexpr int kSpin = 1024;

/// One parallel loop. Threads claim blocks of `grain` indices until none are left; the caller
/// waits until `done` reaches n. Helpers hold it by shared_ptr, so a helper that starts after
/// the loop has finished finds no index to claim and never touches `task`.
struct Job {
  const std::function<void(Index)>* task = nullptr;
  Index n = 0;
  Index grain = 1;
  std::atomic<Index> next{0};
  std::atomic<Index> done{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex mu;
  std::condition_variable finished;

  void work() {
    for (Index i0 = next.fetch_add(grain); i0 < n; i0 = next.fetch_add(grain)) {
      const Index i1 = std::min(n, i0 + grain);
      if (!failed.load(std::memory_order_relaxed)) {
        try {
          for (Index i = i0; i < i1; ++i) (*task)(i);
        } catch (...) {
          const std::lock_guard<std::mutex> lock(mu);
          if (!error) error = std::current_exception();
          failed.store(true);
        }
      }
      if (done.fetch_add(i1 - i0) + (i1 - i0) == n) {
        const std::lock_guard<std::mutex> lock(mu);
        finished.notify_all();
      }
    }
  }

  void wait() {
    for (int s = 0; s < kSpin && done.load() != n; ++s) std::this_thread::yield();
    if (done.load() != n) {
      std::unique_lock<std::mutex> lock(mu);
      finished.wait(lock, [&] { return done.load() == n; });
    }
  }
};

class Pool {
 public:
  Pool() : capacity_(hardware_threads() - 1) { workers_.reserve(static_cast<size_t>(capacity_)); }
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  // Never destroyed (see pool()): workers sleep on the pool's own members until the process ends.

  /// Starts workers until there are `want` (at most the capacity); returns how many there are.
  /// A failure to start one (std::system_error, std::bad_alloc) stops the growth for good.
  int grow(int want) {
    want = std::min(want, capacity_);
    const std::lock_guard<std::mutex> lock(mu_);
    while (static_cast<int>(workers_.size()) < want && !grow_failed_) {
      try {
        workers_.emplace_back([this] { loop(); });
      } catch (const std::exception&) {
        grow_failed_ = true;
      }
    }
    return static_cast<int>(workers_.size());
  }

  void submit(const std::shared_ptr<Job>& job, int helpers) {
    {
      const std::lock_guard<std::mutex> lock(mu_);
      for (int h = 0; h < helpers; ++h) queue_.push_back(job);
      pending_.fetch_add(helpers);
    }
    if (helpers == 1) wake_.notify_one();
    else wake_.notify_all();
  }

 private:
  void loop() {
    for (;;) {
      for (int s = 0; s < kSpin && pending_.load() == 0; ++s) std::this_thread::yield();
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return !queue_.empty(); });
        job = std::move(queue_.front());
        queue_.pop_front();
        pending_.fetch_sub(1);
      }
      job->work();
    }
  }

  const int capacity_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::atomic<int> pending_{0};
  std::vector<std::thread> workers_;
  bool grow_failed_ = false;
};

std::mutex g_pool_mu;
Pool* g_pool = nullptr;

// In a forked child the parent's workers do not exist: the child starts a pool of its own (the
// parent's is left alone, its mutexes may be held by threads that are gone).
void forget_pool_in_child() noexcept { g_pool = nullptr; }

Pool& pool() {
  const std::lock_guard<std::mutex> lock(g_pool_mu);
  if (!g_pool) {
    static const bool registered = [] {
      pthread_atfork(nullptr, nullptr, forget_pool_in_child);
      return true;
    }();
    (void)registered;
    g_pool = new Pool();  // intentionally never deleted (no join at exit, no static-order issue)
  }
  return *g_pool;
}

}  // namespace

void parallel_for(Index n, int n_threads, const std::function<void(Index)>& task) {
  if (n <= 0) return;
  const int nt = static_cast<int>(std::min<Index>(resolve_threads(std::max(1, n_threads)), n));
  Pool* p = nt > 1 ? &pool() : nullptr;
  const int helpers = p ? std::min(nt - 1, p->grow(nt - 1)) : 0;
  if (helpers <= 0) {
    for (Index i = 0; i < n; ++i) task(i);
    return;
  }
  auto job = std::make_shared<Job>();
  job->task = &task;
  job->n = n;
  // Blocks of indices: a few per thread, so that fine-grained loops do not contend on `next`
  // while uneven ones still balance.
  job->grain = std::max<Index>(1, n / (8 * static_cast<Index>(helpers + 1)));
  p->submit(job, helpers);
  job->work();
  job->wait();
  assert(job->done.load() == n);
  if (job->error) std::rethrow_exception(job->error);
}

}  // namespace energycore
