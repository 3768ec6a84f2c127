// The query tables of a configuration space: a Selector answers "best point for this workload"
// from per-cell orderings precomputed over an Engine (space.hpp).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "energycore/space.hpp"

namespace energycore::space {

/// Answers "best point for this workload under these limits" from precomputed orderings: the
/// workload plane (input_len x output_len) is cut into cells; in each cell the candidates are
/// sorted by a lower bound of the objective (its value at the cell's lower corner, valid because
/// every objective it accepts is non-decreasing in both lengths, or constant). A query scans in
/// that order with exact scoring and stops once the bound exceeds the best value found, so its
/// answer is exactly Engine::argmin's (same objective doubles, same tie-break by index).
class Selector {
 public:
  /// `lin_slot`, `lout_slot`: the param slots of input_len and output_len. `monotone`: the
  /// objective is non-decreasing in both lengths (else every query scans all candidates).
  /// Also stored per cell: lower bounds of latency_s (at the lower corner) and of power_w
  /// (energy at the lower corner over latency at the upper corner), so that candidates surely
  /// over a latency limit or a power cap are skipped without scoring; when nothing is feasible
  /// the query rescans everything for the nearest point.
  Selector(std::shared_ptr<const Engine> engine, int slot, bool maximize, bool monotone,
           int lin_slot, int lout_slot, std::vector<double> lin_edges,
           std::vector<double> lout_edges);

  /// Same answer as engine.argmin(slot, maximize, limits, {}) with input_len and output_len set;
  /// n_valid and n_feasible are not counted (-1).
  Selection best(double input_len, double output_len, const std::vector<Limit>& limits) const;
  Index n_candidates() const noexcept { return static_cast<Index>(cand_index_.size()); }

 private:
  std::shared_ptr<const Engine> engine_;
  int slot_;
  bool maximize_;
  int lin_slot_, lout_slot_;
  std::vector<double> lin_edges_, lout_edges_;
  std::vector<double> params_;      ///< the engine's params (overridden per query)
  std::vector<Index> cand_index_;   ///< candidate point indices (ascending)
  std::vector<Index> cand_digits_;  ///< n_cand x n_axes
  struct Entry {
    float bound;       ///< lower bound of the (sign-adjusted) objective, rounded down
    float latency_lb;  ///< lower bound of latency_s (-inf: unknown)
    float power_lb;    ///< lower bound of power_w (-inf: unknown)
    std::uint32_t cand;
  };
  /// Classes of candidates that agree on every axis the objective, latency and energy read
  /// (so on all their scores at any workload): members of class k are
  /// members_[class_start_[k] .. class_start_[k + 1]), ascending; classes are numbered in the
  /// order of their first member.
  std::vector<std::uint32_t> class_start_, members_;
  std::uint64_t need_ = 0;                ///< the axes the classes agree on (bit per axis)
  std::vector<std::uint64_t> slot_deps_;  ///< per slot: the axes it reads (bit per axis)
  std::vector<Entry> entries_;  ///< per cell: one entry per class (`cand`: the class), sorted
                                ///< by bound, then class
  /// The per-cell tables: values at the grid's nodes, scored once per class, one batch of
  /// nodes per class, then sorted by bound, then class.
  void build_tables(bool monotone);
  /// Whether every limit reads only axes that the classes agree on.
  bool invariant(const std::vector<Limit>& limits) const noexcept;
  /// Offers the members of class k in index order; with `same`, stops at the first valid one.
  void visit_class(std::uint32_t k, double lin, double lout, const std::vector<Limit>& limits,
                   bool same, Tally& t) const;
  static void sort_entries(Entry* a, size_t n, std::vector<Entry>& tmp);
  Selection scan(double lin, double lout, const std::vector<Limit>& limits, const Entry* order,
                 double lat_max, double pow_max) const;
  /// The nearest point when nothing is feasible: candidates in order of a lower bound of their
  /// violation (from the stored latency and power bounds), exact scoring only below the best.
  Selection nearest(double lin, double lout, const std::vector<Limit>& limits,
                    const Entry* order) const;
  bool evaluate(size_t c, double lin, double lout, const std::vector<Limit>& limits,
                Tally& t) const;
  /// Whether latency_upper_s >= latency_s at every point (both halves bounded with z >= 0), so
  /// that the stored latency bounds also bound it.
  bool upper_bounds_latency() const noexcept;
  /// Whether power_upper_w >= power_w at every point (energy and latency bounded, z >= 0), so
  /// that the stored power bounds also bound it.
  bool upper_bounds_power() const noexcept;
  /// Cell of x among the edges ([e_k, e_k+1)), -1 outside.
  int cell(double x, const std::vector<double>& edges) const noexcept;
  /// Axis and param slots of candidate c at the given workload.
  void load(size_t c, double lin, double lout, double* s) const noexcept;
};

}  // namespace energycore::space
