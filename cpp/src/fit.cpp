// Fitting a closed-form template to data (fit.hpp): log-ratio residuals, NNLS starts for the
// linear coefficients, multi-start LM and a thread-count-independent bootstrap.
#include "energycore/fit.hpp"

#include <Eigen/QR>
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>

#include "energycore/parallel.hpp"

namespace energycore::model {

namespace {

constexpr double kTiny = 1e-300;

/// splitmix64: a tiny, well-mixed seeded stream per (seed, index), independent of thread count.
std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

lm::Bounds bounds_of(const ModelTemplate& t, const FitSpec& spec) {
  const Index p = t.n_params();
  const auto sz = static_cast<size_t>(p);
  if (!spec.fixed.empty() && (spec.fixed.size() != sz || spec.fixed_values.size() != p))
    throw std::invalid_argument("fixed: expected " + std::to_string(p) + " flags and values");
  if ((spec.lower.size() && spec.lower.size() != p) ||
      (spec.upper.size() && spec.upper.size() != p))
    throw std::invalid_argument("bounds: expected " + std::to_string(p) + " values each");
  lm::Bounds b{Vector(p), Vector(p)};
  for (Index j = 0; j < p; ++j) {
    b.lower[j] = spec.lower.size() ? spec.lower[j] : t.params()[static_cast<size_t>(j)].lower;
    b.upper[j] = spec.upper.size() ? spec.upper[j] : t.params()[static_cast<size_t>(j)].upper;
  }
  return b;
}

bool is_fixed(const FitSpec& spec, Index j) {
  return !spec.fixed.empty() && spec.fixed[static_cast<size_t>(j)];
}

}  // namespace

LogRatioProblem::LogRatioProblem(const ModelTemplate& t, FeatureRef X, Eigen::Ref<const Vector> y)
    : t_(t), X_(std::move(X)), y_(std::move(y)) {}

void LogRatioProblem::evaluate(const Vector& x, Vector& r, Matrix* J) const {
  const Index n = X_.rows();
  r.resize(n);
  if (J != nullptr) J->resize(n, t_.n_params());
  t_.batch(X_, x.data(), r.data(), J);
  r = r.cwiseMax(kTiny);
  // d log f / d theta = (d f / d theta) / f, scaled column by column (J is column-major): one
  // division per row, then products.
  if (J != nullptr) {
    const Vector inv = r.cwiseInverse();
    J->array().colwise() *= inv.array();
  }
  // log(f / y), vectorised (Eigen's packet log).
  r.array() = (r.array() / y_.array()).log();
}

Vector nnls(const Matrix& A, const Vector& b, int max_iter) {
  // Lawson & Hanson (1974), chapter 23, with column scaling for conditioning.
  const Index m = A.rows();
  const Index n = A.cols();
  Vector s(n);
  for (Index j = 0; j < n; ++j) {
    s[j] = A.col(j).norm();
    if (s[j] == 0) s[j] = 1.0;
  }
  const Matrix As = A * s.cwiseInverse().asDiagonal();
  Vector x = Vector::Zero(n);
  std::vector<bool> passive(static_cast<size_t>(n), false);
  const int limit = max_iter > 0 ? max_iter : static_cast<int>(3 * n + 10);
  const double tol = 10.0 * std::numeric_limits<double>::epsilon() * As.norm() *
                     static_cast<double>(std::max(m, n));
  // Work space reused across the active-set changes (the factorisation is recomputed each
  // time, on the same numbers as before; only allocations are saved).
  std::vector<Index> idx;
  idx.reserve(static_cast<size_t>(n));
  Matrix Ap(m, n);
  Eigen::ColPivHouseholderQR<Matrix> qr(m, n);
  Vector Ax(m), resid(m), w(n);
  auto solve_passive = [&](Vector& z) {
    idx.clear();
    for (Index j = 0; j < n; ++j)
      if (passive[static_cast<size_t>(j)]) idx.push_back(j);
    const Index k = static_cast<Index>(idx.size());
    for (Index c = 0; c < k; ++c) Ap.col(c) = As.col(idx[static_cast<size_t>(c)]);
    qr.compute(Ap.leftCols(k));
    const Vector zp = qr.solve(b);
    z.setZero(n);
    for (Index c = 0; c < k; ++c) z[idx[static_cast<size_t>(c)]] = zp[c];
  };
  for (int it = 0; it < limit; ++it) {
    Ax.noalias() = As * x;
    resid = b - Ax;
    w.noalias() = As.transpose() * resid;
    Index best = -1;
    double wmax = tol;
    for (Index j = 0; j < n; ++j)
      if (!passive[static_cast<size_t>(j)] && w[j] > wmax) {
        wmax = w[j];
        best = j;
      }
    if (best < 0) break;
    passive[static_cast<size_t>(best)] = true;
    Vector z;
    for (int inner = 0; inner < limit; ++inner) {
      solve_passive(z);
      bool feasible = true;
      for (Index j = 0; j < n; ++j)
        if (passive[static_cast<size_t>(j)] && z[j] <= 0) feasible = false;
      if (feasible) break;
      double alpha = 1.0;
      for (Index j = 0; j < n; ++j)
        if (passive[static_cast<size_t>(j)] && z[j] <= 0)
          alpha = std::min(alpha, x[j] / (x[j] - z[j]));
      x += alpha * (z - x);
      for (Index j = 0; j < n; ++j)
        if (passive[static_cast<size_t>(j)] && x[j] <= tol) {
          passive[static_cast<size_t>(j)] = false;
          x[j] = 0.0;
        }
    }
    x = z.cwiseMax(0.0);
  }
  return x.cwiseQuotient(s);
}

std::vector<Vector> starting_points(const ModelTemplate& t, FeatureRef X,
                                    Eigen::Ref<const Vector> y, const Vector& w,
                                    const FitSpec& spec) {
  const Index p = t.n_params();
  const Index n = X.rows();
  const auto& info = t.params();
  const lm::Bounds bounds = bounds_of(t, spec);
  std::mt19937_64 rng(splitmix64(spec.seed));
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  const int n_starts = std::max(1, spec.n_starts);
  std::vector<Vector> starts;
  starts.reserve(static_cast<size_t>(n_starts));
  std::vector<Index> lin_idx;
  for (Index j = 0; j < p; ++j) {
    const auto& pi = info[static_cast<size_t>(j)];
    // NNLS handles linear coefficients bounded as [0, inf) only; others keep their typical value.
    if (pi.linear && !is_fixed(spec, j) && bounds.lower[j] == 0.0 && std::isinf(bounds.upper[j]))
      lin_idx.push_back(j);
  }
  // Latin-hypercube strata for the drawn starts: start s >= 1 takes stratum perm_j[s-1] of
  // coefficient j, so even a few starts cover each coefficient's whole range.
  std::vector<std::vector<int>> strata(static_cast<size_t>(p));
  for (auto& perm : strata) {
    perm.resize(static_cast<size_t>(std::max(1, n_starts - 1)));
    for (size_t k = 0; k < perm.size(); ++k) perm[k] = static_cast<int>(k);
    std::shuffle(perm.begin(), perm.end(), rng);
  }
  const double n_strata = static_cast<double>(std::max(1, n_starts - 1));
  Vector held(n);
  Matrix G(n, p);
  for (int s = 0; s < n_starts; ++s) {
    Vector theta(p);
    for (Index j = 0; j < p; ++j) {
      const auto& pi = info[static_cast<size_t>(j)];
      if (is_fixed(spec, j)) {
        theta[j] = spec.fixed_values[j];
      } else if (pi.linear || s == 0) {
        theta[j] = pi.typical;
      } else {
        const double lo = bounds.lower[j];
        const double hi = std::min(bounds.upper[j], std::max(pi.start_hi, lo + 1e-3));
        const double u =
            (strata[static_cast<size_t>(j)][static_cast<size_t>(s - 1)] + unif(rng)) / n_strata;
        theta[j] = lo + (hi - lo) * u;
      }
      theta[j] = std::clamp(theta[j], bounds.lower[j], bounds.upper[j]);
    }
    if (!lin_idx.empty() && n > 0) {
      // Relative error (f(x) - y)/y is linear in the free linear coefficients once the rest are
      // held: A c = 1 - (contribution of the held terms)/y.
      Matrix A(n, static_cast<Index>(lin_idx.size()));
      Vector rhs(n);
      Vector theta0 = theta;
      for (Index j : lin_idx) theta0[j] = 0.0;
      // Values and gradients of every row in one batched call (the powers of the few
      // distinct tp / pp values computed once each; the same numbers as row by row).
      t.batch(X, theta0.data(), held.data(), &G);
      for (Index i = 0; i < n; ++i) {
        const double sw = w.size() ? std::sqrt(w[i]) : 1.0;
        for (size_t k = 0; k < lin_idx.size(); ++k)
          A(i, static_cast<Index>(k)) = sw * G(i, lin_idx[k]) / y[i];
        rhs[i] = sw * (1.0 - held[i] / y[i]);
      }
      const Vector c = nnls(A, rhs);
      for (size_t k = 0; k < lin_idx.size(); ++k) {
        const Index j = lin_idx[k];
        // A coefficient NNLS leaves at zero starts slightly inside the box, so that the LM
        // sees its gradient; its scale comes from the typical value.
        theta[j] = c[static_cast<Index>(k)] > 0 && std::isfinite(c[static_cast<Index>(k)])
                       ? c[static_cast<Index>(k)]
                       : 0.0;
      }
    }
    starts.push_back(std::move(theta));
  }
  return starts;
}

void check_data(FeatureRef X, Eigen::Ref<const Vector> y, const Vector& w) {
  if (X.rows() < 1) throw std::invalid_argument("X: no rows to fit");
  if (y.size() != X.rows())
    throw std::invalid_argument("y: " + std::to_string(y.size()) + " values for " +
                                std::to_string(X.rows()) + " rows of X");
  if (w.size() != 0 && w.size() != X.rows())
    throw std::invalid_argument("w: " + std::to_string(w.size()) + " weights for " +
                                std::to_string(X.rows()) + " rows of X");
}

lm::Result fit(const ModelTemplate& t, FeatureRef X, Eigen::Ref<const Vector> y, const Vector& w,
               const FitSpec& spec) {
  check_data(X, y, w);
  const LogRatioProblem problem(t, X, y);
  const auto starts = starting_points(t, X, y, w, spec);
  return lm::solve_multistart(problem, starts, bounds_of(t, spec), spec.fixed, w, spec.lm,
                              spec.n_threads);
}

void fit_batch(const ModelTemplate& t, FeatureRef X, Eigen::Ref<const Vector> y, const Vector& w,
               Index k, const FitSpec& spec, bool pin_unidentified, const BatchOutput& out) {
  if (k < 1) throw std::invalid_argument("X: no problems to fit");
  if (X.rows() % k != 0 || X.rows() == 0)
    throw std::invalid_argument("X: " + std::to_string(X.rows()) + " rows do not split into " +
                                std::to_string(k) + " problems of equal size");
  const Index n = X.rows() / k;
  check_data(X, y, w);
  const Index p = t.n_params();
  const auto pz = static_cast<size_t>(p);
  const lm::Bounds bounds = bounds_of(t, spec);
  Vector held(p);  // typical values, the user's fixed ones where given
  for (Index j = 0; j < p; ++j)
    held[j] = is_fixed(spec, j) ? spec.fixed_values[j] : t.params()[static_cast<size_t>(j)].typical;
  std::vector<std::string> errors(static_cast<size_t>(k));
  parallel_for(k, spec.n_threads, [&](Index g) {
    const FeatureRef Xg(X.middleRows(g * n, n));
    const Eigen::Ref<const Vector> yg(y.segment(g * n, n));
    const Vector wg = w.size() ? Vector(w.segment(g * n, n)) : Vector();
    FitSpec sg = spec;
    sg.n_threads = 1;
    std::uint8_t* pin = out.pinned + g * p;
    std::fill(pin, pin + p, std::uint8_t{0});
    Index n_rows = n;
    if (wg.size()) n_rows = (wg.array() > 0.0).count();
    if (pin_unidentified) {
      // Jacobian columns at the held values: a coefficient whose column vanishes on every row
      // of positive weight has no effect on the data (e.g. tp == 1 everywhere).
      Vector v(n);
      Matrix G(n, p);
      t.batch(Xg, held.data(), v.data(), &G);
      std::vector<double> scale(pz, 0.0);
      for (Index j = 0; j < p; ++j)
        for (Index i = 0; i < n; ++i)
          if (!wg.size() || wg[i] > 0.0)
            scale[static_cast<size_t>(j)] =
                std::max(scale[static_cast<size_t>(j)], std::abs(G(i, j)));
      for (Index j = 0; j < p; ++j) {
        if (is_fixed(spec, j) || scale[static_cast<size_t>(j)] != 0.0) continue;
        if (sg.fixed.empty()) {
          sg.fixed.assign(pz, false);
          sg.fixed_values = held;
        }
        sg.fixed[static_cast<size_t>(j)] = true;
        sg.fixed_values[j] = held[j];
        pin[j] = 1;
      }
    }
    Index n_free = p;
    if (!sg.fixed.empty())
      for (Index j = 0; j < p; ++j) n_free -= sg.fixed[static_cast<size_t>(j)] ? 1 : 0;
    if (n_rows < n_free) {
      // Reported after the loop, the lowest problem first (threads finish in any order).
      errors[static_cast<size_t>(g)] = "problem " + std::to_string(g) + ": X: " +
                                       std::to_string(n_rows) + " row(s) cannot determine " +
                                       std::to_string(n_free) + " free coefficients";
      return;
    }
    const LogRatioProblem problem(t, Xg, yg);
    const auto starts = starting_points(t, Xg, yg, wg, sg);
    const lm::Result r = lm::solve_multistart(problem, starts, bounds, sg.fixed, wg, sg.lm, 1);
    Eigen::Map<Eigen::RowVectorXd>(out.coef + g * p, p) = r.x.transpose();
    out.cost[g] = r.cost;
    out.optimality[g] = r.optimality;
    out.status[g] = static_cast<int>(r.status);
    out.iterations[g] = r.iterations;
    out.n_fev[g] = r.n_fev;
    out.n_jev[g] = r.n_jev;
    out.start_index[g] = r.start_index;
    for (Index j = 0; j < p; ++j) {
      out.active[g * p + j] = r.active.empty() ? 0 : r.active[static_cast<size_t>(j)];
      out.null_weight[g * p + j] = r.null_weight.size() == p ? r.null_weight[j] : 0.0;
    }
    if (out.covariance != nullptr) {
      // Row-major p x p per problem (the covariance is symmetric, so either order reads alike).
      double* c = out.covariance + g * p * p;
      for (Index a = 0; a < p; ++a)
        for (Index b = 0; b < p; ++b)
          c[a * p + b] = r.covariance.rows() == p ? r.covariance(a, b) : 0.0;
    }
  });
  for (const auto& e : errors)
    if (!e.empty()) throw std::invalid_argument(e);
}

Matrix bootstrap(const ModelTemplate& t, FeatureRef X, Eigen::Ref<const Vector> y, const Vector& w,
                 const Vector& theta0, const FitSpec& spec, int n_boot, std::uint64_t seed) {
  check_data(X, y, w);
  if (n_boot < 1) throw std::invalid_argument("n: at least one bootstrap replicate is needed");
  if (theta0.size() != t.n_params())
    throw std::invalid_argument("theta0: expected " + std::to_string(t.n_params()) +
                                " coefficients, got " + std::to_string(theta0.size()));
  const Index n = X.rows();
  const Index p = t.n_params();
  Matrix out(n_boot, p);
  const lm::Bounds bounds = bounds_of(t, spec);
  parallel_for(n_boot, spec.n_threads, [&](Index b) {
    std::mt19937_64 rng(splitmix64(seed ^ splitmix64(static_cast<std::uint64_t>(b) + 1)));
    std::uniform_int_distribution<Index> pick(0, n - 1);
    FeatureTable Xb(n, kFeatures);
    Vector yb(n);
    Vector wb(w.size() ? n : 0);
    for (Index i = 0; i < n; ++i) {
      const Index k = pick(rng);
      Xb.row(i) = X.row(k);
      yb[i] = y[k];
      if (w.size()) wb[i] = w[k];
    }
    const LogRatioProblem problem(t, Xb, yb);
    lm::Options o = spec.lm;
    o.covariance = false;  // only the coefficients of a replicate are kept
    const lm::Result r = lm::solve(problem, theta0, bounds, spec.fixed, wb, o);
    if (r.usable()) out.row(b) = r.x.transpose();
    else out.row(b).setConstant(std::numeric_limits<double>::quiet_NaN());
  });
  return out;
}

Identification identify(const ModelTemplate& t, FeatureRef X, const Vector& w,
                        const std::vector<bool>& fixed, const Vector& values, bool reduce,
                        double rtol) {
  const Index p = t.n_params();
  const auto sz = static_cast<size_t>(p);
  if (fixed.size() != sz || values.size() != p)
    throw std::invalid_argument("identify: expected " + std::to_string(p) +
                                " fixed flags and values");
  if (w.size() && w.size() != X.rows())
    throw std::invalid_argument("identify: w has " + std::to_string(w.size()) +
                                " values but X has " + std::to_string(X.rows()) + " rows");
  if (!(rtol >= 0.0)) throw std::invalid_argument("identify: rtol must be >= 0");
  Identification out;
  // The rows of positive weight, copied only when some row has none.
  FeatureTable sub;
  const bool all_rows = !w.size() || (w.array() > 0.0).all();
  if (!all_rows) {
    sub.resize((w.array() > 0.0).count(), kFeatures);
    Index k = 0;
    for (Index i = 0; i < X.rows(); ++i)
      if (w[i] > 0.0) sub.row(k++) = X.row(i);
  }
  const FeatureRef Xr = all_rows ? X : FeatureRef(sub);
  const Index n = Xr.rows();
  if (n == 0) throw std::invalid_argument("identify: no row has a positive weight");
  out.n_rows = n;
  out.lo = Xr.colwise().minCoeff().transpose();
  out.hi = Xr.colwise().maxCoeff().transpose();

  Vector f(n);
  Matrix J(n, p);
  t.batch(Xr, values.data(), f.data(), &J);
  std::vector<bool> flags = fixed;
  Vector theta = values;
  for (Index j = 0; j < p; ++j) {
    if (flags[static_cast<size_t>(j)]) continue;
    if ((J.col(j).array() == 0.0).all()) out.pinned.push_back(j);
  }
  if (!reduce) return out;
  for (const Index j : out.pinned) {
    flags[static_cast<size_t>(j)] = true;
    theta[j] = 0.0;
  }
  if (!out.pinned.empty()) t.batch(Xr, theta.data(), f.data(), &J);
  for (Index i = 0; i < n; ++i) J.row(i) /= std::max(std::abs(f[i]), kTiny);
  Index m = 0;
  for (Index j = 0; j < p; ++j) m += flags[static_cast<size_t>(j)] ? 0 : 1;
  // Nothing to decide with one free coefficient or fewer rows than terms (the budget decides).
  out.full_rank = m <= 1 || n < m;
  if (out.full_rank) return out;
  Matrix A(n, m);
  for (Index j = 0, k = 0; j < p; ++j) {
    if (flags[static_cast<size_t>(j)]) continue;
    A.col(k) = J.col(j);
    const double norm = A.col(k).norm();
    if (norm > 0.0) A.col(k) /= norm;
    ++k;
  }
  if (!A.allFinite()) return out;
  // With A = QR, sigma_min >= 1 / ||R^-1||_F and sigma_max <= ||R||_F: a lower bound of the
  // singular-value ratio above rtol certifies full rank without an SVD (the usual case).
  const Eigen::HouseholderQR<Matrix> qr(A);
  const Matrix R = qr.matrixQR().topRows(m).triangularView<Eigen::Upper>();
  if (!(R.diagonal().array() != 0.0).all()) return out;
  const Matrix Rinv = R.triangularView<Eigen::Upper>().solve(Matrix::Identity(m, m));
  const double bound = 1.0 / (Rinv.norm() * R.norm());
  out.full_rank = std::isfinite(bound) && bound > rtol;
  return out;
}

namespace {

/// The median of v (reordered): the middle value, or the mean of the two middle ones.
double median_of(std::vector<double>& v) {
  const size_t h = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(h), v.end());
  const double hi = v[h];
  if (v.size() % 2) return hi;
  const double lo = *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(h));
  return (lo + hi) / 2.0;
}

}  // namespace

