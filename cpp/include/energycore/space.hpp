// Configuration space engine (DESIGN.md, "ConfigSpace"): axes of numeric values walked lazily in
// mixed-radix order, constraint programs compiled by Python into a small stack bytecode, scoring
// of each valid point with fitted model templates, and the reductions on top of it: count,
// listing, top-k, constrained argmin (with the nearest point when nothing is feasible), Pareto
// front. The Selector answering workload queries on top of an engine is in selector.hpp.
//
// A point is a vector of `slots`, laid out as
//   [axes (A)] [params (P): constants given at query time] [derived (D)] [objectives (kObjectives)]
// Programs address slots by index. Categorical axes arrive coded as integers (0, 1, ...).
// Everything here is immutable after construction and safe to call from many threads.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "energycore/templates.hpp"
#include "energycore/types.hpp"

namespace energycore::space {

/// Bytecode operations. Binary ops pop b then a and push (a op b); comparisons and logic push
/// 1.0 or 0.0; `Min`/`Max` pop `arg` operands. Semantics follow Python on floats: `Mod` takes the
/// sign of the divisor, `FloorDiv` floors; division by zero gives NaN and NaN compares false.
enum class Op : std::int32_t {
  Const = 0,
  Load = 1,
  Add = 2,
  Sub = 3,
  Mul = 4,
  Div = 5,
  FloorDiv = 6,
  Mod = 7,
  Pow = 8,
  Neg = 9,
  Not = 10,
  Lt = 11,
  Le = 12,
  Gt = 13,
  Ge = 14,
  Eq = 15,
  Ne = 16,
  And = 17,
  Or = 18,
  Min = 19,
  Max = 20,
  Abs = 21,
  /// Pushes table[slots[arg]]: `value` holds the table size n and the next n instructions are
  /// Const entries holding the table (skipped by the interpreter). A value of slots[arg] that
  /// is not an integer in [0, n) gives NaN. Used for categorical axes (coded 0, 1, ...).
  Lookup = 22,
};

struct Instr {
  Op op = Op::Const;
  std::int32_t arg = 0;  ///< slot for Load and Lookup, operand count for Min/Max
  double value = 0.0;    ///< constant for Const, table size for Lookup
};

/// A compiled expression over slots. An empty program evaluates to 1 (true).
class Program {
 public:
  Program() = default;
  /// Validates the stack discipline and slot range; throws std::invalid_argument.
  Program(std::vector<Instr> code, int n_slots);
  double eval(const double* slots) const noexcept;
  bool empty() const noexcept { return code_.empty(); }
  bool uses(int slot) const noexcept;
  /// The slots the program reads (Load and Lookup), with repeats.
  std::vector<int> reads() const;
  const std::vector<Instr>& code() const noexcept { return code_; }

