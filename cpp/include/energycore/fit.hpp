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

/// Lawson-Hanson non-negative least squares: argmin ||A x - b|| subject to x >= 0.
Vector nnls(const Matrix& A, const Vector& b, int max_iter = 0);

}  // namespace energycore::model
