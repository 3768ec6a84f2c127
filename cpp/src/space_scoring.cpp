// Scoring of the configuration space engine (space.hpp): the model table over distinct model
// inputs, model values of single rows and of batches (all through ModelTemplate::batch, so that
// every path gives identical doubles), the derived objectives, and tabulated constraints.
#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "energycore/lm.hpp"
#include "energycore/parallel.hpp"
#include "energycore/space.hpp"

namespace energycore::space {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr Index kChunk = Index(1) << 15;

const Vector& theta_for(const ModelSet& m, double key) noexcept {
  if (m.theta.size() == 1) return m.theta.front();
  // The engine's constructor checked that every key-axis value is a code of m.theta.
  assert(key >= 0 && key < static_cast<double>(m.theta.size()));
  return m.theta[static_cast<size_t>(key)];
}

bool truthy(double v) noexcept { return v != 0.0 && !std::isnan(v); }

size_t key_index(const ModelSet& m, double key) noexcept {
  return m.theta.size() == 1 ? 0 : static_cast<size_t>(key);
}

/// value * exp(z * sqrt(resid_var + g' C g / value^2)): the upper bound of a model value from
/// its gradient g (entries g[j * stride]) by the delta method on log(value).
double upper_of(const ModelSet& m, size_t k, double v, const double* g, Index stride) noexcept {
  const Matrix& C = m.cov[k];
  const Index p = C.rows();
  double q = 0.0;
  for (Index a = 0; a < p; ++a) {
    const double ga = g[a * stride];
    if (ga == 0.0) continue;
    for (Index b = 0; b < p; ++b) q += ga * C(a, b) * g[b * stride];
  }
  const double rel = v > 0.0 ? std::max(q, 0.0) / (v * v) : 0.0;
  return v * std::exp(m.z * std::sqrt(m.resid_var[k] + rel));
}

/// Values (into `vals`) and upper bounds (into `out`) of the n rows of X under coefficients
/// theta[k], from one evaluation of the template with its gradient.
void values_and_uppers(const ModelSet& m, size_t k, const FeatureRef& X, double* vals,
                       double* out) {
  const Index n = X.rows();
  // A per-thread buffer: a Selector scores single rows, where allocating would dominate.
  thread_local Matrix G;
  G.resize(n, m.tmpl->n_params());
  m.tmpl->batch(X, m.theta[k].data(), vals, &G);
  for (Index r = 0; r < n; ++r) out[r] = upper_of(m, k, vals[r], G.data() + r, n);
}

/// The log-space exponent a of an upper bound u = v * exp(a) (0 where v is not positive).
double exponent_of(double v, double u) noexcept { return v > 0.0 ? std::log(u / v) : 0.0; }

/// power_upper_w of a scored row (space.hpp, kPowerUpperW): from the bounds of the same
/// template evaluation, NaN when energy or latency has none.
void bound_power(double* o, double output_len) noexcept {
  const double eu = o[kEnergyUpperJ], tu = o[kTtftUpperS], pu = o[kTpotUpperS];
  if (std::isnan(eu) || std::isnan(tu) || std::isnan(pu) || !(o[kLatencyS] > 0.0)) {
    o[kPowerUpperW] = kNaN;
    return;
  }
  const double a_e = exponent_of(o[kEnergyJ], eu);
  const double a_l = (o[kTtftS] * exponent_of(o[kTtftS], tu) +
                      output_len * o[kTpotS] * exponent_of(o[kTpotS], pu)) /
                     o[kLatencyS];
  // Every exponent has the sign of z (one confidence for all models), or is 0.
  const double a = std::copysign(std::sqrt(a_e * a_e + a_l * a_l), a_e + a_l);
  o[kPowerUpperW] = o[kPowerW] * std::exp(a);
}

}  // namespace

