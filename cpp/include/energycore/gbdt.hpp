// Histogram gradient-boosted decision trees: training, prediction, model state.
//
// Features are binned once per fit (quantile cuts, at most 255 value bins per feature plus one
// bin for missing values); trees grow depth-wise or leaf-wise on gradient/hessian histograms
// (built feature-parallel on a worker pool, the larger child by subtraction), with L2
// regularisation, minimum child weight and samples, seeded row and column subsampling, sample
// weights, monotone constraints, a learned default direction for NaN and early stopping on a
// validation set. Objectives: squared error, Huber, binary logistic, pairwise ranking in query
// groups. A fitted `Model` is immutable: its const methods may run concurrently from any number
// of threads. Thresholds are real feature values, so prediction needs no bins.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "energycore/parallel.hpp"
#include "energycore/types.hpp"

namespace energycore::gbdt {

enum class Objective : int { squared_error = 0, huber = 1, logistic = 2, pairwise = 3 };
enum class Growth : int { depthwise = 0, leafwise = 1 };

/// Parses "squared_error", "huber", "logistic", "pairwise"; throws std::invalid_argument.
Objective parse_objective(const std::string& name);
const char* objective_name(Objective o) noexcept;
/// Parses "depthwise", "leafwise"; throws std::invalid_argument.
Growth parse_growth(const std::string& name);
const char* growth_name(Growth g) noexcept;

struct Params {
  Objective objective = Objective::squared_error;
  Growth growth = Growth::depthwise;
  int n_estimators = 100;
  double learning_rate = 0.1;
  int max_depth = 6;              ///< <= 0: unlimited
  int num_leaves = 0;             ///< <= 0: unlimited (leaf-wise growth needs >= 2)
  double lambda_l2 = 1.0;         ///< L2 penalty on leaf values
  double min_child_weight = 1.0;  ///< minimum hessian sum in a child
  int min_child_samples = 1;      ///< minimum (sampled) rows in a child
  double min_split_gain = 0.0;
  double subsample = 1.0;  ///< fraction of rows per tree (Bernoulli, seeded)
  double colsample = 1.0;  ///< fraction of features per tree (seeded)
  int max_bin = 255;       ///< value bins per feature, 2..255 (NaN has a bin of its own)
  double huber_delta = 1.0;
  int pairs_per_sample = 8;       ///< pairwise objective: partners drawn per row and iteration
  int early_stopping_rounds = 0;  ///< > 0 with a validation set: stop after so many rounds
  std::vector<int> monotone;      ///< empty, or one of -1, 0, +1 per feature
  std::uint64_t seed = 0;
  int n_threads = 0;  ///< <= 0: all hardware threads

  /// Throws std::invalid_argument naming the first bad field.
  void validate(Index n_features) const;
};

/// Non-owning view of a training or validation set: X row-major (n_rows x n_features), y, and
/// optional weights (w) and query-group ids (group, pairwise objective only).
struct DataView {
  const double* X = nullptr;
  Index n_rows = 0;
  Index n_features = 0;
  const double* y = nullptr;
  const double* w = nullptr;
  const std::int64_t* group = nullptr;
};

/// One tree node. `left == 0` marks a leaf (the root of tree 0 is never anybody's child) whose
/// value is `value`; otherwise `value` is the threshold: x <= value goes to `left`, larger x to
/// `left + 1`, NaN to the learned default side.
struct Node {
  double value = 0.0;
  std::uint32_t left = 0;
  std::uint32_t feature = 0;  ///< bit 31: NaN goes left
  static constexpr std::uint32_t kDefaultLeft = 0x80000000u;
  /// 1 if x goes left, else 0; without branches (the direction is data, not predictable).
  std::uint32_t goes_left(double x) const noexcept {
    const auto le = static_cast<std::uint32_t>(x <= value);
    const auto nan = static_cast<std::uint32_t>(x != x);
    return le | (nan & (feature >> 31));
  }
};

/// Most features a model may have: its importance vectors hold one double per feature, so a
/// file cannot make them allocate more than 8 MiB.
inline constexpr Index kMaxFeatures = Index(1) << 20;

/// Everything a model is made of, as plain arrays (what the JSON file stores).
struct ModelState {
  Objective objective = Objective::squared_error;
  Index n_features = 0;
  double base_score = 0.0;
  std::vector<std::int64_t> roots;    ///< first node of each tree; trees are contiguous
  std::vector<std::int64_t> feature;  ///< -1 for a leaf
  std::vector<double> value;          ///< threshold (split) or leaf value
  std::vector<std::int64_t> left;     ///< left child (right = left + 1); -1 for a leaf
  std::vector<std::uint8_t> default_left;
  std::vector<double> gain;   ///< loss reduction of each split (0 for leaves)
  std::vector<double> cover;  ///< hessian sum of the training rows in each node
};

/// A fixed set of rows stored as per-feature codes: the rank of each value among the column's
/// distinct values (NaN, if present, gets the last code). A tuner's candidate set is coded once;
/// every model fitted later then predicts all of it from per-tree tables of leaf bitmasks
/// (QuickScorer-style: AND the masks the row's codes select, the lowest set bit is its leaf)
/// instead of walking each tree. Exact: the same leaves, summed in the same order as
/// `Model::predict_raw`, so the scores are bit-identical.
class CodedRows {
 public:
  /// Codes per column, distinct values plus NaN.
  static constexpr Index kMaxCodes = 256;
  /// X row-major (n_rows x n_features). Throws std::invalid_argument on an empty matrix or a
  /// column with more than kMaxCodes codes (distinct values, plus one if it holds NaN).
  CodedRows(const double* X, Index n_rows, Index n_features);

