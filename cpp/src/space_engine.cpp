// Enumeration, filtering and the reductions of the configuration space (space.hpp); scoring is
// in space_scoring.cpp.
// Points are walked in chunks of consecutive mixed-radix indices (last axis fastest); each chunk
// decodes its first index once and then steps an odometer. Chunks run on lm::parallel_for and
// their partial results are merged in chunk order, so answers do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>

#include "energycore/lm.hpp"
#include "energycore/parallel.hpp"
#include "energycore/space.hpp"

namespace energycore::space {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr Index kChunk = Index(1) << 15;
/// At most this many chunks: per-chunk partial results then take bounded memory however large
/// the space (a space of 2^60 points with nothing valid needs no 2^45 result slots).
constexpr Index kMaxChunks = Index(1) << 14;

/// Points per chunk: kChunk, or more for spaces of more than kChunk * kMaxChunks points.
Index chunk_of(Index size) noexcept {
  const Index per = size / kMaxChunks + (size % kMaxChunks != 0);
  return std::max(kChunk, per);
}

bool truthy(double v) noexcept { return v != 0.0 && !std::isnan(v); }

/// Valid points waiting to be scored as one batch (ModelTemplate::batch shares work between
/// rows), then filtered by `where` and visited in their order. flush() scores what is left.
template <class Score, class Visit>
class Deferred {
 public:
  Deferred(size_t n_slots, const Program& where, Score score, Visit& visit)
      : ns_(n_slots), where_(where), score_(std::move(score)), visit_(visit) {}
  void push(Index i, const double* slots) {
    idx_.push_back(i);
    slots_.insert(slots_.end(), slots, slots + ns_);
    if (idx_.size() == kBatch) flush();
  }
  void flush() {
    if (idx_.empty()) return;
    score_(slots_.data(), idx_.size());
    for (size_t r = 0; r < idx_.size(); ++r) {
      const double* p = &slots_[r * ns_];
      if (where_.empty() || truthy(where_.eval(p))) visit_(idx_[r], p);
    }
    idx_.clear();
    slots_.clear();
  }

 private:
  static constexpr size_t kBatch = 256;
  size_t ns_;
  const Program& where_;
  Score score_;
  Visit& visit_;
  std::vector<Index> idx_;
  std::vector<double> slots_;
};

/// Sort key of a value for minimisation: maximised slots are negated, NaN sorts last.
double key_of(double v, bool maximize) noexcept {
  if (std::isnan(v)) return kInf;
  return maximize ? -v : v;
}

void check_model(const ModelSet& m, const Spec& spec, const char* what) {
  if (!m.present()) return;
  if (m.theta.empty()) throw std::invalid_argument(std::string(what) + ": no coefficients");
  for (const Vector& t : m.theta)
    if (t.size() != m.tmpl->n_params())
      throw std::invalid_argument(std::string(what) + ": template '" + std::string(m.tmpl->name()) +
                                  "' needs " + std::to_string(m.tmpl->n_params()) +
                                  " coefficients, got " + std::to_string(t.size()));
  if (m.theta.size() > 1) {
    if (spec.key_axis < 0)
      throw std::invalid_argument(std::string(what) + ": several models but no key axis");
    const auto& key = spec.axes[static_cast<size_t>(spec.key_axis)];
    if (m.theta.size() != key.size())
      throw std::invalid_argument(std::string(what) +
                                  ": one model per value of the key axis needed");
    // The key axis holds codes 0, 1, ...: each selects m.theta[code] (space_scoring.cpp).
    for (const double code : key)
      if (!(code >= 0 && code < static_cast<double>(m.theta.size()) && code == std::floor(code)))
        throw std::invalid_argument(std::string(what) + ": key axis value " + std::to_string(code) +
                                    " is not a code in [0, " + std::to_string(m.theta.size()) +
                                    ")");
  }
  if (!m.bounded()) return;
  if (m.cov.size() != m.theta.size() || m.resid_var.size() != m.theta.size())
    throw std::invalid_argument(std::string(what) +
                                ": one covariance and residual variance per coefficient vector");
  for (size_t k = 0; k < m.cov.size(); ++k) {
    if (m.cov[k].rows() != m.tmpl->n_params() || m.cov[k].cols() != m.tmpl->n_params())
      throw std::invalid_argument(std::string(what) + ": covariance must be " +
                                  std::to_string(m.tmpl->n_params()) + " x " +
                                  std::to_string(m.tmpl->n_params()));
    if (!m.cov[k].allFinite())
      throw std::invalid_argument(std::string(what) + ": covariance must be finite");
    if (!(std::isfinite(m.resid_var[k]) && m.resid_var[k] >= 0))
      throw std::invalid_argument(std::string(what) +
                                  ": residual variance must be finite and non-negative");
  }
  if (!std::isfinite(m.z)) throw std::invalid_argument(std::string(what) + ": z must be finite");
}

}  // namespace

