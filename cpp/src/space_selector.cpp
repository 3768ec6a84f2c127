// The Selector of selector.hpp: per-cell candidate orderings over the (input_len, output_len)
// plane, built once, and queries that scan them with exact scoring and a bound-based stop.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>

#include "energycore/lm.hpp"
#include "energycore/parallel.hpp"
#include "energycore/selector.hpp"
#include "energycore/space.hpp"

namespace energycore::space {

namespace {

constexpr Index kChunk = Index(1) << 15;

/// A float not above x: a lower bound stored in half the memory. NaN gives -inf (no pruning).
float round_down(double x) noexcept {
  if (std::isnan(x) || x < -static_cast<double>(FLT_MAX))
    return -std::numeric_limits<float>::infinity();
  if (x > static_cast<double>(FLT_MAX)) return FLT_MAX;
  float f = static_cast<float>(x);
  if (static_cast<double>(f) > x) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
  return f;
}

void check_edges(const std::vector<double>& e, const char* what) {
  if (e.size() < 2) throw std::invalid_argument(std::string(what) + ": at least two edges needed");
  for (size_t k = 0; k < e.size(); ++k) {
    if (!std::isfinite(e[k]) || e[k] < 0)
      throw std::invalid_argument(std::string(what) + ": edges must be finite and >= 0");
    if (k && !(e[k] > e[k - 1]))
      throw std::invalid_argument(std::string(what) + ": edges must increase");
  }
}

}  // namespace

Selector::Selector(std::shared_ptr<const Engine> engine, int slot, bool maximize, bool monotone,
                   int lin_slot, int lout_slot, std::vector<double> lin_edges,
                   std::vector<double> lout_edges)
    : engine_(std::move(engine)),
      slot_(slot),
      maximize_(maximize),
      lin_slot_(lin_slot),
      lout_slot_(lout_slot),
      lin_edges_(std::move(lin_edges)),
      lout_edges_(std::move(lout_edges)) {
  if (!engine_) throw std::invalid_argument("selector: no engine");
  const Engine& E = *engine_;
  const Spec& spec = E.spec();
  const int A = E.n_axes();
  const int P = static_cast<int>(spec.params.size());
  if (slot_ < 0 || slot_ >= E.n_slots()) throw std::out_of_range("objective: slot out of range");
  if (lin_slot_ < A || lin_slot_ >= A + P || lout_slot_ < A || lout_slot_ >= A + P)
    throw std::invalid_argument("selector: input_len and output_len must be params, not axes");
  check_edges(lin_edges_, "input_len_edges");
  check_edges(lout_edges_, "output_len_edges");
  params_ = spec.params;

  // Which constraints do not depend on the workload: they filter the candidates once.
  std::vector<bool> dep(static_cast<size_t>(E.n_slots()), false);
  dep[static_cast<size_t>(lin_slot_)] = dep[static_cast<size_t>(lout_slot_)] = true;
  auto depends = [&dep](const Program& p) {
    for (int r : p.reads())
      if (dep[static_cast<size_t>(r)]) return true;
    return false;
  };
  for (size_t k = 0; k < spec.derived.size(); ++k)
    dep[static_cast<size_t>(A + P) + k] = depends(spec.derived[k]);
  std::vector<const Program*> fixed_constraints;
  for (const Program& c : spec.constraints)
    if (!depends(c)) fixed_constraints.push_back(&c);

  const Index size = E.size();
  const Index n_chunks = (size + kChunk - 1) / kChunk;
  std::vector<std::vector<Index>> parts(static_cast<size_t>(n_chunks));
  parallel_for(n_chunks, resolve_threads(0), [&](Index c) {
    std::vector<double> s(static_cast<size_t>(E.n_slots()));
    auto& part = parts[static_cast<size_t>(c)];
    for (Index i = c * kChunk; i < std::min(size, (c + 1) * kChunk); ++i) {
      E.evaluate(i, nullptr, s.data(), false);  // axes, params, derived
      bool ok = true;
      for (const Program* p : fixed_constraints) {
        const double v = p->eval(s.data());
        if (v == 0.0 || std::isnan(v)) {
          ok = false;
          break;
        }
      }
      if (ok) part.push_back(i);
    }
  });
  for (const auto& part : parts) cand_index_.insert(cand_index_.end(), part.begin(), part.end());
  if (cand_index_.size() > std::numeric_limits<std::uint32_t>::max())
    throw std::invalid_argument("selector: too many candidate points");
  const size_t n_cand = cand_index_.size();
  cand_digits_.resize(n_cand * static_cast<size_t>(A));
  for (size_t c = 0; c < n_cand; ++c)
    E.digits_of(cand_index_[c], &cand_digits_[c * static_cast<size_t>(A)]);
  if (lin_edges_.empty()) return;

  const size_t n_cells = (lin_edges_.size() - 1) * (lout_edges_.size() - 1);
  entries_.resize(n_cells * n_cand);
  const int e_slot = E.objective_slot(kEnergyJ);
  const int l_slot = E.objective_slot(kLatencyS);
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  parallel_for(static_cast<Index>(n_cells), resolve_threads(0), [&](Index cell) {
    const size_t ci = static_cast<size_t>(cell) / (lout_edges_.size() - 1);
    const size_t cj = static_cast<size_t>(cell) % (lout_edges_.size() - 1);
    std::vector<double> lo(static_cast<size_t>(E.n_slots())), hi(lo.size());
    Entry* out = entries_.data() + static_cast<size_t>(cell) * n_cand;
    for (size_t c = 0; c < n_cand; ++c) {
      const Index* d = &cand_digits_[c * static_cast<size_t>(A)];
      load(c, lin_edges_[ci], lout_edges_[cj], lo.data());
      E.finish(d, lo.data(), true, false);
      load(c, lin_edges_[ci + 1], lout_edges_[cj + 1], hi.data());
      E.finish(d, hi.data(), true, false);
      const double v = lo[static_cast<size_t>(slot_)];
      const double lat_hi = hi[static_cast<size_t>(l_slot)];
      out[c].bound = monotone ? round_down(maximize_ ? -v : v) : kNegInf;
      // Latency and energy never decrease with the lengths (non-negative length terms).
      out[c].latency_lb = round_down(lo[static_cast<size_t>(l_slot)]);
      out[c].power_lb = lat_hi > 0 ? round_down(lo[static_cast<size_t>(e_slot)] / lat_hi) : kNegInf;
      out[c].cand = static_cast<std::uint32_t>(c);
    }
    std::sort(out, out + n_cand, [](const Entry& a, const Entry& b) {
      return a.bound < b.bound || (a.bound == b.bound && a.cand < b.cand);
    });
  });
}

void Selector::load(size_t c, double lin, double lout, double* s) const noexcept {
  const Spec& spec = engine_->spec();
  const int A = engine_->n_axes();
  const Index* d = &cand_digits_[c * static_cast<size_t>(A)];
  for (int a = 0; a < A; ++a) s[a] = spec.axes[static_cast<size_t>(a)][static_cast<size_t>(d[a])];
  std::copy(params_.begin(), params_.end(), s + A);
  s[lin_slot_] = lin;
  s[lout_slot_] = lout;
}

int Selector::cell(double x, const std::vector<double>& edges) const noexcept {
  if (edges.empty() || !(x >= edges.front()) || !(x < edges.back())) return -1;
  const auto it = std::upper_bound(edges.begin(), edges.end(), x);
  return static_cast<int>(it - edges.begin()) - 1;
}

Selection Selector::scan(double lin, double lout, const std::vector<Limit>& limits,
                         const Entry* order, double lat_max, double pow_max) const {
  Tally t;
  const size_t n_cand = cand_index_.size();
  for (size_t k = 0; k < n_cand; ++k) {
    size_t c = k;
    if (order != nullptr) {
      const Entry& e = order[k];
      // Sorted bounds: once one exceeds the best value found, no later candidate can beat or
      // tie it (ties need an equal value, which is >= its bound).
      if (t.best >= 0 && static_cast<double>(e.bound) > t.best_key) break;
      // Surely over a limit: cannot be feasible (the caller rescans if nothing is).
      if (static_cast<double>(e.latency_lb) > lat_max || static_cast<double>(e.power_lb) > pow_max)
        continue;
      c = e.cand;
    }
    evaluate(c, lin, lout, limits, t);
  }
  return t.result(maximize_);
}

bool Selector::evaluate(size_t c, double lin, double lout, const std::vector<Limit>& limits,
                        Tally& t) const {
  const Engine& E = *engine_;
  double buf[256];
  std::vector<double> heap;
  double* s = buf;
  if (E.n_slots() > 256) {
    heap.resize(static_cast<size_t>(E.n_slots()));
    s = heap.data();
  }
  load(c, lin, lout, s);
  if (!E.finish(&cand_digits_[c * static_cast<size_t>(E.n_axes())], s, false, false)) return false;
  t.offer(limits, slot_, maximize_, cand_index_[c], s);
  return true;
}

Selection Selector::nearest(double lin, double lout, const std::vector<Limit>& limits,
                            const Entry* order) const {
  const Engine& E = *engine_;
  const int l_slot = E.objective_slot(kLatencyS);
  const int u_slot = E.objective_slot(kLatencyUpperS);
  const int p_slot = E.objective_slot(kPowerW);
  const int pu_slot = E.objective_slot(kPowerUpperW);
  const bool bound_above = upper_bounds_latency();
  const bool power_above = upper_bounds_power();
  const size_t n = cand_index_.size();
  // Lower bound of each candidate's total violation: only latency and power terms are
  // bounded (the others count 0); shrunk a hair so that rounding can never lift it above.
  std::vector<double> vlb(n, 0.0);
  for (size_t k = 0; k < n; ++k) {
    const Entry& e = order[k];
    double v = 0.0;
    for (const Limit& l : limits) {
      if (l.op != 0 && l.op != 1) continue;
      if (l.slot == l_slot || (l.slot == u_slot && bound_above))
        v += l.violation(static_cast<double>(e.latency_lb));
      if (l.slot == p_slot || (l.slot == pu_slot && power_above))
        v += l.violation(static_cast<double>(e.power_lb));
    }
    vlb[k] = std::isinf(v) ? 0.0 : v * (1.0 - 1e-12);
  }
  Tally t;
  std::vector<char> done(n, 0);
  // Seed with the smallest bounds until a valid candidate gives a violation to beat.
  for (int tries = 0; tries < 16 && t.nearest < 0; ++tries) {
    size_t kmin = n;
    for (size_t k = 0; k < n; ++k)
      if (!done[k] && (kmin == n || vlb[k] < vlb[kmin])) kmin = k;
    if (kmin == n) break;
    done[kmin] = 1;
    evaluate(order[kmin].cand, lin, lout, limits, t);
  }
  for (size_t k = 0; k < n; ++k) {
    if (done[k] || (t.nearest >= 0 && vlb[k] > t.near_violation)) continue;
    evaluate(order[k].cand, lin, lout, limits, t);
  }
  return t.result(maximize_);
}

bool Selector::upper_bounds_latency() const noexcept {
  // upper = value * exp(z * sqrt(...)) >= value for z >= 0, and latency_upper_s sums the bounds.
  const Spec& spec = engine_->spec();
  return spec.ttft.bounded() && spec.tpot.bounded() && spec.ttft.z >= 0 && spec.tpot.z >= 0;
}

bool Selector::upper_bounds_power() const noexcept {
  // power_upper = power * exp(sqrt(a_E^2 + a_L^2)) with the sign of the exponents: >= power
  // when every z >= 0.
  const Spec& spec = engine_->spec();
  return upper_bounds_latency() && spec.energy.bounded() && spec.energy.z >= 0;
}

Selection Selector::best(double input_len, double output_len,
                         const std::vector<Limit>& limits) const {
  const Engine& E = *engine_;
  constexpr double kInf = std::numeric_limits<double>::infinity();
  double lat_max = kInf, pow_max = kInf;
  const bool bound_above = upper_bounds_latency();
  const bool power_above = upper_bounds_power();
  for (const Limit& l : limits) {
    if (l.slot < 0 || l.slot >= E.n_slots() || l.op < 0 || l.op > 4)
      throw std::out_of_range("limits: bad limit");
    const bool upper = l.op == 0 || l.op == 1;
    if (upper && l.slot == E.objective_slot(kLatencyS)) lat_max = std::min(lat_max, l.value);
    // latency_upper_s >= latency_s then: a limit on the bound is also one on latency_s.
    if (upper && bound_above && l.slot == E.objective_slot(kLatencyUpperS))
      lat_max = std::min(lat_max, l.value);
    if (upper && l.slot == E.objective_slot(kPowerW)) pow_max = std::min(pow_max, l.value);
    // Likewise power_upper_w >= power_w.
    if (upper && power_above && l.slot == E.objective_slot(kPowerUpperW))
      pow_max = std::min(pow_max, l.value);
  }
  const int ci = cell(input_len, lin_edges_);
  const int cj = cell(output_len, lout_edges_);
  Selection r;
  if (ci < 0 || cj < 0) {  // outside the grid: every candidate, no stop
    r = scan(input_len, output_len, limits, nullptr, kInf, kInf);
  } else {
    const size_t n_cand = cand_index_.size();
    const Entry* order =
        entries_.data() +
        (static_cast<size_t>(ci) * (lout_edges_.size() - 1) + static_cast<size_t>(cj)) * n_cand;
    r = scan(input_len, output_len, limits, order, lat_max, pow_max);
    // Nothing feasible: the skipped candidates matter for the nearest point.
    if (!r.feasible) r = nearest(input_len, output_len, limits, order);
  }
  r.n_valid = -1;
  r.n_feasible = -1;
  return r;
}

}  // namespace energycore::space
