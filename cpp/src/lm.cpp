#include "energycore/lm.hpp"
#include "energycore/parallel.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace energycore::lm {

namespace {

constexpr double kEps = std::numeric_limits<double>::epsilon();

/// rho(z) alone (the cost needs no derivatives), the same arithmetic as loss_terms.
template <Loss L>
inline double rho_of(double z) noexcept {
  if constexpr (L == Loss::huber) {
    return z <= 1.0 ? z : 2.0 * std::sqrt(z) - 1.0;
  } else if constexpr (L == Loss::soft_l1) {
    return 2.0 * (std::sqrt(1.0 + z) - 1.0);
  } else if constexpr (L == Loss::cauchy) {
    return std::log1p(z);
  } else if constexpr (L == Loss::arctan) {
    return std::atan(z);
  } else {
    return z;
  }
}

template <Loss L>
double robust_cost_of(const Vector& r, const Vector& w, double fs2) {
  double c = 0.0;
  const Index m = r.size();
  if (w.size()) {
    for (Index i = 0; i < m; ++i) c += w[i] * rho_of<L>(r[i] * r[i] / fs2);
  } else {
    for (Index i = 0; i < m; ++i) c += rho_of<L>(r[i] * r[i] / fs2);
  }
  return c;
}

double robust_cost(const Vector& r, const Vector& w, const Options& o) {
  if (o.loss == Loss::linear) {
    double c = 0.0;
    for (Index i = 0; i < r.size(); ++i) c += (w.size() ? w[i] : 1.0) * r[i] * r[i];
    return 0.5 * c;
  }
  const double fs2 = o.f_scale * o.f_scale;
  double c = 0.0;
  switch (o.loss) {
    case Loss::huber:
      c = robust_cost_of<Loss::huber>(r, w, fs2);
      break;
    case Loss::soft_l1:
      c = robust_cost_of<Loss::soft_l1>(r, w, fs2);
      break;
    case Loss::cauchy:
      c = robust_cost_of<Loss::cauchy>(r, w, fs2);
      break;
    case Loss::arctan:
      c = robust_cost_of<Loss::arctan>(r, w, fs2);
      break;
    case Loss::linear:
      break;
  }
  return 0.5 * fs2 * c;
}

/// Rescales for the robust loss and the weights, in place: the Jacobian's rows (J~ = diag(js) J)
/// and the residuals into `rs` (r~), scipy's form where the loss is convex, the Ceres form where
/// it is concave. J is not copied: the caller keeps only J~.
void scale_for_loss(const Vector& r, Matrix& J, const Vector& w, const Options& o, Vector& rs_out,
                    Vector& js_out) {
  const Index m = r.size();
  const double fs2 = o.f_scale * o.f_scale;
  for (Index i = 0; i < m; ++i) {
    const double sw = w.size() ? std::sqrt(w[i]) : 1.0;
    double rs = sw, js = sw;
    if (o.loss != Loss::linear) {
      double rho = 0, d1 = 0, d2 = 0;
      const double z = r[i] * r[i] / fs2;
      loss_terms(o.loss, z, rho, d1, d2);
      d2 /= fs2;
      if (d2 <= 0.0) {
        // Concave region of the loss (every robust loss here, away from zero): drop the negative
        // curvature term, as Ceres does, so the model stays positive definite. The gradient
        // J~^T r~ = rho' J^T r is exact either way; scipy's form (rho' + 2 z rho'', clipped at
        // eps) makes Huber outliers' rows vanish from the model and lets steps run away.
        rs = js = sw * std::sqrt(d1);
      } else {
        double s = d1 + 2.0 * d2 * r[i] * r[i];
        if (s < kEps) s = kEps;
        s = std::sqrt(s);
        rs = sw * d1 / s;
        js = sw * s;
      }
    }
    rs_out[i] = rs * r[i];
    js_out[i] = js;
  }
  J.array().colwise() *= js_out.array();
}

bool all_finite(const Vector& v) { return v.allFinite(); }

/// G = M^T M for a tall, narrow M (m x n, n about a dozen): one vectorised column dot product
/// per entry of the lower triangle. Eigen's general product kernels pay blocking and packing
/// overheads that dominate at these sizes.
template <class Sq>
void gram(const Matrix& M, Sq& G) {
  const Index n = M.cols();
  for (Index a = 0; a < n; ++a) {
    for (Index b = 0; b <= a; ++b) {
      const double v = M.col(a).dot(M.col(b));
      G(a, b) = v;
      G(b, a) = v;
    }
  }
}

/// Parameter counts up to this use stack-sized (fixed maximum) Eigen objects in the solver: the
/// loop then allocates nothing. Larger problems (PyProblem) take the heap-sized path.
constexpr int kSmallN = 16;

/// The solver (see solve()) on square / vector objects of at most MaxN rows: MaxN = kSmallN
/// keeps every n x n matrix and n-vector on the stack, Eigen::Dynamic on the heap. The m x n
/// Jacobian is allocated once per solve and rescaled in place; the normal matrix H = J~^T J~ is
/// built from it once per Jacobian and serves the step, the predicted reduction (dx^T H dx, no
/// m x n product) and the covariance.
template <int MaxN>
Result solve_sized(const Problem& problem, const Vector& x0, const Bounds& bounds,
                   const std::vector<bool>& fixed, const Vector& weights, const Options& o) {
  using Sq = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor, MaxN, MaxN>;
  using Vs = Eigen::Matrix<double, Eigen::Dynamic, 1, Eigen::ColMajor, MaxN, 1>;
  const Index m = problem.n_residuals();
  const Index n = problem.n_params();
  const Vector& lo = bounds.lower;
  const Vector& hi = bounds.upper;
  Result res;
  res.x = x0.cwiseMax(lo).cwiseMin(hi);
  res.active.assign(static_cast<size_t>(n), 0);

  Vector r(m), r_new(m), rs(m), js(m);
  Matrix J(m, n);
  problem.evaluate(res.x, r, &J);
  res.n_fev = 1;
  res.n_jev = 1;
  if (!all_finite(r) || !J.allFinite()) {
    res.status = Status::failed;
    res.residuals = r;
    res.cost = std::numeric_limits<double>::infinity();
    res.optimality = std::numeric_limits<double>::infinity();
    res.covariance = Matrix::Zero(n, n);
    res.null_weight = Vector::Zero(n);
    return res;
  }
  double cost = robust_cost(r, weights, o);
  bool j_scaled = false;  // J holds J~ (rescaled at the current r) and H = J~^T J~

  Sq H(n, n), A(n, n), Al(n, n);
  Vs g(n), gf(n), D(n), gs(n), ds(n), step(n), dx(n), Hdx(n);
  Vs col_norm = Vs::Zero(n);  // MINPACK-style: scales never shrink
  Vector x_new(n);
  Eigen::LLT<Sq> chol(n);
  double lambda = -1.0;
  double radius = -1.0;
  double nu = 2.0;
  Status status = Status::max_iterations;
  Index freeidx[MaxN == Eigen::Dynamic ? 1 : MaxN];
  std::vector<Index> freeidx_heap;
  Index* free_at = freeidx;
  if constexpr (MaxN == Eigen::Dynamic) {
    freeidx_heap.resize(static_cast<size_t>(n));
    free_at = freeidx_heap.data();
  }

  const auto is_fixed = [&](Index j) { return fixed[static_cast<size_t>(j)]; };

  int iter = 0;
  bool need_jac = false;
  for (; iter < o.max_iter; ++iter) {
    if (need_jac) {
      problem.evaluate(res.x, r, &J);
      ++res.n_jev;
      ++res.n_fev;
      need_jac = false;
    }
    scale_for_loss(r, J, weights, o, rs, js);
    gram(J, H);
    j_scaled = true;
    g.noalias() = J.transpose() * rs;
    for (Index j = 0; j < n; ++j) col_norm[j] = std::max(col_norm[j], std::sqrt(H(j, j)));

    // Active set: coordinates at a bound whose gradient points out of the box.
    Index nf = 0;
    double opt = 0.0;
    for (Index j = 0; j < n; ++j) {
      const auto jz = static_cast<size_t>(j);
      if (is_fixed(j)) {
        res.active[jz] = 2;
        continue;
      }
      const double tol = 1e-12 * std::max(1.0, std::abs(res.x[j]));
      if (res.x[j] <= lo[j] + tol && g[j] > 0) {
        res.active[jz] = -1;
      } else if (res.x[j] >= hi[j] - tol && g[j] < 0) {
        res.active[jz] = 1;
      } else {
        res.active[jz] = 0;
        free_at[nf++] = j;
        const double d = col_norm[j] > 0 ? col_norm[j] : 1.0;
        opt = std::max(opt, std::abs(g[j]) / d);
      }
    }
    res.optimality = opt;
    if (opt < o.gtol || nf == 0) {
      status = Status::gtol;
      break;
    }
    gf.resize(nf);
    D.resize(nf);
    A.resize(nf, nf);
    for (Index a = 0; a < nf; ++a) {
      const Index ja = free_at[a];
      gf[a] = g[ja];
      D[a] = col_norm[ja] > 0 ? col_norm[ja] : 1.0;
    }
    // Column-scaled normal matrix: (J D^-1)^T (J D^-1), read off H.
    for (Index b = 0; b < nf; ++b)
      for (Index a = 0; a < nf; ++a) A(a, b) = H(free_at[a], free_at[b]) / (D[a] * D[b]);
    gs = gf.cwiseQuotient(D);
    if (lambda < 0) lambda = o.initial_damping * std::max(1e-300, A.diagonal().maxCoeff());
    if (radius < 0) {
      // Trust radius in the column-scaled space, started as scipy's trf does: |D x0|, or 1.
      radius = 0.0;
      for (Index a = 0; a < nf; ++a) radius += std::pow(D[a] * res.x[free_at[a]], 2);
      radius = radius > 0 ? std::sqrt(radius) : 1.0;
    }

    // Inner loop: increase damping until a step reduces the cost.
    bool accepted = false;
    bool converged_x = false;
    for (int inner = 0; inner < 60; ++inner) {
      Al = A;
      Al.diagonal().array() += lambda;
      // A + lambda I is symmetric positive definite for lambda > 0 (A is a Gram matrix): a
      // plain Cholesky factorisation, no pivoting; a failure (lost definiteness to rounding)
      // raises the damping as a non-finite step does.
      chol.compute(Al);
      ds = chol.solve(-gs);
      if (chol.info() != Eigen::Success || !ds.allFinite()) {
        lambda *= nu;
        nu *= 2.0;
        continue;
      }
      // The damping alone cannot bound a step along directions the Gauss-Newton model sees no
      // curvature in (robust losses flatten outliers' rows); the trust radius does.
      const double ds_norm = ds.norm();
      if (ds_norm > radius) ds *= radius / ds_norm;
      const double ds_used = std::min(ds_norm, radius);
      step.setZero(n);
      for (Index a = 0; a < nf; ++a) step[free_at[a]] = ds[a] / D[a];
      x_new = (res.x + step).cwiseMax(lo).cwiseMin(hi);
      for (Index j = 0; j < n; ++j)
        if (is_fixed(j)) x_new[j] = res.x[j];
      dx = x_new - res.x;
      // Predicted reduction of the Gauss-Newton model for the projected step:
      // -(g.dx + |J~ dx|^2 / 2), with |J~ dx|^2 = dx^T H dx.
      Hdx.noalias() = H * dx;
      const double pred = -(g.dot(dx) + 0.5 * dx.dot(Hdx));
      const double dx_norm = dx.norm();
      if (dx_norm == 0.0) {  // the projection removed the whole step: nothing left to move
        converged_x = true;
        break;
      }
      problem.evaluate(x_new, r_new, nullptr);
      ++res.n_fev;
      const double cost_new = all_finite(r_new) ? robust_cost(r_new, weights, o)
                                                : std::numeric_limits<double>::infinity();
      const double actual = cost - cost_new;
      const double rho = pred > 0 ? actual / pred : -1.0;
      if (actual > 0 && std::isfinite(cost_new)) {
        lambda *= std::max(1.0 / 3.0, 1.0 - std::pow(2.0 * rho - 1.0, 3));
        if (rho > 0.75) radius = std::max(radius, 3.0 * ds_used);
        else if (rho < 0.25) radius = 0.5 * ds_used;
        nu = 2.0;
        res.x.swap(x_new);
        r.swap(r_new);
        const double prev = cost;
        cost = cost_new;
        accepted = true;
        need_jac = true;
        // As scipy: tolerances count only for steps the quadratic model predicted well, so a
        // heavily damped step after a poor iteration is not mistaken for convergence.
        if (rho > 0.25 && actual < o.ftol * prev) status = Status::ftol;
        else if (rho > 0.25 && dx_norm <= o.xtol * (o.xtol + res.x.norm())) status = Status::xtol;
        break;
      }
      lambda *= nu;
      nu *= 2.0;
      radius = 0.25 * ds_used;
      if (!std::isfinite(lambda) || lambda > 1e300 || radius < 1e-300) break;
    }
    if (converged_x) {
      status = Status::xtol;
      break;
    }
    if (!accepted) {
      // No step reduces the cost any more: converged to machine precision in f.
      status = Status::ftol;
      break;
    }
    if (status != Status::max_iterations) {
      ++iter;
      break;
    }
  }
  res.iterations = iter;
  res.status = status;
  if (need_jac) {
    problem.evaluate(res.x, r, &J);
    ++res.n_jev;
    ++res.n_fev;
    j_scaled = false;
  }
  res.residuals = r;
  res.cost = cost;

  // Covariance (J~^T J~)^+ s^2 over the free coordinates (bound-active ones included), with
  // column scaling. Well-conditioned (the usual case): a Cholesky inverse of the 12 x 12
  // column-normalised normal matrix. Otherwise an eigen-decomposition pseudo-inverse, so that an
  // unidentified direction gives large variances and its null weights rather than a crash.
  res.covariance = Matrix::Zero(n, n);
  res.null_weight = Vector::Zero(n);
  if (!o.covariance) return res;
  if (!j_scaled) {
    scale_for_loss(r, J, weights, o, rs, js);
    gram(J, H);
  }
  Index nc = 0;
  for (Index j = 0; j < n; ++j)
    if (!is_fixed(j)) free_at[nc++] = j;
  if (nc == 0) return res;
  Vs s(nc);
  Sq N(nc, nc);
  for (Index a = 0; a < nc; ++a) {
    s[a] = std::sqrt(H(free_at[a], free_at[a]));
    if (s[a] == 0) s[a] = 1.0;
  }
  for (Index b = 0; b < nc; ++b)
    for (Index a = 0; a < nc; ++a) N(a, b) = H(free_at[a], free_at[b]) / (s[a] * s[b]);
  const Index dof = m - nc;
  const double s2 =
      dof > 0 ? 2.0 * cost / static_cast<double>(dof) : std::numeric_limits<double>::quiet_NaN();
  // The eigen path calls a direction null below 1e-14 * max(m, nc) of the largest eigenvalue;
  // the Cholesky path is taken only far from that (the 1-norm reciprocal condition estimate is
  // within a factor nc of the 2-norm one), so both give the same answer where both apply.
  const double rcond_min =
      std::max(1e-9, 1e-12 * static_cast<double>(std::max(m, nc)) * static_cast<double>(nc));
  Eigen::LLT<Sq> llt(N);
  if (llt.info() == Eigen::Success && llt.rcond() > rcond_min) {
    Sq inv = Sq::Identity(nc, nc);
    llt.solveInPlace(inv);
    for (Index b = 0; b < nc; ++b)
      for (Index a = 0; a < nc; ++a)
        res.covariance(free_at[a], free_at[b]) = inv(a, b) * s2 / (s[a] * s[b]);
    return res;
  }
  Eigen::SelfAdjointEigenSolver<Sq> eig(N);
  const Vs ev = eig.eigenvalues().cwiseMax(0.0);  // ascending
  const double top = ev.size() ? ev[ev.size() - 1] : 0.0;
  const double thresh = 1e-14 * static_cast<double>(std::max(m, nc)) * top;
  Vs inv(ev.size());
  const Sq& V = eig.eigenvectors();
  for (Index k = 0; k < ev.size(); ++k) {
    const bool null_dir = !(ev[k] > thresh);
    inv[k] = null_dir ? std::numeric_limits<double>::infinity() : 1.0 / ev[k];
    if (null_dir)
      for (Index a = 0; a < nc; ++a) res.null_weight[free_at[a]] += V(a, k) * V(a, k);
  }
  for (Index a = 0; a < nc; ++a) {
    for (Index b = 0; b < nc; ++b) {
      double v = 0.0;
      for (Index k = 0; k < ev.size(); ++k) {
        const double p = V(a, k) * V(b, k);
        if (p != 0.0) v += p * inv[k];
      }
      res.covariance(free_at[a], free_at[b]) = v * s2 / (s[a] * s[b]);
    }
  }
  return res;
}

}  // namespace