Engine::Engine(Spec spec, int n_threads)
    : spec_(std::move(spec)), n_threads_(resolve_threads(n_threads)) {
  const int A = static_cast<int>(spec_.axes.size());
  for (int a = 0; a < A; ++a) {
    const auto& ax = spec_.axes[static_cast<size_t>(a)];
    if (ax.empty()) throw std::invalid_argument("axes: axis " + std::to_string(a) + " is empty");
    if (size_ > std::numeric_limits<Index>::max() / static_cast<Index>(ax.size()))
      throw std::invalid_argument("axes: the space has more than 2^63 points");
    size_ *= static_cast<Index>(ax.size());
  }
  if (!spec_.rows.empty()) {
    if (A < 1 || spec_.rows.size() % static_cast<size_t>(A) != 0)
      throw std::invalid_argument("rows: expected n_points x " + std::to_string(A) + " digits");
    size_ = static_cast<Index>(spec_.rows.size() / static_cast<size_t>(A));
    for (size_t j = 0; j < spec_.rows.size(); ++j) {
      const Index d = spec_.rows[j];
      const size_t a = j % static_cast<size_t>(A);
      if (d < 0 || d >= static_cast<Index>(spec_.axes[a].size()))
        throw std::invalid_argument("rows: point " + std::to_string(j / static_cast<size_t>(A)) +
                                    " has digit " + std::to_string(d) + " outside axis " +
                                    std::to_string(a) + " (" +
                                    std::to_string(spec_.axes[a].size()) + " values)");
    }
  }
  const int P = static_cast<int>(spec_.params.size());
  const int D = static_cast<int>(spec_.derived.size());
  obj0_ = A + P + D;
  n_slots_ = obj0_ + kObjectives;
  for (int f = 0; f < kFeatures; ++f) {
    const int s = spec_.feature_slot[static_cast<size_t>(f)];
    // Read by derive() for every point, with or without models.
    if (s < -1 || s >= A + P)
      throw std::invalid_argument("feature_slot: feature " + std::to_string(f) + " maps to slot " +
                                  std::to_string(s) + ", not -1 or an axis or param slot (< " +
                                  std::to_string(A + P) + ")");
    if ((spec_.energy.present() || spec_.ttft.present() || spec_.tpot.present()) &&
        (s < 0 || s >= A + P))
      throw std::invalid_argument("models: feature " + std::to_string(f) +
                                  " is neither an axis nor a param");
  }
  if (spec_.key_axis >= A) throw std::invalid_argument("models: key axis out of range");
  if (spec_.ttft.present() != spec_.tpot.present())
    throw std::invalid_argument("models: a latency model needs both ttft and tpot");
  check_model(spec_.energy, spec_, "energy model");
  check_model(spec_.ttft, spec_, "ttft model");
  check_model(spec_.tpot, spec_, "tpot model");
  if (A > 64) throw std::invalid_argument("axes: at most 64 axes");
  build_table();
  build_levels();
  build_constraint_tables();
}

void Engine::derive_columns(double* slots) const noexcept {
  const int base = n_axes() + static_cast<int>(spec_.params.size());
  for (size_t k = 0; k < spec_.derived.size(); ++k)
    slots[base + static_cast<int>(k)] = spec_.derived[k].eval(slots);
}

