// The power-sampler thread: a timeline of (time, power per GPU) and its trapezoidal integral.
#include <algorithm>
#include <chrono>
#include <utility>

#include "energycore/nvml.hpp"

namespace energycore::nvml {

PowerSampler::PowerSampler(std::shared_ptr<const Session> session, std::vector<int> physical,
                           double period_s)
    : session_(std::move(session)), physical_(std::move(physical)), period_(period_s) {
  if (!session_) throw std::invalid_argument("PowerSampler: no NVML session");
  if (physical_.empty()) throw std::invalid_argument("PowerSampler: no GPU to sample");
  for (const int g : physical_)
    if (g < 0)
      throw std::invalid_argument("physical: GPU index " + std::to_string(g) + " is negative");
  if (!(period_s >= 1e-4 && period_s <= 60.0))
    throw std::invalid_argument("period_s: must be between 0.0001 and 60 seconds, got " +
                                std::to_string(period_s));
}

PowerSampler::~PowerSampler() { stop(); }

void PowerSampler::start() {
  const std::lock_guard<std::mutex> control(control_mu_);
  if (running_.load()) return;
  join_locked();  // a thread that died of an error is still joinable
  sample_now();   // the first sample, on the caller's thread, so errors surface here
  stop_.store(false);
  running_.store(true);
  try {
    thread_ = std::thread([this] { loop(); });
  } catch (...) {
    running_.store(false);
    throw;
  }
}

void PowerSampler::stop() {
  const std::lock_guard<std::mutex> control(control_mu_);
  join_locked();
}

void PowerSampler::join_locked() {
  {
    std::lock_guard<std::mutex> lk(wake_mu_);
    stop_.store(true);
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  running_.store(false);
}

void PowerSampler::fail(int code, std::string function, std::string message) {
  std::lock_guard<std::mutex> lk(mu_);
  if (!failed_) {
    failed_ = true;
    error_code_ = code;
    error_function_ = std::move(function);
    error_message_ = std::move(message);
  }
}

bool PowerSampler::failed() const {
  std::lock_guard<std::mutex> lk(mu_);
  return failed_;
}

Error PowerSampler::error() const {
  std::lock_guard<std::mutex> lk(mu_);
  if (!failed_) throw std::logic_error("error: the sampler has not failed");
  return Error(error_code_, error_function_, error_message_);
}

void PowerSampler::append(double t, const std::vector<double>& p) {
  std::lock_guard<std::mutex> lk(mu_);
  if (!t_.empty() && t < t_.back()) t = t_.back();  // two readers raced: keep time sorted
  t_.push_back(t);
  p_.insert(p_.end(), p.begin(), p.end());
}

void PowerSampler::sample_now() {
  std::vector<double> p(physical_.size());
  const double before = monotonic_s();
  try {
    for (std::size_t g = 0; g < physical_.size(); ++g)
      p[g] = 1e-3 * static_cast<double>(session_->power_mw(physical_[g]));
  } catch (const Error& e) {
    fail(e.code(), e.function(), e.what());
    throw;
  }
  append(0.5 * (before + monotonic_s()), p);
}

void PowerSampler::loop() {
  using clock = std::chrono::steady_clock;
  const auto period =
      std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(period_));
  auto next = clock::now() + period;
  while (!stop_.load()) {
    {
      std::unique_lock<std::mutex> lk(wake_mu_);
      if (wake_.wait_until(lk, next, [this] { return stop_.load(); })) break;
    }
    try {
      sample_now();
    } catch (const Error&) {
      break;  // kept in error_*; reported by integrate(), timeline() and error()
    } catch (const std::exception& e) {  // e.g. std::bad_alloc growing the timeline
      fail(-1, "PowerSampler", e.what());
      break;
    }
    next += period;
    const auto now = clock::now();
    if (next < now) next = now;  // fell behind (a slow read): do not burst to catch up
  }
  running_.store(false);  // the thread ends: by stop() or by an error
}

void PowerSampler::throw_if_failed() const {
  if (failed_) throw Error(error_code_, error_function_, error_message_);
}

std::size_t PowerSampler::size() const {
  std::lock_guard<std::mutex> lk(mu_);
  return t_.size() - first_;
}

std::size_t PowerSampler::count(double t0, double t1) const {
  std::lock_guard<std::mutex> lk(mu_);
  const auto b = t_.begin() + static_cast<std::ptrdiff_t>(first_);
  return static_cast<std::size_t>(std::upper_bound(b, t_.end(), t1) -
                                  std::lower_bound(b, t_.end(), t0));
}

std::vector<double> PowerSampler::integrate(double t0, double t1) const {
  if (!(t1 >= t0)) throw std::invalid_argument("integrate: need t0 <= t1");
  std::lock_guard<std::mutex> lk(mu_);
  throw_if_failed();
  const std::size_t G = physical_.size();
  std::vector<double> e(G, 0.0);
  const std::size_t n = t_.size() - first_;
  if (n == 0) throw std::logic_error("integrate: the sampler holds no sample");
  const double* t = t_.data() + first_;
  const double* p = p_.data() + first_ * G;
  // Power at time x: linear between samples, held constant before the first and after the last.
  auto power_at = [&](double x, std::size_t g) {
    if (x <= t[0]) return p[g];
    if (x >= t[n - 1]) return p[(n - 1) * G + g];
    const std::size_t k =
        static_cast<std::size_t>(std::upper_bound(t, t + n, x) - t);  // t[k-1] <= x < t[k]
    const double w = (x - t[k - 1]) / (t[k] - t[k - 1]);
    return (1 - w) * p[(k - 1) * G + g] + w * p[k * G + g];
  };
  const std::size_t lo = static_cast<std::size_t>(std::upper_bound(t, t + n, t0) - t);
  const std::size_t hi = static_cast<std::size_t>(std::lower_bound(t, t + n, t1) - t);
  for (std::size_t g = 0; g < G; ++g) {
    double prev_t = t0, prev_p = power_at(t0, g), acc = 0.0;
    for (std::size_t k = lo; k < hi; ++k) {
      acc += 0.5 * (prev_p + p[k * G + g]) * (t[k] - prev_t);
      prev_t = t[k];
      prev_p = p[k * G + g];
    }
    acc += 0.5 * (prev_p + power_at(t1, g)) * (t1 - prev_t);
    e[g] = acc;
  }
  return e;
}

Timeline PowerSampler::timeline(double t0, double t1) const {
  std::lock_guard<std::mutex> lk(mu_);
  throw_if_failed();
  const std::size_t G = physical_.size();
  const auto b = t_.begin() + static_cast<std::ptrdiff_t>(first_);
  const auto lo = std::lower_bound(b, t_.end(), t0) - t_.begin();
  const auto hi = std::upper_bound(b, t_.end(), t1) - t_.begin();
  Timeline out;
  out.n_gpus = static_cast<int>(G);
  out.t.assign(t_.begin() + lo, t_.begin() + hi);
  out.power_w.assign(p_.begin() + lo * static_cast<std::ptrdiff_t>(G),
                     p_.begin() + hi * static_cast<std::ptrdiff_t>(G));
  return out;
}

void PowerSampler::discard_before(double t) {
  std::lock_guard<std::mutex> lk(mu_);
  const auto b = t_.begin() + static_cast<std::ptrdiff_t>(first_);
  auto k = static_cast<std::size_t>(std::lower_bound(b, t_.end(), t) - t_.begin());
  if (k > first_) --k;  // keep one sample at or before t, for interpolation
  first_ = std::max(first_, k);
  if (first_ > 4096 && first_ * 2 > t_.size()) {  // compact when most of the buffer is dead
    const std::size_t G = physical_.size();
    t_.erase(t_.begin(), t_.begin() + static_cast<std::ptrdiff_t>(first_));
    p_.erase(p_.begin(), p_.begin() + static_cast<std::ptrdiff_t>(first_ * G));
    first_ = 0;
  }
}

}  // namespace energycore::nvml
