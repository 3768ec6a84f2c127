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

/// Residuals and Jacobian rescaled for the robust loss and the weights (scipy's form where the
/// loss is convex, the Ceres form where it is concave; see scale_for_loss).
struct Scaled {
  Vector r;
  Vector js;
  Matrix J;
};

double robust_cost(const Vector& r, const Vector& w, const Options& o) {
  if (o.loss == Loss::linear) {
    double c = 0.0;
    for (Index i = 0; i < r.size(); ++i) c += (w.size() ? w[i] : 1.0) * r[i] * r[i];
    return 0.5 * c;
  }
  const double fs2 = o.f_scale * o.f_scale;
  double c = 0.0;
  for (Index i = 0; i < r.size(); ++i) {
    double rho = 0, d1 = 0, d2 = 0;
    loss_terms(o.loss, r[i] * r[i] / fs2, rho, d1, d2);
    c += (w.size() ? w[i] : 1.0) * rho;
  }
  return 0.5 * fs2 * c;
}

void scale_for_loss(const Vector& r, const Matrix& J, const Vector& w, const Options& o,
                    Scaled& out) {
  const Index m = r.size();
  out.r.resize(m);
  out.js.resize(m);
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
    out.r[i] = rs * r[i];
    out.js[i] = js;
  }
  out.J.noalias() = out.js.asDiagonal() * J;
}

bool all_finite(const Vector& v) { return v.allFinite(); }