bool Engine::finish(const Index* digits, double* slots, bool score_always,
                    bool own_params) const noexcept {
  derive_columns(slots);
  bool ok = true;
  for (const Program& c : spec_.constraints) {
    const double v = c.eval(slots);
    if (v == 0.0 || std::isnan(v)) {
      ok = false;
      break;
    }
  }
  if (ok || score_always) score(digits, slots, own_params);
  return ok;
}

void Engine::finish_rows(double* rows, size_t n) const {
  const size_t ns = static_cast<size_t>(n_slots_);
  for (size_t r = 0; r < n; ++r) derive_columns(rows + r * ns);
  if (spec_.energy.present() || spec_.ttft.present()) {
    score_rows(rows, n);
  } else {
    for (size_t r = 0; r < n; ++r) score(nullptr, rows + r * ns, false);
  }
}

void Engine::digits_of(Index index, Index* d) const noexcept {
  const int A = n_axes();
  if (!spec_.rows.empty()) {
    std::copy_n(&spec_.rows[static_cast<size_t>(index) * static_cast<size_t>(A)], A, d);
    return;
  }
  Index rest = index;
  for (int a = A - 1; a >= 0; --a) {
    const Index n = static_cast<Index>(spec_.axes[static_cast<size_t>(a)].size());
    d[a] = rest % n;
    rest /= n;
  }
}

bool Engine::evaluate(Index index, const double* params, double* slots,
                      bool score_always) const noexcept {
  const int A = n_axes();
  Index d[64];  // the constructor enforces at most 64 axes
  digits_of(index, d);
  for (int a = 0; a < A; ++a) slots[a] = spec_.axes[static_cast<size_t>(a)][static_cast<size_t>(d[a])];
  const double* p = params ? params : spec_.params.data();
  std::copy(p, p + spec_.params.size(), slots + A);
  return finish(d, slots, score_always, params == nullptr);
}

void Engine::build_levels() {
  const int A = n_axes();
  const int P = static_cast<int>(spec_.params.size());
  slot_deps_.assign(static_cast<size_t>(n_slots_), 0);
  for (int a = 0; a < A; ++a) slot_deps_[static_cast<size_t>(a)] = std::uint64_t(1) << a;
  auto deps = [this](const Program& p) {
    std::uint64_t m = 0;
    for (int r : p.reads()) m |= slot_deps_[static_cast<size_t>(r)];
    return m;
  };
  for (size_t k = 0; k < spec_.derived.size(); ++k)
    slot_deps_[static_cast<size_t>(A + P) + k] = deps(spec_.derived[k]);
  std::uint64_t model = 0;
  if (spec_.energy.present() || spec_.ttft.present()) {
    for (int s : spec_.feature_slot)
      if (s >= 0) model |= slot_deps_[static_cast<size_t>(s)];
    if (spec_.key_axis >= 0) model |= std::uint64_t(1) << spec_.key_axis;
  }
  for (int o = 0; o < kObjectives; ++o) slot_deps_[static_cast<size_t>(obj0_ + o)] = model;
  auto level = [](std::uint64_t m) {
    int l = -1;
    for (int a = 0; a < 64; ++a)
      if (m & (std::uint64_t(1) << a)) l = a;
    return l;
  };
  for (const Program& p : spec_.derived) derived_level_.push_back(level(deps(p)));
  for (const Program& p : spec_.constraints) constraint_level_.push_back(level(deps(p)));
  model_level_ = level(model);
  block_.assign(static_cast<size_t>(A), 1);
  for (int a = A - 2; a >= 0; --a)
    block_[static_cast<size_t>(a)] =
        block_[static_cast<size_t>(a + 1)] *
        static_cast<Index>(spec_.axes[static_cast<size_t>(a + 1)].size());
}

int Engine::level_of(const Program& p) const {
  std::uint64_t m = 0;
  for (int r : p.reads()) m |= slot_deps_[static_cast<size_t>(r)];
  int l = -1;
  for (int a = 0; a < 64; ++a)
    if (m & (std::uint64_t(1) << a)) l = a;
  return l;
}