Loss parse_loss(const std::string& name) {
  if (name == "linear") return Loss::linear;
  if (name == "huber") return Loss::huber;
  if (name == "soft_l1") return Loss::soft_l1;
  if (name == "cauchy") return Loss::cauchy;
  if (name == "arctan") return Loss::arctan;
  throw std::invalid_argument("loss: unknown loss '" + name +
                              "' (expected one of linear, huber, soft_l1, cauchy, arctan)");
}

const char* loss_name(Loss loss) noexcept {
  switch (loss) {
    case Loss::linear:
      return "linear";
    case Loss::huber:
      return "huber";
    case Loss::soft_l1:
      return "soft_l1";
    case Loss::cauchy:
      return "cauchy";
    case Loss::arctan:
      return "arctan";
  }
  return "unknown";
}

void loss_terms(Loss loss, double z, double& rho, double& d1, double& d2) noexcept {
  switch (loss) {
    case Loss::linear:
      rho = z;
      d1 = 1.0;
      d2 = 0.0;
      return;
    case Loss::huber:
      if (z <= 1.0) {
        rho = z;
        d1 = 1.0;
        d2 = 0.0;
      } else {
        const double s = std::sqrt(z);
        rho = 2.0 * s - 1.0;
        d1 = 1.0 / s;
        d2 = -0.5 / (z * s);
      }
      return;
    case Loss::soft_l1: {
      const double t = 1.0 + z;
      const double s = std::sqrt(t);
      rho = 2.0 * (s - 1.0);
      d1 = 1.0 / s;
      d2 = -0.5 / (t * s);
      return;
    }
    case Loss::cauchy: {
      const double t = 1.0 + z;
      rho = std::log1p(z);
      d1 = 1.0 / t;
      d2 = -1.0 / (t * t);
      return;
    }
    case Loss::arctan: {
      const double t = 1.0 + z * z;
      rho = std::atan(z);
      d1 = 1.0 / t;
      d2 = -2.0 * z / (t * t);
      return;
    }
  }
  rho = z;
  d1 = 1.0;
  d2 = 0.0;
}

