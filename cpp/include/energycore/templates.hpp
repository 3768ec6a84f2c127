// Closed-form model templates (DESIGN.md, "The energy model (template v1)") as data objects:
// coefficient metadata, value, analytic gradient and phase split, evaluated per configuration
// row. Fitting a template to data lives apart, in fit.hpp.
#pragma once

#include <string>
#include <string_view>
#include <vector>

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

/// The registered templates: "energy_v1", "energy_v2", "ttft_v1", "tpot_v1", "tpot_moe_v1",
/// "tpot_v2".
const ModelTemplate& get_template(std::string_view name);  // throws std::invalid_argument
std::vector<std::string> template_names();

/// Vectorised helpers over a feature table (multi-threaded above a few thousand rows).
void evaluate(const ModelTemplate& t, const FeatureRef& X, const Vector& theta,
              Eigen::Ref<Vector> out, int n_threads = 1);
void jacobian(const ModelTemplate& t, const FeatureRef& X, const Vector& theta,
              Eigen::Ref<Matrix> out);
void phases(const ModelTemplate& t, const FeatureRef& X, const Vector& theta,
            Eigen::Ref<Matrix> out);

}  // namespace energycore::model