template <class F>
void Engine::walk_rows(Index begin, Index end, const Program& where, F&& visit) const {
  const int A = n_axes();
  const bool models = spec_.energy.present() || spec_.ttft.present();
  const size_t ns = static_cast<size_t>(n_slots_);
  std::vector<double> slots(ns, kNaN);
  double* s = slots.data();
  std::copy(spec_.params.begin(), spec_.params.end(), slots.begin() + A);
  std::vector<Index> d(static_cast<size_t>(A), 0);
  if (!models) score(d.data(), s, true);  // objectives: NaN, derived from nothing
  // Without a model table, valid points are scored in batches, as in walk().
  const bool defer = models && table_.empty();
  Deferred pending(ns, where, [this](double* r, size_t n) { score_rows(r, n); }, visit);
  const int base = A + static_cast<int>(spec_.params.size());
  for (Index i = begin; i < end; ++i) {
    digits_of(i, d.data());
    for (int a = 0; a < A; ++a)
      s[a] = spec_.axes[static_cast<size_t>(a)][static_cast<size_t>(d[static_cast<size_t>(a)])];
    for (size_t k = 0; k < spec_.derived.size(); ++k)
      s[base + static_cast<int>(k)] = spec_.derived[k].eval(s);
    bool ok = true;
    for (size_t j = 0; j < spec_.constraints.size() && ok; ++j) {
      const Tabulated& tab = tabulated_[j];
      if (tab.truth.empty()) {
        ok = truthy(spec_.constraints[j].eval(s));
      } else {
        Index t = 0;
        for (const auto& [a, st] : tab.strides) t += d[static_cast<size_t>(a)] * st;
        ok = tab.truth[static_cast<size_t>(t)] != 0;
      }
    }
    if (!ok) continue;
    if (defer) {
      pending.push(i, s);
      continue;
    }
    if (models) score(d.data(), s, true);
    if (where.empty() || truthy(where.eval(s))) visit(i, static_cast<const double*>(s));
  }
  pending.flush();
}

template <class F>
void Engine::walk(Index begin, Index end, const Program& where, F&& visit) const {
  if (begin >= end) return;
  if (!spec_.rows.empty()) {
    walk_rows(begin, end, where, std::forward<F>(visit));
    return;
  }
  const int A = n_axes();
  const int base = A + static_cast<int>(spec_.params.size());
  const bool models = spec_.energy.present() || spec_.ttft.present();
  const int where_level = level_of(where);
  std::vector<double> slots(static_cast<size_t>(n_slots_), kNaN);
  std::vector<Index> d(static_cast<size_t>(A), 0);
  Index rest = begin;
  for (int a = A - 1; a >= 0; --a) {
    const auto& ax = spec_.axes[static_cast<size_t>(a)];
    const Index n = static_cast<Index>(ax.size());
    d[static_cast<size_t>(a)] = rest % n;
    rest /= n;
    slots[static_cast<size_t>(a)] = ax[static_cast<size_t>(d[static_cast<size_t>(a)])];
  }
  std::copy(spec_.params.begin(), spec_.params.end(), slots.begin() + A);
  if (!models) score(d.data(), slots.data(), true);  // objectives: NaN, derived from nothing
  double* s = slots.data();
  const size_t n_c = spec_.constraints.size();
  std::vector<char> ok(n_c, 1);
  int changed = -1;         // lowest axis position changed since the last point (-1: all)
  bool model_stale = true;  // the objectives do not belong to the current model inputs
  // Without a model table, valid points are scored in batches (ModelTemplate::batch shares
  // work between rows) and visited, in order, after their batch is scored.
  const bool defer = models && table_.empty();
  const size_t ns = static_cast<size_t>(n_slots_);
  Deferred pending(ns, where, [this](double* r, size_t n) { score_rows(r, n); }, visit);
  Index i = begin;
  while (i < end) {
    for (size_t k = 0; k < spec_.derived.size(); ++k)
      if (derived_level_[k] >= changed) s[base + static_cast<int>(k)] = spec_.derived[k].eval(s);
    int fail = A;  // the outermost level at which a constraint fails (A: none fails)
    for (size_t j = 0; j < n_c; ++j) {
      if (constraint_level_[j] >= changed) {
        const Tabulated& tab = tabulated_[j];
        if (tab.truth.empty()) {
          ok[j] = truthy(spec_.constraints[j].eval(s));
        } else {
          Index t = 0;
          for (const auto& [a, st] : tab.strides) t += d[static_cast<size_t>(a)] * st;
          ok[j] = tab.truth[static_cast<size_t>(t)];
        }
      }
      if (!ok[j]) fail = std::min(fail, constraint_level_[j]);
    }
    if (models && model_level_ >= changed) model_stale = true;
    if (fail == A && defer) {
      pending.push(i, s);
    } else if (fail == A) {
      if (models && model_stale) {
        score(d.data(), s, true);
        model_stale = false;
      }
      if (where.empty() || truthy(where.eval(s))) {
        visit(i, static_cast<const double*>(s));
      } else {
        fail = where_level;  // every point sharing where's inputs fails it too
      }
    }
    // Next point, or past the whole block of points that share the failing inputs.
    const int pos = fail == A ? A - 1 : fail;
    if (pos < 0) break;  // a condition on no axis at all is false: nothing is valid
    if (pos == A - 1) {
      ++i;
    } else {
      const Index blk = block_[static_cast<size_t>(pos)];
      i = (i / blk + 1) * blk;
    }
    for (int a = A - 1; a > pos; --a) {
      d[static_cast<size_t>(a)] = 0;
      s[a] = spec_.axes[static_cast<size_t>(a)][0];
    }
    int a = pos;
    for (; a >= 0; --a) {  // odometer step at `pos`
      const auto& ax = spec_.axes[static_cast<size_t>(a)];
      Index& da = d[static_cast<size_t>(a)];
      if (++da < static_cast<Index>(ax.size())) {
        s[a] = ax[static_cast<size_t>(da)];
        break;
      }
      da = 0;
      s[a] = ax[0];
    }
    if (a < 0) break;  // wrapped: the end of the space
    changed = a;
  }
  pending.flush();
}