const char* status_message(Status s) noexcept {
  switch (s) {
    case Status::max_iterations:
      return "max_iter: the maximum number of iterations was reached before convergence";
    case Status::gtol:
      return "gtol: the projected gradient is below tolerance";
    case Status::ftol:
      return "ftol: the relative reduction of the cost is below tolerance";
    case Status::xtol:
      return "xtol: the relative step is below tolerance";
    case Status::failed:
      return "failed: the model gave non-finite values at the starting point";
  }
  return "unknown";
}

Result solve(const Problem& problem, const Vector& x0, const Bounds& bounds,
             const std::vector<bool>& fixed_in, const Vector& weights, const Options& o) {
  const Index m = problem.n_residuals();
  const Index n = problem.n_params();
  if (x0.size() != n) throw std::invalid_argument("x0: expected " + std::to_string(n) + " values");
  if (bounds.lower.size() != n || bounds.upper.size() != n)
    throw std::invalid_argument("bounds: expected " + std::to_string(n) + " values each");
  if (weights.size() != 0 && weights.size() != m)
    throw std::invalid_argument("weights: expected " + std::to_string(m) + " values");
  if (!fixed_in.empty() && static_cast<Index>(fixed_in.size()) != n)
    throw std::invalid_argument("fixed: expected " + std::to_string(n) + " flags");
  const std::vector<bool> none(fixed_in.empty() ? static_cast<size_t>(n) : 0, false);
  const std::vector<bool>& fixed = fixed_in.empty() ? none : fixed_in;
  if (n <= kSmallN) return solve_sized<kSmallN>(problem, x0, bounds, fixed, weights, o);
  return solve_sized<Eigen::Dynamic>(problem, x0, bounds, fixed, weights, o);
}

Result solve_multistart(const Problem& problem, const std::vector<Vector>& starts,
                        const Bounds& bounds, const std::vector<bool>& fixed, const Vector& weights,
                        const Options& options, int n_threads) {
  if (starts.empty()) throw std::invalid_argument("starts: at least one starting point is needed");
  std::vector<Result> results(starts.size());
  parallel_for(static_cast<Index>(starts.size()), n_threads, [&](Index i) {
    results[static_cast<size_t>(i)] =
        solve(problem, starts[static_cast<size_t>(i)], bounds, fixed, weights, options);
    results[static_cast<size_t>(i)].start_index = static_cast<int>(i);
  });
  size_t best = 0;
  for (size_t i = 1; i < results.size(); ++i) {
    const bool better_ok = results[i].usable() && !results[best].usable();
    const bool lower =
        results[i].usable() == results[best].usable() && results[i].cost < results[best].cost;
    if (better_ok || lower) best = i;
  }
  return std::move(results[best]);
}

}  // namespace energycore::lm