/// G = M^T M for a tall, narrow M (m x n, n about a dozen): one vectorised column dot product
/// per entry of the lower triangle. Eigen's general product kernels pay blocking and packing
/// overheads that dominate at these sizes.
void gram(const Matrix& M, Matrix& G) {
  const Index n = M.cols();
  for (Index a = 0; a < n; ++a) {
    for (Index b = 0; b <= a; ++b) {
      const double v = M.col(a).dot(M.col(b));
      G(a, b) = v;
      G(b, a) = v;
    }
  }
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
  std::vector<bool> fixed = fixed_in;
  if (fixed.empty()) fixed.assign(static_cast<size_t>(n), false);
  if (static_cast<Index>(fixed.size()) != n)
    throw std::invalid_argument("fixed: expected " + std::to_string(n) + " flags");

  const Vector& lo = bounds.lower;
  const Vector& hi = bounds.upper;
  Result res;
  res.x = x0.cwiseMax(lo).cwiseMin(hi);
  res.active.assign(static_cast<size_t>(n), 0);

  Vector r(m), r_new(m);
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
    return res;
  }
  double cost = robust_cost(r, weights, o);

  Scaled sc;
  Vector col_norm = Vector::Zero(n);  // MINPACK-style: scales never shrink
  double lambda = -1.0;
  double radius = -1.0;
  double nu = 2.0;
  Status status = Status::max_iterations;
  Vector g(n), step(n), x_new(n);
  std::vector<Index> freeidx;
  freeidx.reserve(static_cast<size_t>(n));

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
    scale_for_loss(r, J, weights, o, sc);
    g.noalias() = sc.J.transpose() * sc.r;
    for (Index j = 0; j < n; ++j) col_norm[j] = std::max(col_norm[j], sc.J.col(j).norm());

    // Active set: coordinates at a bound whose gradient points out of the box.
    freeidx.clear();
    double opt = 0.0;
    for (Index j = 0; j < n; ++j) {
      const auto js = static_cast<size_t>(j);
      if (is_fixed(j)) {
        res.active[js] = 2;
        continue;
      }
      const double tol = 1e-12 * std::max(1.0, std::abs(res.x[j]));
      if (res.x[j] <= lo[j] + tol && g[j] > 0) {
        res.active[js] = -1;
      } else if (res.x[j] >= hi[j] - tol && g[j] < 0) {
        res.active[js] = 1;
      } else {
        res.active[js] = 0;
        freeidx.push_back(j);
        const double d = col_norm[j] > 0 ? col_norm[j] : 1.0;
        opt = std::max(opt, std::abs(g[j]) / d);
      }
    }
    res.optimality = opt;
    if (opt < o.gtol) {
      status = Status::gtol;
      break;
    }
    const Index nf = static_cast<Index>(freeidx.size());
    Vector gf(nf), D(nf);
    Matrix Jf(m, nf);
    for (Index a = 0; a < nf; ++a) {
      const Index ja = freeidx[static_cast<size_t>(a)];
      gf[a] = g[ja];
      D[a] = col_norm[ja] > 0 ? col_norm[ja] : 1.0;
      Jf.col(a) = sc.J.col(ja) / D[a];
    }
    // Column-scaled normal matrix: (J D^-1)^T (J D^-1)
    Matrix A(nf, nf);
    gram(Jf, A);
    const Vector gs = gf.cwiseQuotient(D);
    if (lambda < 0) lambda = o.initial_damping * std::max(1e-300, A.diagonal().maxCoeff());
    if (radius < 0) {
      // Trust radius in the column-scaled space, started as scipy's trf does: |D x0|, or 1.
      radius = 0.0;
      for (Index a = 0; a < nf; ++a)
        radius += std::pow(D[a] * res.x[freeidx[static_cast<size_t>(a)]], 2);
      radius = radius > 0 ? std::sqrt(radius) : 1.0;
    }

    // Inner loop: increase damping until a step reduces the cost.
    bool accepted = false;
    bool converged_x = false;
    for (int inner = 0; inner < 60; ++inner) {
      Matrix Al = A;
      Al.diagonal().array() += lambda;
      Eigen::LDLT<Matrix> ldlt(Al);
      Vector ds = ldlt.solve(-gs);
      if (!ds.allFinite() || ldlt.info() != Eigen::Success) {
        lambda *= nu;
        nu *= 2.0;
        continue;
      }
      // The damping alone cannot bound a step along directions the Gauss-Newton model sees no
      // curvature in (robust losses flatten outliers' rows); the trust radius does.
      const double ds_norm = ds.norm();
      if (ds_norm > radius) ds *= radius / ds_norm;
      const double ds_used = std::min(ds_norm, radius);
      step.setZero();
      for (Index a = 0; a < nf; ++a) step[freeidx[static_cast<size_t>(a)]] = ds[a] / D[a];
      x_new = (res.x + step).cwiseMax(lo).cwiseMin(hi);
      for (Index j = 0; j < n; ++j)
        if (is_fixed(j)) x_new[j] = res.x[j];
      const Vector dx = x_new - res.x;
      // Predicted reduction of the Gauss-Newton model for the projected step.
      const Vector Jdx = sc.J * dx;
      const double pred = -(g.dot(dx) + 0.5 * Jdx.squaredNorm());
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
        res.x = x_new;
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
  }
  res.residuals = r;
  res.cost = cost;

  // Covariance (J~^T J~)^+ s^2 over the free coordinates (bound-active ones included), using
  // column scaling and an SVD pseudo-inverse so that an unidentified direction gives large
  // variances rather than a crash.
  res.covariance = Matrix::Zero(n, n);
  res.null_weight = Vector::Zero(n);
  if (!o.covariance) return res;
  scale_for_loss(r, J, weights, o, sc);
  std::vector<Index> cov_idx;
  for (Index j = 0; j < n; ++j)
    if (!is_fixed(j)) cov_idx.push_back(j);
  const Index nc = static_cast<Index>(cov_idx.size());
  if (nc > 0) {
    Matrix Jc(m, nc);
    Vector s(nc);
    for (Index a = 0; a < nc; ++a) {
      Jc.col(a) = sc.J.col(cov_idx[static_cast<size_t>(a)]);
      s[a] = Jc.col(a).norm();
      if (s[a] == 0) s[a] = 1.0;
      Jc.col(a) /= s[a];
    }
    // Eigen-decomposition of the 12x12 column-normalised normal matrix: the same V and squared
    // singular values as an SVD of Jc, at a fraction of the cost for m >> n.
    Matrix N(nc, nc);
    gram(Jc, N);
    Eigen::SelfAdjointEigenSolver<Matrix> eig(N);
    const Vector ev = eig.eigenvalues().cwiseMax(0.0);  // ascending
    const double top = ev.size() ? ev[ev.size() - 1] : 0.0;
    const double thresh = 1e-14 * static_cast<double>(std::max(m, nc)) * top;
    Vector inv(ev.size());
    const Matrix& V = eig.eigenvectors();
    for (Index k = 0; k < ev.size(); ++k) {
      const bool null_dir = !(ev[k] > thresh);
      inv[k] = null_dir ? std::numeric_limits<double>::infinity() : 1.0 / ev[k];
      if (null_dir)
        for (Index a = 0; a < nc; ++a)
          res.null_weight[cov_idx[static_cast<size_t>(a)]] += V(a, k) * V(a, k);
    }
    const Index dof = m - nc;
    const double s2 =
        dof > 0 ? 2.0 * cost / static_cast<double>(dof) : std::numeric_limits<double>::quiet_NaN();
    for (Index a = 0; a < nc; ++a) {
      for (Index b = 0; b < nc; ++b) {
        double v = 0.0;
        for (Index k = 0; k < ev.size(); ++k) {
          const double p = V(a, k) * V(b, k);
          if (p != 0.0) v += p * inv[k];
        }
        res.covariance(cov_idx[static_cast<size_t>(a)], cov_idx[static_cast<size_t>(b)]) =
            v * s2 / (s[a] * s[b]);
      }
    }
  }
  return res;
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