Index Engine::count_valid(const Program& where) const {
  const Index ck = chunk_of(size_);
  const Index n_chunks = size_ / ck + (size_ % ck != 0);
  std::vector<Index> counts(static_cast<size_t>(n_chunks), 0);
  parallel_for(n_chunks, n_threads_, [&](Index c) {
    Index k = 0;
    walk(c * ck, std::min(size_, (c + 1) * ck), where, [&k](Index, const double*) { ++k; });
    counts[static_cast<size_t>(c)] = k;
  });
  return std::accumulate(counts.begin(), counts.end(), Index(0));
}

std::vector<Index> Engine::valid_indices(Index limit, const Program& where) const {
  std::vector<Index> out;
  if (limit <= 0) return out;
  // Rounds of chunks in parallel until `limit` points are found; results stay in index order.
  const Index ck = chunk_of(size_);
  const Index n_chunks = size_ / ck + (size_ % ck != 0);
  const Index round = std::max<Index>(1, n_threads_);
  for (Index c0 = 0; c0 < n_chunks && static_cast<Index>(out.size()) < limit; c0 += round) {
    const Index c1 = std::min(n_chunks, c0 + round);
    std::vector<std::vector<Index>> parts(static_cast<size_t>(c1 - c0));
    parallel_for(c1 - c0, n_threads_, [&](Index j) {
      auto& part = parts[static_cast<size_t>(j)];
      const Index c = c0 + j;
      walk(c * ck, std::min(size_, (c + 1) * ck), where,
           [&part, limit](Index i, const double*) {
             if (static_cast<Index>(part.size()) < limit) part.push_back(i);
           });
    });
    for (const auto& part : parts)
      for (Index i : part)
        if (static_cast<Index>(out.size()) < limit) out.push_back(i);
  }
  return out;
}

RowMatrix Engine::rows(const std::vector<Index>& indices, const double* params) const {
  RowMatrix out(static_cast<Index>(indices.size()), n_slots_);
  for (Index i : indices)
    if (i < 0 || i >= size_)
      throw std::out_of_range("index: " + std::to_string(i) + " is outside the space of " +
                              std::to_string(size_) + " points");
  parallel_for(
      static_cast<Index>(indices.size()), indices.size() > 4096 ? n_threads_ : 1,
      [&](Index r) { evaluate(indices[static_cast<size_t>(r)], params, out.row(r).data(), true); });
  return out;
}