void Engine::build_table() {
  const int A = n_axes();
  table_stride_.assign(static_cast<size_t>(A), 0);
  if (!spec_.energy.present() && !spec_.ttft.present()) return;
  std::vector<bool> relevant(static_cast<size_t>(A), false);
  for (int s : spec_.feature_slot)
    if (s >= 0 && s < A) relevant[static_cast<size_t>(s)] = true;
  if (spec_.key_axis >= 0) relevant[static_cast<size_t>(spec_.key_axis)] = true;
  Index T = 1;
  for (int a = A - 1; a >= 0; --a) {
    if (!relevant[static_cast<size_t>(a)]) continue;
    table_stride_[static_cast<size_t>(a)] = T;
    T *= static_cast<Index>(spec_.axes[static_cast<size_t>(a)].size());
    if (T > kMaxTable) break;
  }
  // The table pays off only when each entry is reused: at least twice on average.
  if (T > kMaxTable || 2 * T > size_) {
    table_stride_.assign(static_cast<size_t>(A), 0);
    return;
  }
  table_.assign(kTableWidth * static_cast<size_t>(T), kNaN);
  const Index n_chunks = (T + kChunk - 1) / kChunk;
  parallel_for(n_chunks, n_chunks > 1 ? n_threads_ : 1, [&](Index c) {
    const Index begin = c * kChunk;
    const Index end = std::min(T, (c + 1) * kChunk);
    const size_t n = static_cast<size_t>(end - begin), ns = static_cast<size_t>(n_slots_);
    std::vector<double> rows(n * ns, 0.0);
    for (size_t r = 0; r < n; ++r) {
      double* s = &rows[r * ns];
      std::copy(spec_.params.begin(), spec_.params.end(), s + A);
      const Index t = begin + static_cast<Index>(r);
      for (int a = 0; a < A; ++a) {
        const Index st = table_stride_[static_cast<size_t>(a)];
        if (st == 0) continue;
        const auto& ax = spec_.axes[static_cast<size_t>(a)];
        s[a] = ax[static_cast<size_t>((t / st) % static_cast<Index>(ax.size()))];
      }
    }
    score_rows(rows.data(), n);
    for (size_t r = 0; r < n; ++r) {
      const double* o = &rows[r * ns] + obj0_;
      double* e = &table_[kTableWidth * (static_cast<size_t>(begin) + r)];
      e[0] = o[kEnergyJ];
      e[1] = o[kTtftS];
      e[2] = o[kTpotS];
      e[3] = o[kTtftUpperS];
      e[4] = o[kTpotUpperS];
      e[5] = o[kEnergyUpperJ];
      e[6] = o[kPowerUpperW];
    }
  });
}

// Every model value goes through ModelTemplate::batch (which may share work between rows, e.g.
// powers of the few distinct tp values); it computes each row the same way whatever the batch,
// so the table, the walk, rows() and the Selector all give identical doubles.
void Engine::score_direct(double* slots) const noexcept {
  double row[kFeatures];
  for (int f = 0; f < kFeatures; ++f) {
    const int s = spec_.feature_slot[static_cast<size_t>(f)];
    row[f] = s >= 0 ? slots[s] : kNaN;
  }
  const double key = spec_.key_axis >= 0 ? slots[spec_.key_axis] : 0.0;
  const Eigen::Map<const FeatureTable> X(row, 1, kFeatures);
  double* o = slots + obj0_;
  auto one = [&](const ModelSet& m, double* out, double* up) {
    if (up != nullptr) *up = kNaN;
    if (!m.present()) {
      *out = kNaN;
    } else if (up != nullptr && m.bounded()) {
      values_and_uppers(m, key_index(m, key), X, out, up);
    } else {
      m.tmpl->batch(X, theta_for(m, key).data(), out, nullptr);
    }
  };
  one(spec_.energy, &o[kEnergyJ], &o[kEnergyUpperJ]);
  one(spec_.ttft, &o[kTtftS], &o[kTtftUpperS]);
  one(spec_.tpot, &o[kTpotS], &o[kTpotUpperS]);
}

