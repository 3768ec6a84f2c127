// The Selector of space.hpp: per-cell candidate orderings over the (input_len, output_len)
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
#include "energycore/space.hpp"

namespace energycore::space {

namespace {

constexpr Index kChunk = Index(1) << 15;

/// A float not above x: a lower bound stored in half the memory. NaN gives -inf (no pruning).
float round_down(double x) noexcept {
  if (std::isnan(x) || x < -static_cast<double>(FLT_MAX)) return -std::numeric_limits<float>::infinity();
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
    : engine_(std::move(engine)), slot_(slot), maximize_(maximize), lin_slot_(lin_slot),
      lout_slot_(lout_slot), lin_edges_(std::move(lin_edges)), lout_edges_(std::move(lout_edges)) {
  if (!engine_) throw std::invalid_argument("selector: no engine");
  const Engine& E = *engine_;
  const Spec& spec = E.spec();
  const int A = E.n_axes();
  const int P = static_cast<int>(spec.params.size());
  if (slot_ < 0 || slot_ >= E.n_slots()) throw std::out_of_range("objective: slot out of range");
  if (lin_slot_ < A || lin_slot_ >= A + P || lout_slot_ < A || lout_slot_ >= A + P)
    throw std::invalid_argument("selector: input_len and output_len must be params, not axes");
  if (monotone) {
    check_edges(lin_edges_, "input_len_edges");
    check_edges(lout_edges_, "output_len_edges");
  } else {
    lin_edges_.clear();
    lout_edges_.clear();
  }
  params_ = spec.params;

  // Which constraints do not depend on the workload: they filter the candidates once.
  std::vector<bool> dep(static_cast<size_t>(E.n_slots()), false);
  dep[static_cast<size_t>(lin_slot_)] = dep[static_cast<size_t>(lout_slot_)] = true;
  auto depends = [&dep](const Program& p) {
    for (const Instr& in : p.code())
      if (in.op == Op::Load && dep[static_cast<size_t>(in.arg)]) return true;
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
  lm::parallel_for(n_chunks, resolve_threads(0), [&](Index c) {
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
  for (size_t c = 0; c < n_cand; ++c) {
    Index rest = cand_index_[c];
    for (int a = A - 1; a >= 0; --a) {
      const Index n = static_cast<Index>(spec.axes[static_cast<size_t>(a)].size());
      cand_digits_[c * static_cast<size_t>(A) + static_cast<size_t>(a)] = rest % n;
      rest /= n;
    }
  }
  if (lin_edges_.empty()) return;

  const size_t n_cells = (lin_edges_.size() - 1) * (lout_edges_.size() - 1);
  order_.resize(n_cells * n_cand);
  bound_.resize(n_cells * n_cand);
  lm::parallel_for(static_cast<Index>(n_cells), resolve_threads(0), [&](Index cell) {
    const size_t ci = static_cast<size_t>(cell) / (lout_edges_.size() - 1);
    const size_t cj = static_cast<size_t>(cell) % (lout_edges_.size() - 1);
    std::vector<double> s(static_cast<size_t>(E.n_slots()));
    std::vector<std::pair<float, std::uint32_t>> items(n_cand);
    for (size_t c = 0; c < n_cand; ++c) {
      load(c, lin_edges_[ci], lout_edges_[cj], s.data());
      E.finish(&cand_digits_[c * static_cast<size_t>(A)], s.data(), true, false);
      const double v = s[static_cast<size_t>(slot_)];
      items[c] = {round_down(maximize_ ? -v : v), static_cast<std::uint32_t>(c)};
    }
    std::sort(items.begin(), items.end());
    const size_t base = static_cast<size_t>(cell) * n_cand;
    for (size_t c = 0; c < n_cand; ++c) {
      bound_[base + c] = items[c].first;
      order_[base + c] = items[c].second;
    }
  });
}

void Selector::load(size_t c, double lin, double lout, double* s) const noexcept {
  const Spec& spec = engine_->spec();
  const int A = engine_->n_axes();
  const Index* d = &cand_digits_[c * static_cast<size_t>(A)];
  for (int a = 0; a < A; ++a)
    s[a] = spec.axes[static_cast<size_t>(a)][static_cast<size_t>(d[a])];
  std::copy(params_.begin(), params_.end(), s + A);
  s[lin_slot_] = lin;
  s[lout_slot_] = lout;
}

int Selector::cell(double x, const std::vector<double>& edges) const noexcept {
  if (edges.empty() || !(x >= edges.front()) || !(x < edges.back())) return -1;
  const auto it = std::upper_bound(edges.begin(), edges.end(), x);
  return static_cast<int>(it - edges.begin()) - 1;
}

Selection Selector::best(double input_len, double output_len,
                         const std::vector<Limit>& limits) const {
  const Engine& E = *engine_;
  for (const Limit& l : limits)
    if (l.slot < 0 || l.slot >= E.n_slots() || l.op < 0 || l.op > 4)
      throw std::out_of_range("limits: bad limit");
  const int A = E.n_axes();
  std::vector<double> s(static_cast<size_t>(E.n_slots()));
  Tally t;
  const int ci = cell(input_len, lin_edges_);
  const int cj = cell(output_len, lout_edges_);
  const size_t n_cand = cand_index_.size();
  if (ci < 0 || cj < 0) {  // outside the grid: every candidate, no stop
    for (size_t c = 0; c < n_cand; ++c) {
      load(c, input_len, output_len, s.data());
      if (E.finish(&cand_digits_[c * static_cast<size_t>(A)], s.data(), false, false))
        t.offer(limits, slot_, maximize_, cand_index_[c], s.data());
    }
  } else {
    const size_t base =
        (static_cast<size_t>(ci) * (lout_edges_.size() - 1) + static_cast<size_t>(cj)) * n_cand;
    for (size_t k = 0; k < n_cand; ++k) {
      // Sorted bounds: once one exceeds the best value found, no later candidate can beat or
      // tie it (ties need an equal value, which is >= its bound).
      if (t.best >= 0 && static_cast<double>(bound_[base + k]) > t.best_key) break;
      const size_t c = order_[base + k];
      load(c, input_len, output_len, s.data());
      if (E.finish(&cand_digits_[c * static_cast<size_t>(A)], s.data(), false, false))
        t.offer(limits, slot_, maximize_, cand_index_[c], s.data());
    }
  }
  Selection r = t.result(maximize_);
  r.n_valid = -1;
  r.n_feasible = -1;
  return r;
}

}  // namespace energycore::space
