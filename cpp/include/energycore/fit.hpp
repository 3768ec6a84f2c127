// Fitting a closed-form template (templates.hpp) to data: log-ratio residuals, non-negative
// linear starts, multi-start Levenberg-Marquardt and the bootstrap, so that every template is
// fitted by the same code.
#pragma once

#include <cstdint>
#include <vector>

#include "energycore/lm.hpp"
#include "energycore/templates.hpp"
#include "energycore/types.hpp"

namespace energycore::model {

/// The residual functor of a fit: r_i = log(f(x_i; theta) / y_i).
class LogRatioProblem final : public lm::Problem {
 public:
  LogRatioProblem(const ModelTemplate& t, FeatureRef X, Eigen::Ref<const Vector> y);
  Index n_residuals() const noexcept override { return X_.rows(); }
  Index n_params() const noexcept override { return t_.n_params(); }
  void evaluate(const Vector& x, Vector& r, Matrix* J) const override;

 private:
  const ModelTemplate& t_;
  FeatureRef X_;
  Eigen::Ref<const Vector> y_;
};

struct FitSpec {
  std::vector<bool> fixed;  ///< per coefficient; empty means none fixed
  Vector fixed_values;      ///< values of the fixed coefficients (size n_params when used)
  Vector lower, upper;      ///< bounds; empty means the template's
  lm::Options lm;
  int n_starts = 8;
  std::uint64_t seed = 0;
  int n_threads = 1;
};

/// The starting points multi-start uses: nonlinear coefficients at their typical values (start 0)
/// or drawn in [lower, start_hi] by a seeded Latin hypercube, and the linear ones from a
/// non-negative least-squares fit of the relative error with the nonlinear ones held.
std::vector<Vector> starting_points(const ModelTemplate& t, FeatureRef X,
                                    Eigen::Ref<const Vector> y, const Vector& w,
                                    const FitSpec& spec);

/// Throws std::invalid_argument unless X has rows, y one value per row and w none or one per row.
void check_data(FeatureRef X, Eigen::Ref<const Vector> y, const Vector& w);

/// Fits with multi-start LM. `w` may be empty. Validates the data (check_data).
lm::Result fit(const ModelTemplate& t, FeatureRef X, Eigen::Ref<const Vector> y, const Vector& w,
               const FitSpec& spec);

/// n_boot refits on rows resampled with replacement (seeded, one stream per replicate so the
/// answer does not depend on the thread count), each started from theta0 (one start each).
/// Returns an (n_boot x n_params) matrix; a failed refit's row is NaN.
Matrix bootstrap(const ModelTemplate& t, FeatureRef X, Eigen::Ref<const Vector> y, const Vector& w,
                 const Vector& theta0, const FitSpec& spec, int n_boot, std::uint64_t seed);

/// Where fit_batch writes its results: caller-owned arrays (numpy buffers, say), one entry (or
/// row) per problem, row-major. `covariance` may be null (not computed).
struct BatchOutput {
  double* coef = nullptr;         ///< k x p
  double* cost = nullptr;         ///< k
  double* optimality = nullptr;   ///< k
  int* status = nullptr;          ///< k (lm::Status)
  int* iterations = nullptr;      ///< k
  int* n_fev = nullptr;           ///< k
  int* n_jev = nullptr;           ///< k
  int* start_index = nullptr;     ///< k
  int* active = nullptr;          ///< k x p (-1 lower, +1 upper, 0 free, 2 fixed)
  double* null_weight = nullptr;  ///< k x p
  std::uint8_t* pinned = nullptr; ///< k x p: held because it has no effect on any row
  double* covariance = nullptr;   ///< k x p x p, or null
};

/// Fits k independent problems of n rows each in one call across spec.n_threads threads (one
/// thread per problem; each problem's starts run inline). X holds the k * n rows problem after
/// problem, y the k * n targets, w none or k * n weights. With `pin_unidentified`, a free
/// coefficient whose Jacobian column (at the typical values, fixed ones at theirs) vanishes on
/// every row of positive weight is held at its typical value, as the Python fit does. Throws
/// std::invalid_argument naming the first problem (lowest index) whose rows cannot determine
/// its free coefficients. The answer does not depend on the thread count.
void fit_batch(const ModelTemplate& t, FeatureRef X, Eigen::Ref<const Vector> y, const Vector& w,
               Index k, const FitSpec& spec, bool pin_unidentified, const BatchOutput& out);

/// What the rows of a fit can identify: the checks TemplateModel.fit makes before it solves.
struct Identification {
  std::vector<Index> pinned;  ///< free coefficients with no effect on any row
  /// With reduce: the log-scaled Jacobian of the free coefficients left is certified to have
  /// full column rank (singular-value ratio above rtol), or there is nothing to decide (one
  /// free coefficient, fewer rows than free ones). False: a collinearity is possible and the
  /// caller decides with an SVD. Always false without reduce.
  bool full_rank = false;
  Vector lo, hi;  ///< per feature: min / max over rows of weight > 0
  Index n_rows = 0;  ///< rows of positive weight
};

/// On the rows of positive weight (all when `w` is empty): a free coefficient (not `fixed`)
/// whose Jacobian column at `values` is exactly zero on every row is pinned. With `reduce`,
/// pinned ones are then set to 0 (neutral) and the Jacobian of log f at those values, columns
/// of the free coefficients normalised to unit length, checked for full rank by a QR bound
/// (Identification::full_rank). Throws std::invalid_argument on sizes that do not match the
/// template or X, or when no row has a positive weight.
Identification identify(const ModelTemplate& t, FeatureRef X, const Vector& w,
                        const std::vector<bool>& fixed, const Vector& values, bool reduce,
                        double rtol);

/// Residuals of a fitted template: `log_ratio` = log(max(f, 1e-300) / y) on every row and the
/// quantiles of log(y / f) at `percentiles` (in [0, 100], numpy's "linear" interpolation) over
/// the rows of positive weight with finite positive f and y; `quantiles` is empty when fewer
/// than two such rows remain.
/// With `screen_k` > 0, `n_over` counts the rows of positive weight whose log ratio lies more
/// than screen_k * sigma from the median (sigma = max(1.4826 MAD, 0.02)), the first pass of
/// the outlier screen; -1 when not computed (screen_k == 0, or a non-finite log ratio).
struct ResidualSummary {
  Vector log_ratio;
  Vector quantiles;
  Index n_over = -1;
};
ResidualSummary residual_summary(const ModelTemplate& t, FeatureRef X, Eigen::Ref<const Vector> y,
                                 const Vector& w, const Vector& theta, const Vector& percentiles,
                                 double screen_k = 0.0);

/// True when every row of X passes the feature checks: finite; tp, pp integers; tp, pp, batch
/// positive; lengths non-negative; each column at most limit[k] (kFeatures values).
bool features_valid(FeatureRef X, const Vector& limit);

/// Lawson-Hanson non-negative least squares: argmin ||A x - b|| subject to x >= 0.
Vector nnls(const Matrix& A, const Vector& b, int max_iter = 0);

}  // namespace energycore::model