bool features_valid(FeatureRef X, const Vector& limit) {
  if (limit.size() != kFeatures)
    throw std::invalid_argument("features_valid: expected " + std::to_string(kFeatures) +
                                " limits");
  for (Index i = 0; i < X.rows(); ++i) {
    for (Index k = 0; k < kFeatures; ++k) {
      const double v = X(i, k);
      if (!std::isfinite(v) || v > limit[k]) return false;
      if (k < 2 && v != std::floor(v)) return false;
      if (k < 3 ? !(v > 0.0) : !(v >= 0.0)) return false;
    }
  }
  return true;
}

ResidualSummary residual_summary(const ModelTemplate& t, FeatureRef X, Eigen::Ref<const Vector> y,
                                 const Vector& w, const Vector& theta, const Vector& percentiles,
                                 double screen_k) {
  const Index n = X.rows();
  if (y.size() != n || (w.size() && w.size() != n))
    throw std::invalid_argument("residual_summary: y and w must have one value per row of X");
  if (theta.size() != t.n_params())
    throw std::invalid_argument("residual_summary: theta must have " +
                                std::to_string(t.n_params()) + " values");
  if (!((percentiles.array() >= 0.0) && (percentiles.array() <= 100.0)).all())
    throw std::invalid_argument("residual_summary: percentiles must lie in [0, 100]");
  if (!(screen_k >= 0.0) || !std::isfinite(screen_k))
    throw std::invalid_argument("residual_summary: screen_k must be a finite number >= 0");
  ResidualSummary out;
  Vector f(n);
  t.batch(X, theta.data(), f.data(), nullptr);
  out.log_ratio.resize(n);
  std::vector<double> r;
  r.reserve(static_cast<size_t>(n));
  for (Index i = 0; i < n; ++i) {
    out.log_ratio[i] = std::log(std::max(f[i], kTiny) / y[i]);
    const bool ok = std::isfinite(f[i]) && std::isfinite(y[i]) && f[i] > 0.0 && y[i] > 0.0 &&
                    (!w.size() || w[i] > 0.0);
    if (ok) r.push_back(std::log(y[i] / f[i]));
  }
  if (screen_k > 0.0) {
    std::vector<double> lr;
    lr.reserve(static_cast<size_t>(n));
    for (Index i = 0; i < n; ++i)
      if (!w.size() || w[i] > 0.0) lr.push_back(out.log_ratio[i]);
    const bool finite = std::all_of(lr.begin(), lr.end(), [](double v) { return std::isfinite(v); });
    if (finite && !lr.empty()) {
      std::vector<double> dev = lr;
      const double med = median_of(dev);
      for (size_t i = 0; i < lr.size(); ++i) dev[i] = std::abs(lr[i] - med);
      const double sigma = std::max(1.4826 * median_of(dev), 0.02);
      out.n_over = 0;
      for (const double v : lr) out.n_over += std::abs(v - med) > screen_k * sigma ? 1 : 0;
    }
  }
  if (r.size() < 2) return out;
  std::sort(r.begin(), r.end());
  const auto last = static_cast<double>(r.size() - 1);
  out.quantiles.resize(percentiles.size());
  for (Index k = 0; k < percentiles.size(); ++k) {
    const double pos = percentiles[k] / 100.0 * last;
    const double lo = std::floor(pos);
    const auto ilo = static_cast<size_t>(lo);
    const size_t ihi = std::min(ilo + 1, r.size() - 1);
    const double frac = pos - lo, a = r[ilo], b = r[ihi], d = b - a;
    out.quantiles[k] = frac >= 0.5 ? b - d * (1.0 - frac) : a + d * frac;
  }
  return out;
}

}  // namespace energycore::model