std::vector<Index> Engine::top_k(int slot, bool maximize, Index k, const Program& where) const {
  if (slot < 0 || slot >= n_slots_) throw std::out_of_range("objective: slot out of range");
  if (k <= 0) return {};
  using Item = std::pair<double, Index>;
  const Index ck = chunk_of(size_);
  const Index n_chunks = size_ / ck + (size_ % ck != 0);
  std::vector<std::vector<Item>> heaps(static_cast<size_t>(n_chunks));
  parallel_for(n_chunks, n_threads_, [&](Index c) {
    auto& h = heaps[static_cast<size_t>(c)];  // max-heap of the k best so far
    walk(c * ck, std::min(size_, (c + 1) * ck), where, [&](Index i, const double* s) {
      const double v = s[slot];
      if (std::isnan(v)) return;
      const Item it{key_of(v, maximize), i};
      if (static_cast<Index>(h.size()) < k) {
        h.push_back(it);
        std::push_heap(h.begin(), h.end());
      } else if (it < h.front()) {
        std::pop_heap(h.begin(), h.end());
        h.back() = it;
        std::push_heap(h.begin(), h.end());
      }
    });
  });
  std::vector<Item> all;
  for (const auto& h : heaps) all.insert(all.end(), h.begin(), h.end());
  std::sort(all.begin(), all.end());
  if (static_cast<Index>(all.size()) > k) all.resize(static_cast<size_t>(k));
  std::vector<Index> out;
  out.reserve(all.size());
  for (const auto& it : all) out.push_back(it.second);
  return out;
}

void Tally::offer_feasible(double key, Index i) noexcept {
  if (key < best_key || (key == best_key && (best < 0 || i < best))) {
    best_key = key;
    best = i;
  }
}

void Tally::offer_nearest(double viol, double key, Index i) noexcept {
  const bool better =
      nearest < 0 || viol < near_violation ||
      (viol == near_violation && (key < near_key || (key == near_key && i < nearest)));
  if (better) {
    near_violation = viol;
    near_key = key;
    nearest = i;
  }
}

void Tally::offer(const std::vector<Limit>& limits, int slot, bool maximize, Index i,
                  const double* s) noexcept {
  ++n_valid;
  const double key = key_of(s[slot], maximize);
  bool ok = !std::isnan(s[slot]);
  for (const Limit& l : limits) ok = ok && l.holds(s[l.slot]);
  if (ok) {
    ++n_feasible;
    offer_feasible(key, i);
    return;
  }
  double viol = 0.0;  // in the order of `limits`, so that every caller sums alike
  for (const Limit& l : limits) viol += l.violation(s[l.slot]);
  offer_nearest(viol, key, i);
}

void Tally::merge(const Tally& o) noexcept {
  if (o.best >= 0) offer_feasible(o.best_key, o.best);
  if (o.nearest >= 0) offer_nearest(o.near_violation, o.near_key, o.nearest);
  n_valid += o.n_valid;
  n_feasible += o.n_feasible;
}

Selection Tally::result(bool maximize) const noexcept {
  Selection r;
  r.n_valid = n_valid;
  r.n_feasible = n_feasible;
  if (best >= 0) {
    r.feasible = true;
    r.index = best;
    r.objective = maximize ? -best_key : best_key;
    r.violation = 0.0;
  } else if (nearest >= 0) {
    r.nearest = nearest;
    r.violation = near_violation;
  }
  return r;
}

Selection Engine::argmin(int slot, bool maximize, const std::vector<Limit>& limits,
                         const Program& where) const {
  if (slot < 0 || slot >= n_slots_) throw std::out_of_range("objective: slot out of range");
  for (const Limit& l : limits)
    if (l.slot < 0 || l.slot >= n_slots_ || l.op < 0 || l.op > 4)
      throw std::out_of_range("subject_to: bad limit");
  const Index ck = chunk_of(size_);
  const Index n_chunks = size_ / ck + (size_ % ck != 0);
  std::vector<Tally> tallies(static_cast<size_t>(n_chunks));
  parallel_for(n_chunks, n_threads_, [&](Index c) {
    Tally& t = tallies[static_cast<size_t>(c)];
    walk(c * ck, std::min(size_, (c + 1) * ck), where,
         [&](Index i, const double* s) { t.offer(limits, slot, maximize, i, s); });
  });
  Tally total;
  for (const auto& t : tallies) total.merge(t);
  return total.result(maximize);
}