void Engine::score_rows(double* rows, size_t n) const {
  // Features of every row, then each model over all rows sharing its coefficients.
  std::vector<double> X(n * kFeatures), sub, vals(n), subv, ups(n), subu;
  std::vector<size_t> pick;
  for (size_t r = 0; r < n; ++r)
    for (int f = 0; f < kFeatures; ++f) {
      const int s = spec_.feature_slot[static_cast<size_t>(f)];
      X[r * kFeatures + static_cast<size_t>(f)] =
          s >= 0 ? rows[r * static_cast<size_t>(n_slots_) + static_cast<size_t>(s)] : kNaN;
    }
  auto run = [&](const ModelSet& m, int objective, int upper) {
    const size_t col = static_cast<size_t>(obj0_ + objective);
    const size_t ucol = static_cast<size_t>(obj0_ + upper);
    const bool bound = upper >= 0 && m.present() && m.bounded();
    if (upper >= 0 && !bound)
      for (size_t r = 0; r < n; ++r) rows[r * static_cast<size_t>(n_slots_) + ucol] = kNaN;
    if (!m.present()) {
      for (size_t r = 0; r < n; ++r) rows[r * static_cast<size_t>(n_slots_) + col] = kNaN;
      return;
    }
    if (m.theta.size() == 1) {
      const Eigen::Map<const FeatureTable> Xm(X.data(), static_cast<Index>(n), kFeatures);
      if (bound) {
        values_and_uppers(m, 0, Xm, vals.data(), ups.data());
      } else {
        m.tmpl->batch(Xm, m.theta.front().data(), vals.data(), nullptr);
      }
    } else {
      for (size_t k = 0; k < m.theta.size(); ++k) {
        pick.clear();
        for (size_t r = 0; r < n; ++r)
          if (rows[r * static_cast<size_t>(n_slots_) + static_cast<size_t>(spec_.key_axis)] ==
              static_cast<double>(k))
            pick.push_back(r);
        if (pick.empty()) continue;
        sub.resize(pick.size() * kFeatures);
        subv.resize(pick.size());
        for (size_t j = 0; j < pick.size(); ++j)
          std::copy_n(&X[pick[j] * kFeatures], kFeatures, &sub[j * kFeatures]);
        const Eigen::Map<const FeatureTable> Xs(sub.data(), static_cast<Index>(pick.size()),
                                                kFeatures);
        if (bound) {
          subu.resize(pick.size());
          values_and_uppers(m, k, Xs, subv.data(), subu.data());
          for (size_t j = 0; j < pick.size(); ++j) ups[pick[j]] = subu[j];
        } else {
          m.tmpl->batch(Xs, m.theta[k].data(), subv.data(), nullptr);
        }
        for (size_t j = 0; j < pick.size(); ++j) vals[pick[j]] = subv[j];
      }
    }
    for (size_t r = 0; r < n; ++r) rows[r * static_cast<size_t>(n_slots_) + col] = vals[r];
    if (bound)
      for (size_t r = 0; r < n; ++r) rows[r * static_cast<size_t>(n_slots_) + ucol] = ups[r];
  };
  run(spec_.energy, kEnergyJ, kEnergyUpperJ);
  run(spec_.ttft, kTtftS, kTtftUpperS);
  run(spec_.tpot, kTpotS, kTpotUpperS);
  const int so = spec_.feature_slot[kOutputLen];
  for (size_t r = 0; r < n; ++r) {
    double* row = rows + r * static_cast<size_t>(n_slots_);
    derive(row);
    bound_power(row + obj0_, so >= 0 ? row[so] : kNaN);
  }
}