 private:
  static constexpr int kMaxStack = 64;
  std::vector<Instr> code_;
};

/// The objective columns every point carries after scoring (NaN where no model gives them).
enum Objective : int {
  kEnergyJ = 0,            ///< energy of one batch over all GPUs, J
  kEnergyPerRequestJ = 1,  ///< energy_j / batch
  kTtftS = 2,              ///< time to first token of the batch, s
  kTpotS = 3,              ///< time per output token, s
  kLatencyS = 4,           ///< ttft_s + output_len * tpot_s
  kPowerW = 5,             ///< energy_j / latency_s: average power of the deployment
  /// Upper bounds of the latency scores at the query's confidence (NaN without one): for a
  /// model with uncertainty, value * exp(z * sqrt(resid_var + g' C g / value^2)), g the
  /// gradient of the value in the coefficients (the delta method on log value).
  kTtftUpperS = 6,
  kTpotUpperS = 7,
  kLatencyUpperS = 8,  ///< ttft_upper_s + output_len * tpot_upper_s
  /// Upper bound of energy_j, as the latency halves' (NaN unless the energy model is bounded).
  kEnergyUpperJ = 9,
  /// Upper bound of power_w (NaN unless the energy model and both latency halves are bounded):
  /// the delta method on log power = log energy - log latency, the energy and latency models
  /// fitted independently so that their log variances add: power_w * exp(sqrt(a_E^2 + a_L^2))
  /// with a_E = log(energy_upper_j / energy_j) and a_L = (ttft_s a_T + output_len tpot_s a_P)
  /// / latency_s (a_T, a_P the halves' exponents, fully correlated as in latency_upper_s); the
  /// square root takes the sign of the exponents (all z share it: one confidence).
  kPowerUpperW = 10,
  kObjectives = 11,
};

/// One model template with a coefficient vector per code of the key axis (or a single one).
struct ModelSet {
  const model::ModelTemplate* tmpl = nullptr;
  /// Keeps a template built at run time alive (a term-sum model, term_sum.hpp); tmpl points to it.
  std::shared_ptr<const model::ModelTemplate> owned;
  std::vector<Vector> theta;  ///< size 1 (used for every point) or one per key code
  /// Uncertainty, for the upper-bound objectives (empty: no bound). One
  /// entry per theta: the coefficient covariance (n_params x n_params) and the residual
  /// variance in log space; `z` is the one-sided quantile that scales the log-space std.
  std::vector<Matrix> cov;
  std::vector<double> resid_var;
  double z = 0.0;
  bool present() const noexcept { return tmpl != nullptr; }
  bool bounded() const noexcept { return !cov.empty(); }
};

struct Spec {
  std::vector<std::vector<double>> axes;  ///< values of each axis (non-empty)
  std::vector<double> params;             ///< constant slots after the axes
  std::vector<Program> derived;           ///< slot A+P+k = derived[k](slots), in order
  std::vector<Program> constraints;       ///< a point is valid when all are true
  std::array<int, kFeatures> feature_slot{{-1, -1, -1, -1, -1}};  ///< axis or param slot
  int key_axis = -1;  ///< axis whose code selects the coefficients (-1: one model for all)
  ModelSet energy, ttft, tpot;
  /// Explicit points instead of the Cartesian product of the axes: n_points x n_axes axis
  /// digits (indices into each axis's values), row-major; point i is row i. Empty: the product.
  std::vector<Index> rows;
};

/// A bound on one slot: slot (op) value with op 0 "<=", 1 "<", 2 ">=", 3 ">", 4 "==".
struct Limit {
  int slot = 0;
  int op = 0;
  double value = 0.0;
  bool holds(double v) const noexcept;
  /// Relative amount by which v misses the bound (0 when it holds, +inf for NaN).
  double violation(double v) const noexcept;
};

/// The answer of a constrained argmin. `index` is -1 when nothing valid is feasible; then
/// `nearest` is the valid point with the smallest total relative violation (-1 if none valid).
struct Selection {
  bool feasible = false;
  Index index = -1;
  double objective = std::numeric_limits<double>::quiet_NaN();
  Index nearest = -1;
  double violation = std::numeric_limits<double>::quiet_NaN();
  Index n_valid = 0;
  Index n_feasible = 0;
};

/// The running state of a constrained argmin over points offered in any order; tallies of
/// disjoint sets of points merge. Ties go to the lower index, so the answer is order-free.
struct Tally {
  double best_key = std::numeric_limits<double>::infinity();
  Index best = -1;
  double near_violation = std::numeric_limits<double>::infinity();
  double near_key = std::numeric_limits<double>::infinity();
  Index nearest = -1;
  Index n_valid = 0;
  Index n_feasible = 0;

  /// Offers valid point i with slots s: feasible when its objective is defined and every
  /// limit holds; otherwise a candidate for the nearest point (least total violation, then
  /// objective, then index).
  void offer(const std::vector<Limit>& limits, int slot, bool maximize, Index i,
             const double* s) noexcept;
  void merge(const Tally& other) noexcept;
  Selection result(bool maximize) const noexcept;

 private:
  void offer_feasible(double key, Index i) noexcept;
  void offer_nearest(double viol, double key, Index i) noexcept;
};

/// The engine of one query: a space with its fixed values, constraints and fitted models.
/// Immutable after construction; every method may be called from many threads at once.
class Engine {
 public:
  /// Takes the spec by value; precomputes model values over the distinct model inputs when
  /// each entry of that table serves two points or more (at most `kMaxTable` entries), and
  /// the truth of constraints over few axis values (see build_constraint_tables).
  Engine(Spec spec, int n_threads);

  static constexpr Index kMaxTable = Index(1) << 22;

  Index size() const noexcept { return size_; }
  int n_axes() const noexcept { return static_cast<int>(spec_.axes.size()); }
  int n_slots() const noexcept { return n_slots_; }
  int objective_slot(Objective o) const noexcept { return obj0_ + static_cast<int>(o); }
  bool uses_table() const noexcept { return !table_.empty(); }
  const Spec& spec() const noexcept { return spec_; }