  Index n_rows() const noexcept { return n_rows_; }
  Index n_features() const noexcept { return n_features_; }
  /// Sorted distinct non-NaN values of column f.
  const std::vector<double>& values(Index f) const { return values_[static_cast<size_t>(f)]; }
  /// Code of NaN in column f (== values(f).size()); only used where the column holds NaN.
  bool has_nan(Index f) const noexcept { return has_nan_[static_cast<size_t>(f)] != 0; }
  /// Codes of column f (distinct values, plus one for NaN if present).
  Index n_codes(Index f) const noexcept {
    return static_cast<Index>(values(f).size()) + (has_nan(f) ? 1 : 0);
  }
  const std::uint8_t* codes() const noexcept { return codes_.data(); }
  /// Consecutive columns packed into one byte where their code counts multiply to <= 256:
  /// group g's code is sum over its columns f of code(f) * multiplier(f). One table lookup per
  /// group instead of per column.
  Index n_groups() const noexcept { return static_cast<Index>(group_size_.size()); }
  Index group_of(Index f) const noexcept { return group_of_[static_cast<size_t>(f)]; }
  Index multiplier(Index f) const noexcept { return mult_[static_cast<size_t>(f)]; }
  Index group_codes(Index g) const noexcept { return group_size_[static_cast<size_t>(g)]; }
  const std::uint8_t* packed() const noexcept { return packed_.data(); }

 private:
  Index n_rows_ = 0;
  Index n_features_ = 0;
  std::vector<std::uint8_t> codes_;  ///< row-major, codes_[r * n_features + f]
  std::vector<std::vector<double>> values_;
  std::vector<std::uint8_t> has_nan_;
  std::vector<Index> group_of_, mult_, group_size_;
  std::vector<std::uint8_t> packed_;  ///< row-major, packed_[r * n_groups + g]
};

class Model {
 public:
  Model() = default;
  /// Validates the state (tree structure, child order, feature indices, finite values) and
  /// throws std::invalid_argument naming the problem, so that no file can make predict crash.
  explicit Model(const ModelState& state);

  ModelState state() const;
  Objective objective() const noexcept { return objective_; }
  Index n_features() const noexcept { return n_features_; }
  Index n_trees() const noexcept { return static_cast<Index>(roots_.size()); }
  Index n_nodes() const noexcept { return static_cast<Index>(nodes_.size()); }
  double base_score() const noexcept { return base_score_; }