void Engine::derive(double* slots) const noexcept {
  double* o = slots + obj0_;
  const int sb = spec_.feature_slot[kBatch];
  const int so = spec_.feature_slot[kOutputLen];
  assert(sb < n_slots_ && so < n_slots_);  // checked by the constructor
  o[kEnergyPerRequestJ] = sb >= 0 ? o[kEnergyJ] / slots[sb] : kNaN;
  o[kLatencyS] = so >= 0 ? o[kTtftS] + slots[so] * o[kTpotS] : kNaN;
  o[kPowerW] = o[kEnergyJ] / o[kLatencyS];
  o[kLatencyUpperS] = so >= 0 ? o[kTtftUpperS] + slots[so] * o[kTpotUpperS] : kNaN;
}

void Engine::score(const Index* digits, double* slots, bool own_params) const noexcept {
  double* o = slots + obj0_;
  if (!table_.empty() && own_params) {
    Index t = 0;
    for (int a = 0; a < n_axes(); ++a) t += digits[a] * table_stride_[static_cast<size_t>(a)];
    const double* e = &table_[kTableWidth * static_cast<size_t>(t)];
    o[kEnergyJ] = e[0];
    o[kTtftS] = e[1];
    o[kTpotS] = e[2];
    o[kTtftUpperS] = e[3];
    o[kTpotUpperS] = e[4];
    o[kEnergyUpperJ] = e[5];
    o[kPowerUpperW] = e[6];
    derive(slots);
  } else if (spec_.energy.present() || spec_.ttft.present()) {
    score_direct(slots);
    derive(slots);
    const int so = spec_.feature_slot[kOutputLen];
    bound_power(o, so >= 0 ? slots[so] : kNaN);
  } else {
    o[kEnergyJ] = o[kTtftS] = o[kTpotS] = o[kTtftUpperS] = o[kTpotUpperS] = kNaN;
    o[kEnergyUpperJ] = o[kPowerUpperW] = kNaN;
    derive(slots);
  }
}

void Engine::build_constraint_tables() {
  const int A = n_axes();
  const int base = A + static_cast<int>(spec_.params.size());
  tabulated_.assign(spec_.constraints.size(), Tabulated{});
  for (size_t j = 0; j < spec_.constraints.size(); ++j) {
    std::uint64_t m = 0;
    for (int r : spec_.constraints[j].reads()) m |= slot_deps_[static_cast<size_t>(r)];
    Index T = 1;
    std::vector<std::pair<int, Index>> strides;
    for (int a = A - 1; a >= 0 && T <= kMaxConstraintTable; --a) {
      if (!(m & (std::uint64_t(1) << a))) continue;
      strides.emplace_back(a, T);
      T *= static_cast<Index>(spec_.axes[static_cast<size_t>(a)].size());
    }
    // Worth it when each entry serves several points and the table stays small.
    if (m == 0 || T > kMaxConstraintTable || 4 * T > size_) continue;
    Tabulated& tab = tabulated_[j];
    tab.strides = strides;
    tab.truth.assign(static_cast<size_t>(T), 0);
    std::vector<double> s(static_cast<size_t>(n_slots_), kNaN);
    for (int a = 0; a < A; ++a) s[static_cast<size_t>(a)] = spec_.axes[static_cast<size_t>(a)][0];
    std::copy(spec_.params.begin(), spec_.params.end(), s.begin() + A);
    for (Index t = 0; t < T; ++t) {
      for (const auto& [a, st] : strides) {
        const auto& ax = spec_.axes[static_cast<size_t>(a)];
        s[static_cast<size_t>(a)] =
            ax[static_cast<size_t>((t / st) % static_cast<Index>(ax.size()))];
      }
      // Derived columns the constraint reads depend only on these axes (and params).
      for (size_t k = 0; k < spec_.derived.size(); ++k)
        s[static_cast<size_t>(base) + k] = spec_.derived[k].eval(s.data());
      tab.truth[static_cast<size_t>(t)] = truthy(spec_.constraints[j].eval(s.data())) ? 1 : 0;
    }
  }
}

}  // namespace energycore::space
