// Levenberg-Marquardt for bounded, weighted, robust nonlinear least squares.
//
// Minimises  cost(x) = 0.5 * sum_i w_i * f_scale^2 * rho((r_i(x) / f_scale)^2)
// over the box lower <= x <= upper, with some coordinates optionally held fixed. The robust
// loss rho is applied as scipy.optimize.least_squares does (residual and Jacobian rescaled by
// rho' and rho''), the damping follows Nielsen, the normal equations are solved with Jacobian
// column scaling (scipy's x_scale="jac"), and bounds are handled by an active set plus projected
// steps. The solver knows nothing of the model: any `Problem` with an analytic Jacobian works.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "energycore/types.hpp"

namespace energycore::lm {

enum class Loss : int { linear = 0, huber = 1, soft_l1 = 2, cauchy = 3, arctan = 4 };

/// Parses "linear", "huber", "soft_l1", "cauchy", "arctan"; throws std::invalid_argument.
Loss parse_loss(const std::string& name);
const char* loss_name(Loss loss) noexcept;

/// rho(z), rho'(z), rho''(z) of a loss at z = (r / f_scale)^2, as scipy defines them.
void loss_terms(Loss loss, double z, double& rho, double& d1, double& d2) noexcept;

/// A residual functor: r(x) in R^m and its Jacobian dr/dx (m x n).
class Problem {
 public:
  virtual ~Problem() = default;
  virtual Index n_residuals() const noexcept = 0;
  virtual Index n_params() const noexcept = 0;
  /// Fills r (size m) and, when J is not null, the Jacobian (m x n).
  virtual void evaluate(const Vector& x, Vector& r, Matrix* J) const = 0;
};

struct Options {
  Loss loss = Loss::linear;
  double f_scale = 1.0;
  double ftol = 1e-10;
  double xtol = 1e-10;
  double gtol = 1e-10;
  int max_iter = 200;  ///< maximum number of LM iterations (Jacobian evaluations)
  double initial_damping = 1e-3;
  bool covariance = true;  ///< compute the covariance and null directions at the solution
};

enum class Status : int {
  max_iterations = 0,
  gtol = 1,
  ftol = 2,
  xtol = 3,
  failed = -1,
};
const char* status_message(Status s) noexcept;

struct Result {
  Vector x;
  Vector residuals;         ///< raw residuals at x (unweighted, no loss)
  double cost = 0.0;        ///< robust, weighted cost at x
  double optimality = 0.0;  ///< inf-norm of the projected, column-scaled gradient
  Status status = Status::failed;
  int iterations = 0;
  int n_fev = 0;
  int n_jev = 0;
  int start_index = 0;      ///< which starting point produced this result (multi-start)
  std::vector<int> active;  ///< -1 at lower bound, +1 at upper bound, 0 free, 2 fixed
  Matrix covariance;        ///< (J~^T J~)^+ * s^2 over the free coordinates, zeros elsewhere
  Vector null_weight;       ///< per coordinate: weight in directions the data do not determine
  /// The solver converged (a gtol, ftol or xtol test held); false at the iteration limit.
  bool success() const noexcept { return static_cast<int>(status) > 0; }
  /// x is a usable answer: the solver ran (converged or stopped at the iteration limit).
  bool usable() const noexcept { return status != Status::failed; }
};

struct Bounds {
  Vector lower;
  Vector upper;
};

/// Solves from x0 (clipped into the box). `weights` may be empty (all ones); `fixed` may be
/// empty (nothing fixed). Never throws for numerical trouble: a failure is reported in `status`.
Result solve(const Problem& problem, const Vector& x0, const Bounds& bounds,
             const std::vector<bool>& fixed, const Vector& weights, const Options& options);

/// Solves from each starting point and returns the best result (usable before failed, then the
/// lowest cost; ties go to the earliest start). Starts are run on up to `n_threads` threads; the answer does not depend on
/// the thread count.
Result solve_multistart(const Problem& problem, const std::vector<Vector>& starts,
                        const Bounds& bounds, const std::vector<bool>& fixed, const Vector& weights,
                        const Options& options, int n_threads = 1);

}  // namespace energycore::lm
