// The Selector of selector.hpp: per-cell candidate orderings over the (input_len, output_len)
// plane, built once, and queries that scan them with exact scoring and a bound-based stop.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <unordered_map>
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
  const int base = A + P;
  parallel_for(n_chunks, resolve_threads(0), [&](Index c) {
    // Axes, params and derived columns only: the fixed constraints cannot read the scores.
    std::vector<double> s(static_cast<size_t>(E.n_slots()), 0.0);
    std::vector<Index> d(static_cast<size_t>(A));
    std::copy(params_.begin(), params_.end(), s.begin() + A);
    auto& part = parts[static_cast<size_t>(c)];
    for (Index i = c * kChunk; i < std::min(size, (c + 1) * kChunk); ++i) {
      E.digits_of(i, d.data());
      for (int a = 0; a < A; ++a)
        s[static_cast<size_t>(a)] =
            spec.axes[static_cast<size_t>(a)][static_cast<size_t>(d[static_cast<size_t>(a)])];
      for (size_t k = 0; k < spec.derived.size(); ++k)
        s[static_cast<size_t>(base) + k] = spec.derived[k].eval(s.data());
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
  build_tables(monotone);
}

namespace {

/// An unsigned key ordered as the float (no NaN here; -0 and +0 equal, as under <).
std::uint32_t order_key(float f) noexcept {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if (u == 0x80000000u) u = 0;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

}  // namespace

void Selector::sort_entries(Entry* a, size_t n, std::vector<Entry>& tmp) {
  // LSD radix sort on the bound, 8 bits a pass: stable, so that the input order (candidate,
  // ascending) breaks ties, as the comparison sort on (bound, cand) did.
  tmp.resize(n);
  Entry* src = a;
  Entry* dst = tmp.data();
  for (int shift = 0; shift < 32; shift += 8) {
    size_t count[257] = {0};
    for (size_t i = 0; i < n; ++i) ++count[((order_key(src[i].bound) >> shift) & 255u) + 1];
    bool one_bucket = false;
    for (int b = 1; b <= 256; ++b) one_bucket = one_bucket || count[b] == n;
    if (one_bucket) continue;  // every key shares these bits
    for (int b = 1; b <= 256; ++b) count[b] += count[b - 1];
    for (size_t i = 0; i < n; ++i) dst[count[(order_key(src[i].bound) >> shift) & 255u]++] = src[i];
    std::swap(src, dst);
  }
  if (src != a) std::copy(src, src + n, a);
}

void Selector::build_tables(bool monotone) {
  const Engine& E = *engine_;
  const Spec& spec = E.spec();
  const int A = E.n_axes();
  const int P = static_cast<int>(spec.params.size());
  const int S = E.n_slots();
  const int obj0 = E.objective_slot(static_cast<Objective>(0));
  const int e_slot = E.objective_slot(kEnergyJ);
  const int l_slot = E.objective_slot(kLatencyS);
  const size_t n_cand = cand_index_.size();

  // The axes that the stored values (objective, latency, energy) depend on: candidates equal
  // on them get equal doubles at every workload, so each such class is scored once.
  const std::uint64_t all = A >= 64 ? ~std::uint64_t(0) : (std::uint64_t(1) << A) - 1;
  std::vector<std::uint64_t> deps(static_cast<size_t>(S), 0);
  for (int a = 0; a < A; ++a) deps[static_cast<size_t>(a)] = std::uint64_t(1) << a;
  for (size_t k = 0; k < spec.derived.size(); ++k) {
    std::uint64_t m = 0;
    for (int r : spec.derived[k].reads()) m |= r >= obj0 ? all : deps[static_cast<size_t>(r)];
    deps[static_cast<size_t>(A + P) + k] = m;
  }
  std::uint64_t model = 0;
  for (int s : spec.feature_slot)
    if (s >= 0) model |= deps[static_cast<size_t>(s)];
  if (spec.key_axis >= 0) model |= std::uint64_t(1) << spec.key_axis;
  for (int s = obj0; s < S; ++s) deps[static_cast<size_t>(s)] = model;
  const std::uint64_t need = deps[static_cast<size_t>(slot_)] |
                             deps[static_cast<size_t>(l_slot)] | deps[static_cast<size_t>(e_slot)];
  need_ = need;
  slot_deps_ = deps;

  // Classes in order of their first (smallest) candidate; members ascending.
  std::vector<std::uint32_t> cls(n_cand);
  std::vector<std::uint32_t> rep;  // the first candidate of each class
  {
    std::unordered_map<std::string, std::uint32_t> ids;
    ids.reserve(std::min<size_t>(n_cand, 1 << 20));
    std::string key;
    for (size_t c = 0; c < n_cand; ++c) {
      key.clear();
      const Index* d = &cand_digits_[c * static_cast<size_t>(A)];
      for (int a = 0; a < A; ++a)
        if (need & (std::uint64_t(1) << a))
          key.append(reinterpret_cast<const char*>(&d[a]), sizeof(Index));
      const auto [it, fresh] = ids.try_emplace(key, static_cast<std::uint32_t>(rep.size()));
      if (fresh) rep.push_back(static_cast<std::uint32_t>(c));
      cls[c] = it->second;
    }
  }
  const size_t K = rep.size();

  // Members of each class, ascending (CSR).
  class_start_.assign(K + 1, 0);
  members_.resize(n_cand);
  for (size_t c = 0; c < n_cand; ++c) ++class_start_[cls[c] + 1];
  for (size_t k = 0; k < K; ++k) class_start_[k + 1] += class_start_[k];
  {
    std::vector<std::uint32_t> at(class_start_.begin(), class_start_.end() - 1);
    for (size_t c = 0; c < n_cand; ++c) members_[at[cls[c]]++] = static_cast<std::uint32_t>(c);
  }

  // Values at the grid's nodes, once per class; then per cell the bounds of each class.
  const size_t NI = lin_edges_.size(), NJ = lout_edges_.size();
  const size_t n_cells = (NI - 1) * (NJ - 1);
  entries_.resize(n_cells * K);
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  constexpr Index kClassBlock = 64;
  const Index n_blocks = (static_cast<Index>(K) + kClassBlock - 1) / kClassBlock;
  parallel_for(n_blocks, resolve_threads(0), [&](Index b) {
    const size_t ns = static_cast<size_t>(S), n_nodes = NI * NJ;
    std::vector<double> rows(n_nodes * ns);
    std::vector<double> v(n_nodes), lat(n_nodes), en(n_nodes);
    for (size_t k = static_cast<size_t>(b) * kClassBlock;
         k < std::min(K, static_cast<size_t>(b + 1) * kClassBlock); ++k) {
      const size_t c = rep[k];
      // Every node of the grid as one batch (the template shares work between rows); (NI-1, 0)
      // and (0, NJ-1), no cell's lower or upper corner, are scored too: simpler, and cheap.
      for (size_t i = 0; i < NI; ++i)
        for (size_t j = 0; j < NJ; ++j)
          load(c, lin_edges_[i], lout_edges_[j], &rows[(i * NJ + j) * ns]);
      E.finish_rows(rows.data(), n_nodes);
      for (size_t q = 0; q < n_nodes; ++q) {
        v[q] = rows[q * ns + static_cast<size_t>(slot_)];
        lat[q] = rows[q * ns + static_cast<size_t>(l_slot)];
        en[q] = rows[q * ns + static_cast<size_t>(e_slot)];
      }
      for (size_t ci = 0; ci + 1 < NI; ++ci)
        for (size_t cj = 0; cj + 1 < NJ; ++cj) {
          const size_t lo = ci * NJ + cj, hi = (ci + 1) * NJ + cj + 1;
          Entry& e = entries_[(ci * (NJ - 1) + cj) * K + k];
          e.bound = monotone ? round_down(maximize_ ? -v[lo] : v[lo]) : kNegInf;
          // Latency and energy never decrease with the lengths (non-negative length terms).
          e.latency_lb = round_down(lat[lo]);
          e.power_lb = lat[hi] > 0 ? round_down(en[lo] / lat[hi]) : kNegInf;
          e.cand = static_cast<std::uint32_t>(k);
        }
    }
  });
  parallel_for(static_cast<Index>(n_cells), resolve_threads(0), [&](Index cell) {
    std::vector<Entry> tmp;
    sort_entries(entries_.data() + static_cast<size_t>(cell) * K, K, tmp);
  });
}

bool Selector::invariant(const std::vector<Limit>& limits) const noexcept {
  for (const Limit& l : limits)
    if (slot_deps_[static_cast<size_t>(l.slot)] & ~need_) return false;
  return true;
}

void Selector::visit_class(std::uint32_t k, double lin, double lout,
                           const std::vector<Limit>& limits, bool same, Tally& t) const {
  // Members in index order. With `same` (every limit reads only the axes the class shares),
  // the first valid member has the class's objective and violation with the lowest index: the
  // others can neither beat nor tie it. Members differ only in what a workload-dependent
  // constraint may reject.
  for (std::uint32_t m = class_start_[k]; m < class_start_[k + 1]; ++m)
    if (evaluate(members_[m], lin, lout, limits, t) && same) return;
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
  if (order == nullptr) {
    for (size_t c = 0; c < cand_index_.size(); ++c) evaluate(c, lin, lout, limits, t);
    return t.result(maximize_);
  }
  const bool same = invariant(limits);
  const size_t K = class_start_.size() - 1;
  for (size_t k = 0; k < K; ++k) {
    const Entry& e = order[k];
    // Sorted bounds: once one exceeds the best value found, no later class can beat or tie it
    // (ties need an equal value, which is >= its bound).
    if (t.best >= 0 && static_cast<double>(e.bound) > t.best_key) break;
    // Surely over a limit: cannot be feasible (the caller rescans if nothing is).
    if (static_cast<double>(e.latency_lb) > lat_max || static_cast<double>(e.power_lb) > pow_max)
      continue;
    visit_class(e.cand, lin, lout, limits, same, t);
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
  const size_t n = class_start_.size() - 1;
  const bool same = invariant(limits);
  // Lower bound of each class's total violation: only latency and power terms are bounded
  // (the others count 0); shrunk a hair so that rounding can never lift it above.
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
    visit_class(order[kmin].cand, lin, lout, limits, same, t);
  }
  for (size_t k = 0; k < n; ++k) {
    if (done[k] || (t.nearest >= 0 && vlb[k] > t.near_violation)) continue;
    visit_class(order[k].cand, lin, lout, limits, same, t);
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
    const size_t K = class_start_.size() - 1;
    const Entry* order =
        entries_.data() +
        (static_cast<size_t>(ci) * (lout_edges_.size() - 1) + static_cast<size_t>(cj)) * K;
    r = scan(input_len, output_len, limits, order, lat_max, pow_max);
    // Nothing feasible: the skipped candidates matter for the nearest point.
    if (!r.feasible) r = nearest(input_len, output_len, limits, order);
  }
  r.n_valid = -1;
  r.n_feasible = -1;
  return r;
}

}  // namespace energycore::space