  /// Valid points (that also pass `where`).
  Index count_valid(const Program& where) const;
  /// Indices of the first `limit` valid points (passing `where`), in enumeration order.
  std::vector<Index> valid_indices(Index limit, const Program& where) const;
  /// All slots of the given points (n x n_slots); rows of invalid indices are filled anyway.
  /// `params` (n_params values, or null for the engine's own) overrides the fixed values.
  RowMatrix rows(const std::vector<Index>& indices, const double* params = nullptr) const;
  /// The k valid points with the smallest (or largest) value of a slot; ties by index.
  std::vector<Index> top_k(int slot, bool maximize, Index k, const Program& where) const;
  /// The valid point with the smallest (largest) slot value among those meeting every limit.
  Selection argmin(int slot, bool maximize, const std::vector<Limit>& limits,
                   const Program& where) const;
  /// Indices of the valid points not dominated in the given slots (each minimised unless its
  /// flag in `maximize` is set), sorted by the first slot, then by index.
  std::vector<Index> pareto(const std::vector<int>& slots, const std::vector<bool>& maximize,
                            const Program& where) const;

  /// Fills `slots` (n_slots doubles) for point `index` with params overridden by `params`
  /// (may be null), and returns whether the point satisfies the constraints. Objectives are
  /// computed only for valid points unless `score_always`.
  bool evaluate(Index index, const double* params, double* slots, bool score_always) const noexcept;

  /// Evaluates derived slots, constraints and (when valid) objectives for a point whose axis
  /// and param slots are already set. `digits` are the axis digits of the point.
  /// `own_params`: the param slots hold the engine's params, so the model table (computed with
  /// them) may be used; otherwise the models are evaluated directly.
  bool finish(const Index* digits, double* slots, bool score_always,
              bool own_params = true) const noexcept;

  /// finish() for n rows of n_slots doubles stored one after another (axis and param slots
  /// set), with the models evaluated directly on the rows' own params and scored in one batch
  /// (the same doubles as finish(..., score_always = true, own_params = false) row by row).
  void finish_rows(double* rows, size_t n) const;

  /// The axis digits of point `index` (n_axes values): its mixed-radix digits, or its row of
  /// the explicit points.
  void digits_of(Index index, Index* digits) const noexcept;
  bool explicit_rows() const noexcept { return !spec_.rows.empty(); }

 private:
  template <class F>
  void walk(Index begin, Index end, const Program& where, F&& visit) const;
  /// walk() over explicit points: every point evaluated on its own, models scored in batches.
  template <class F>
  void walk_rows(Index begin, Index end, const Program& where, F&& visit) const;
  void score(const Index* digits, double* slots, bool own_params) const noexcept;
  void score_direct(double* slots) const noexcept;
  /// Model values and derived objectives of n rows of slots stored one after another.
  void score_rows(double* rows, size_t n) const;
  /// energy_per_request_j, latency_s and power_w from the model values of a row.
  void derive(double* slots) const noexcept;
  /// The derived columns (derived=, n_gpus) of a row, from its axes and params.
  void derive_columns(double* slots) const noexcept;
  void build_table();
  void build_levels();
  /// Highest axis position a program depends on (through derived and objective slots), -1 none.
  int level_of(const Program& p) const;

  Spec spec_;
  int n_threads_ = 1;
  Index size_ = 1;
  int n_slots_ = 0;
  int obj0_ = 0;
  std::vector<Index> table_stride_;  ///< per axis: stride in the model table (0: not an input)
  /// kTableWidth doubles per entry: energy, ttft, tpot, their bounds, the power bound
  std::vector<double> table_;
  static constexpr size_t kTableWidth = 7;
  // Incremental walk: a program is re-evaluated only when an axis it depends on changed, and a
  // failing constraint skips the whole block of points sharing its axes' values.
  std::vector<std::uint64_t> slot_deps_;  ///< per slot: bit a set when it depends on axis a
  std::vector<int> derived_level_, constraint_level_;
  int model_level_ = -1;
  std::vector<Index> block_;  ///< per axis: points between two steps of that axis (its stride)
  /// A constraint over few axis values is tabulated once: truth per combination of the values
  /// of the axes it reads (strides per such axis); empty when it is evaluated per point.
  struct Tabulated {
    std::vector<std::pair<int, Index>> strides;  ///< (axis, stride in the table)
    std::vector<char> truth;
  };
  std::vector<Tabulated> tabulated_;
  static constexpr Index kMaxConstraintTable = Index(1) << 16;
  void build_constraint_tables();
};

}  // namespace energycore::space