  /// Raw score (margin) of one row of n_features values. Trees are walked kLanes at a time in
  /// lockstep: their walks are independent, so the loads of one overlap the others'.
  double predict_row(const double* x) const noexcept {
    double s = base_score_;
    const Node* walk = walk_.data();
    const size_t n_trees = trees_.size();
    for (size_t g = 0; g < n_trees; g += kLanes) {
      const size_t m = std::min(kLanes, n_trees - g);
      std::uint32_t at[kLanes];
      for (size_t k = 0; k < m; ++k) at[k] = trees_[g + k].root;
      for (int d = 0, depth = lane_depth_[g / kLanes]; d < depth; ++d) {
        for (size_t k = 0; k < m; ++k) {
          const Node& n = walk[at[k]];
          at[k] = n.left + 1u - n.goes_left(x[n.feature & ~Node::kDefaultLeft]);
        }
      }
      for (size_t k = 0; k < m; ++k) s += leaf_value_[at[k]];
    }
    return s;
  }
  /// Raw scores of n rows (row-major), on up to n_threads threads (<= 0: all).
  void predict_raw(const double* X, Index n, double* out, int n_threads) const;
  /// Raw scores of every row of a coded set (see CodedRows), on up to n_threads threads;
  /// bit-identical to predict_raw on the rows the codes stand for. Throws
  /// std::invalid_argument if the set's feature count differs from the model's.
  void predict_coded(const CodedRows& rows, double* out, int n_threads) const;
  /// The objective's link applied to a raw score (sigmoid for logistic, identity otherwise).
  double transform(double raw) const noexcept;
  /// Per-feature importance: "gain" (sum of split gains) or "split" (number of splits).
  std::vector<double> importance(const std::string& kind) const;

 private:
  Objective objective_ = Objective::squared_error;
  Index n_features_ = 0;
  double base_score_ = 0.0;
  std::vector<std::uint32_t> roots_;
  std::vector<Node> nodes_;
  // The trees for walking: a leaf loops to itself (left = itself, x <= +inf or NaN goes left),
  // so that every walk takes exactly the tree's depth in steps, without a data-dependent exit;
  // leaf values apart. Batch prediction walks blocks of rows in lockstep.
  struct Tree {
    std::uint32_t root;
    int depth;
  };
  static constexpr size_t kLanes = 8;
  std::vector<Tree> trees_;
  std::vector<int> lane_depth_;  ///< deepest tree of each group of kLanes trees
  std::vector<Node> walk_;
  std::vector<double> leaf_value_;
  std::vector<double> gain_;
  std::vector<double> cover_;
};

/// Trains a model. With `valid` (and early_stopping_rounds > 0) stops when the validation metric
/// has not improved for that many rounds and keeps the best iteration's trees; the metric of each
/// round (RMSE, mean Huber loss, log loss, or pairwise error) goes to `valid_curve` if given.
/// Inputs are assumed valid (finite y and w, no +-inf in X) beyond what `Params::validate` and
/// the shape checks here catch (std::invalid_argument).
Model train(const DataView& data, const DataView* valid, const Params& params,
            std::vector<double>* valid_curve = nullptr);

/// Fraction of correctly ordered pairs (ties in score count one half) over all pairs of rows in
/// the same query group with different labels; NaN when there are no such pairs. O(n log n).
/// A NaN score or label throws std::invalid_argument.
double pairwise_accuracy(const double* score, const double* y, const std::int64_t* group, Index n);

// ---- internals shared by the gbdt source files -------------------------------------------

namespace detail {

/// Quantile bins of a feature matrix: cut points per feature, and the binned matrix stored
/// row-major (bins[i * n_features + f]); NaN falls in bin `n_bins(f) - 1` (the last one).
struct Binned {
  Index n_rows = 0;
  Index n_features = 0;
  std::vector<std::vector<double>> cuts;  ///< value bin b holds x with cuts[b-1] < x <= cuts[b]
  std::vector<std::uint8_t> bins;
  /// Histogram slots of feature f: value bins plus the NaN bin.
  int n_bins(Index f) const noexcept {
    return static_cast<int>(cuts[static_cast<size_t>(f)].size()) + 2;
  }
};

/// Cut points from (up to 200 000 sampled) rows of positive weight (w may be null: all), then
/// every row binned. Feature-parallel.
Binned bin_features(const double* X, const double* w, Index n_rows, Index n_features, int max_bin,
                    std::uint64_t seed, const Workers& pool);

}  // namespace detail

}  // namespace energycore::gbdt
