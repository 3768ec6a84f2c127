// Closed-form model templates (DESIGN.md, "The energy model (template v1)") as data objects:
// coefficient metadata, value, analytic gradient, phase split, evaluated per configuration row.
// The fit of a template to data (log-ratio residuals, non-negative linear starts, multi-start LM,
// bootstrap) lives here too, so every template is fitted by the same code.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "energycore/lm.hpp"
#include "energycore/types.hpp"

namespace energycore::model {

struct ParamInfo {
  std::string name;
  std::string unit;
  std::string description;
  double lower = 0.0;
  double upper = 0.0;
  bool linear = true;     ///< the template is linear in this coefficient once the others are fixed
  double typical = 0.0;   ///< a neutral default / starting value
  double start_hi = 1.0;  ///< upper end of the range multi-start draws nonlinear coefficients from
};

/// A closed-form model y = f(row; theta) > 0 over rows of (tp, pp, batch, input_len, output_len).
/// Implementations are immutable and thread-safe.
class ModelTemplate {
 public:
  virtual ~ModelTemplate() = default;
  virtual std::string_view name() const noexcept = 0;
  virtual std::string_view quantity() const noexcept = 0;  ///< what it predicts, e.g. "energy_j"
  virtual const std::vector<ParamInfo>& params() const noexcept = 0;
  virtual const std::vector<std::string>& phase_names() const noexcept = 0;
  Index n_params() const noexcept { return static_cast<Index>(params().size()); }

  /// Value at one row (kFeatures doubles) with coefficients theta (n_params doubles).
  virtual double value(const double* row, const double* theta) const noexcept = 0;
  /// Value and its gradient d value / d theta (written to grad, n_params doubles).
  virtual double value_and_gradient(const double* row, const double* theta,
                                    double* grad) const noexcept = 0;
  /// The value split into phases (phase_names().size() doubles, summing to the value).
  virtual void phases(const double* row, const double* theta, double* out) const noexcept = 0;

  /// Values of every row of X and, when `grad` is not null, the gradients (row i of grad,
  /// X.rows() x n_params). The default loops over `value_and_gradient`; templates override it
  /// to share work between rows (powers of the few distinct tp values, say).
  virtual void batch(const FeatureRef& X, const double* theta, double* values, Matrix* grad) const;
};

/// The registered templates: "energy_v1", "energy_v2", "ttft_v1", "tpot_v1".
const ModelTemplate& get_template(std::string_view name);  // throws std::invalid_argument
std::vector<std::string> template_names();

/// Vectorised helpers over a feature table (multi-threaded above a few thousand rows).
void evaluate(const ModelTemplate& t, const FeatureRef& X, const Vector& theta,
              Eigen::Ref<Vector> out, int n_threads = 1);
void jacobian(const ModelTemplate& t, const FeatureRef& X, const Vector& theta,
              Eigen::Ref<Matrix> out);
void phases(const ModelTemplate& t, const FeatureRef& X, const Vector& theta,
            Eigen::Ref<Matrix> out);

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