namespace {

/// Non-dominated subset (all keys minimised) of items sorted lexicographically by keys, index.
/// items: m keys then the index (as double) per item, flattened.
std::vector<size_t> front_sorted(const std::vector<double>& keys, const std::vector<Index>& idx,
                                 size_t m) {
  const size_t n = idx.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t(0));
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    for (size_t j = 0; j < m; ++j) {
      const double ka = keys[a * m + j], kb = keys[b * m + j];
      if (ka != kb) return ka < kb;
    }
    return idx[a] < idx[b];
  });
  std::vector<size_t> kept;
  if (m == 2) {
    // Sweep: sorted by (k0, k1), p is dominated iff an earlier point has k1 < p1, or k1 == p1
    // with k0 < p0; the first point reaching the running minimum of k1 has the smallest k0.
    double min1 = kInf, k0_at_min = kInf;
    bool any = false;
    for (size_t o : order) {
      const double p0 = keys[o * 2], p1 = keys[o * 2 + 1];
      if (!any || p1 < min1) {
        kept.push_back(o);
        min1 = p1;
        k0_at_min = p0;
        any = true;
      } else if (p1 == min1 && p0 == k0_at_min) {
        kept.push_back(o);
      }
    }
    return kept;
  }
  // Any dominator sorts before the point it dominates, and a dominated dominator has a kept one.
  for (size_t o : order) {
    bool dominated = false;
    for (size_t q : kept) {
      bool all_le = true, some_lt = false;
      for (size_t j = 0; j < m && all_le; ++j) {
        const double kq = keys[q * m + j], kp = keys[o * m + j];
        all_le = kq <= kp;
        some_lt = some_lt || kq < kp;
      }
      if (all_le && some_lt) {
        dominated = true;
        break;
      }
    }
    if (!dominated) kept.push_back(o);
  }
  return kept;
}

struct FrontPart {
  std::vector<double> keys;
  std::vector<Index> idx;
};

FrontPart reduce_front(const FrontPart& in, size_t m) {
  FrontPart out;
  for (size_t o : front_sorted(in.keys, in.idx, m)) {
    out.keys.insert(out.keys.end(), in.keys.begin() + static_cast<std::ptrdiff_t>(o * m),
                    in.keys.begin() + static_cast<std::ptrdiff_t>((o + 1) * m));
    out.idx.push_back(in.idx[o]);
  }
  return out;
}

}  // namespace

std::vector<Index> Engine::pareto(const std::vector<int>& slots, const std::vector<bool>& maximize,
                                  const Program& where) const {
  const size_t m = slots.size();
  if (m == 0) throw std::invalid_argument("objectives: at least one is needed");
  if (maximize.size() != m) throw std::invalid_argument("maximize: one flag per objective");
  for (int s : slots)
    if (s < 0 || s >= n_slots_) throw std::out_of_range("objectives: slot out of range");
  const Index ck = chunk_of(size_);
  const Index n_chunks = size_ / ck + (size_ % ck != 0);
  std::vector<FrontPart> parts(static_cast<size_t>(n_chunks));
  parallel_for(n_chunks, n_threads_, [&](Index c) {
    FrontPart raw;
    walk(c * ck, std::min(size_, (c + 1) * ck), where, [&](Index i, const double* s) {
      for (size_t j = 0; j < m; ++j)
        if (std::isnan(s[slots[j]])) return;  // a point without a value takes no part
      for (size_t j = 0; j < m; ++j) raw.keys.push_back(key_of(s[slots[j]], maximize[j]));
      raw.idx.push_back(i);
    });
    parts[static_cast<size_t>(c)] = reduce_front(raw, m);
  });
  FrontPart all;
  for (const auto& p : parts) {
    all.keys.insert(all.keys.end(), p.keys.begin(), p.keys.end());
    all.idx.insert(all.idx.end(), p.idx.begin(), p.idx.end());
  }
  return reduce_front(all, m).idx;
}

}  // namespace energycore::space
