#include "energycore/energy_model.hpp"
#include "energycore/parallel.hpp"

#include <Eigen/Cholesky>
#include <Eigen/QR>
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>

namespace energycore::model {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kTiny = 1e-300;

ParamInfo lin(const char* name, const char* unit, const char* desc, double typical) {
  return ParamInfo{name, unit, desc, 0.0, kInf, true, typical, 1.0};
}
ParamInfo nonlin(const char* name, const char* unit, const char* desc, double lower, double upper,
                 double typical, double start_hi) {
  return ParamInfo{name, unit, desc, lower, upper, false, typical, start_hi};
}

/// Shared pieces of the templates: the tensor-parallel power law and the all-reduce share.
struct Row {
  double tp, pp, b, lin, lout, log_tp, log_pp, ar;  // ar = 1 - 1/tp
  explicit Row(const double* x) noexcept
      : tp(x[kTp]),
        pp(x[kPp]),
        b(x[kBatch]),
        lin(x[kInputLen]),
        lout(x[kOutputLen]),
        log_tp(std::log(x[kTp])),
        log_pp(std::log(x[kPp])),
        ar(1.0 - 1.0 / x[kTp]) {}
};

/// x^e1 and x^e2 for the few distinct values x of a column, computed once each (linear search
/// over at most kSize entries; beyond that, computed on the spot).
class PowCache {
 public:
  struct Entry {
    double x, log, p1, p2;
  };
  PowCache(double e1, double e2) noexcept : e1_(e1), e2_(e2) {}
  const Entry& get(double x) noexcept {
    for (int k = 0; k < n_; ++k)
      if (entries_[k].x == x) return entries_[k];
    const double l = std::log(x);
    Entry e{x, l, std::exp(e1_ * l), std::exp(e2_ * l)};
    if (n_ < kSize) {
      entries_[n_] = e;
      return entries_[n_++];
    }
    spill_ = e;
    return spill_;
  }

 private:
  static constexpr int kSize = 16;
  double e1_, e2_;
  Entry entries_[kSize] = {};
  Entry spill_{};
  int n_ = 0;
};

// ---------------------------------------------------------------------------------------------
// energy_v1 and energy_v2: DESIGN.md, "The energy model". Joules per batch, all GPUs.
// They differ only in how all-reduce energy grows with tp (the `AllReduce` share `s(tp)`):
// v1 takes the per-GPU time share of a ring all-reduce, 1 - 1/tp; v2 (the default) sums it
// over the tp GPUs that take part, tp*(1 - 1/tp) = tp - 1, which is what the energy of all
// GPUs pays (each of the tp GPUs spends 2(tp-1)/tp * bytes/bandwidth on the ring).
enum class AllReduce { kPerGpuShare, kAllGpus };

class EnergyTemplate final : public ModelTemplate {
 public:
  EnergyTemplate(const char* name, AllReduce kind)
      : name_(name),
        kind_(kind),
        params_{
            lin("t1", "J/token", "prefill work per prompt token (weight GEMMs)", 1e-3),
            lin("t2", "J/token^2", "prefill attention per token of context", 1e-8),
            nonlin("t3", "exponent", "tensor-parallel scaling of prefill energy", -1.0, 2.0, 0.0,
                   2.0),
            nonlin("t4", "1", "pipeline overhead per extra stage, prefill", 0.0, kInf, 0.1, 1.0),
            lin("t5", "J/token",
                kind == AllReduce::kAllGpus
                    ? "prefill all-reduce energy per token per extra tensor-parallel GPU"
                    : "prefill all-reduce energy per token",
                1e-4),
            lin("t6", "J/step", "decode energy per step independent of batch", 1.0),
            lin("t7", "J/token", "decode work per generated token", 1e-2),
            lin("t8", "J/token^2", "KV-cache read energy per cached token per step", 1e-6),
            nonlin("t9", "exponent", "tensor-parallel scaling of decode energy", -1.0, 2.0, 0.0,
                   2.0),
            nonlin("t10", "1", "pipeline overhead per extra stage, decode", 0.0, kInf, 0.1, 1.0),
            lin("t11", "J/token",
                kind == AllReduce::kAllGpus
                    ? "decode all-reduce energy per token per extra tensor-parallel GPU"
                    : "decode all-reduce energy per token",
                1e-3),
            lin("t12", "J/GPU", "fixed energy per GPU per batch (launch, idle tail)", 1.0),
        },
        phases_{"prefill", "decode", "fixed"} {}
  std::string_view name() const noexcept override { return name_; }
  std::string_view quantity() const noexcept override { return "energy_j"; }
  const std::vector<ParamInfo>& params() const noexcept override { return params_; }
  const std::vector<std::string>& phase_names() const noexcept override { return phases_; }

  void phases(const double* x, const double* t, double* out) const noexcept override {
    const Row r(x);
    const double A = t[0] * r.b * r.lin + t[1] * r.b * r.lin * r.lin;
    const double P3 = std::exp(t[2] * r.log_tp);
    const double Q4 = 1.0 + t[3] * (r.pp - 1.0);
    const double C = t[5] + t[6] * r.b + t[7] * r.b * (r.lin + 0.5 * r.lout);
    const double P9 = std::exp(t[8] * r.log_tp);
    const double Q10 = 1.0 + t[9] * (r.pp - 1.0);
    out[0] = A * P3 * Q4 + t[4] * r.b * r.lin * share(r.tp);
    out[1] = r.lout * C * P9 * Q10 + t[10] * r.b * r.lout * share(r.tp);
    out[2] = t[11] * r.tp * r.pp;
  }
  double value(const double* x, const double* t) const noexcept override {
    double p[3];
    phases(x, t, p);
    return p[0] + p[1] + p[2];
  }
  double value_and_gradient(const double* x, const double* t, double* g) const noexcept override {
    const Row r(x);
    const double bl = r.b * r.lin;
    const double A = t[0] * bl + t[1] * bl * r.lin;
    const double P3 = std::exp(t[2] * r.log_tp);
    const double Q4 = 1.0 + t[3] * (r.pp - 1.0);
    const double kv = r.b * (r.lin + 0.5 * r.lout);
    const double C = t[5] + t[6] * r.b + t[7] * kv;
    const double P9 = std::exp(t[8] * r.log_tp);
    const double Q10 = 1.0 + t[9] * (r.pp - 1.0);
    const double dec = r.lout * P9 * Q10;
    g[0] = bl * P3 * Q4;
    g[1] = bl * r.lin * P3 * Q4;
    g[2] = A * P3 * Q4 * r.log_tp;
    g[3] = A * P3 * (r.pp - 1.0);
    g[4] = bl * share(r.tp);
    g[5] = dec;
    g[6] = dec * r.b;
    g[7] = dec * kv;
    g[8] = r.lout * C * P9 * Q10 * r.log_tp;
    g[9] = r.lout * C * P9 * (r.pp - 1.0);
    g[10] = r.b * r.lout * share(r.tp);
    g[11] = r.tp * r.pp;
    return A * P3 * Q4 + t[4] * g[4] + r.lout * C * P9 * Q10 + t[10] * g[10] + t[11] * g[11];
  }

  void batch(const FeatureRef& X, const double* t, double* values, Matrix* G) const override {
    // Same algebra as value_and_gradient, with log(tp), tp^t3 and tp^t9 computed once per
    // distinct tp value (a deployment space has a handful) instead of once per row.
    PowCache cache(t[2], t[8]);
    const Index n = X.rows();
    for (Index i = 0; i < n; ++i) {
      const double* x = X.row(i).data();
      const double tp = x[kTp], pp = x[kPp], b = x[kBatch], lin = x[kInputLen],
                   lout = x[kOutputLen];
      const PowCache::Entry& e = cache.get(tp);
      const double ar = share(tp);
      const double bl = b * lin;
      const double A = t[0] * bl + t[1] * bl * lin;
      const double Q4 = 1.0 + t[3] * (pp - 1.0);
      const double kv = b * (lin + 0.5 * lout);
      const double C = t[5] + t[6] * b + t[7] * kv;
      const double Q10 = 1.0 + t[9] * (pp - 1.0);
      const double pre = A * e.p1 * Q4;
      const double dec = lout * C * e.p2 * Q10;
      values[i] = pre + t[4] * bl * ar + dec + t[10] * b * lout * ar + t[11] * tp * pp;
      if (G == nullptr) continue;
      Matrix& g = *G;
      const double w1 = bl * e.p1 * Q4;
      const double w2 = lout * e.p2 * Q10;
      g(i, 0) = w1;
      g(i, 1) = w1 * lin;
      g(i, 2) = pre * e.log;
      g(i, 3) = A * e.p1 * (pp - 1.0);
      g(i, 4) = bl * ar;
      g(i, 5) = w2;
      g(i, 6) = w2 * b;
      g(i, 7) = w2 * kv;
      g(i, 8) = dec * e.log;
      g(i, 9) = lout * C * e.p2 * (pp - 1.0);
      g(i, 10) = b * lout * ar;
      g(i, 11) = tp * pp;
    }
  }

 private:
  /// The all-reduce share s(tp) that multiplies t5 and t11.
  double share(double tp) const noexcept {
    return kind_ == AllReduce::kAllGpus ? tp - 1.0 : 1.0 - 1.0 / tp;
  }

  const char* name_;
  AllReduce kind_;
  std::vector<ParamInfo> params_;
  std::vector<std::string> phases_;
};

// ---------------------------------------------------------------------------------------------
// ttft_v1: time to first token of a batch (seconds).
//   ttft = (a1 b Lin + a2 b Lin^2) tp^a3 pp^a4 + a5 b Lin (1 - 1/tp) + a6
class TtftV1 final : public ModelTemplate {
 public:
  TtftV1()
      : params_{
            lin("a1", "s/token", "prefill compute time per prompt token", 1e-5),
            lin("a2", "s/token^2", "prefill attention time per token of context", 1e-10),
            nonlin("a3", "exponent", "tensor-parallel scaling of prefill time", -2.0, 1.0, -1.0,
                   0.0),
            nonlin("a4", "exponent", "pipeline-parallel scaling of prefill time", -2.0, 2.0, 0.0,
                   1.0),
            lin("a5", "s/token", "prefill all-reduce time per prompt token", 1e-6),
            lin("a6", "s", "fixed time to first token (scheduling, launch)", 1e-2),
        },
        phases_{"compute", "allreduce", "fixed"} {}
  std::string_view name() const noexcept override { return "ttft_v1"; }
  std::string_view quantity() const noexcept override { return "ttft_s"; }
  const std::vector<ParamInfo>& params() const noexcept override { return params_; }
  const std::vector<std::string>& phase_names() const noexcept override { return phases_; }

  void phases(const double* x, const double* t, double* out) const noexcept override {
    const Row r(x);
    const double bl = r.b * r.lin;
    out[0] = (t[0] * bl + t[1] * bl * r.lin) * std::exp(t[2] * r.log_tp + t[3] * r.log_pp);
    out[1] = t[4] * bl * r.ar;
    out[2] = t[5];
  }
  double value(const double* x, const double* t) const noexcept override {
    double p[3];
    phases(x, t, p);
    return p[0] + p[1] + p[2];
  }
  double value_and_gradient(const double* x, const double* t, double* g) const noexcept override {
    const Row r(x);
    const double bl = r.b * r.lin;
    const double S = std::exp(t[2] * r.log_tp + t[3] * r.log_pp);
    const double A = t[0] * bl + t[1] * bl * r.lin;
    g[0] = bl * S;
    g[1] = bl * r.lin * S;
    g[2] = A * S * r.log_tp;
    g[3] = A * S * r.log_pp;
    g[4] = bl * r.ar;
    g[5] = 1.0;
    return A * S + t[4] * g[4] + t[5];
  }

  void batch(const FeatureRef& X, const double* t, double* values, Matrix* G) const override {
    PowCache tpc(t[2], 0.0), ppc(t[3], 0.0);  // tp^a3 and pp^a4 once per distinct value
    for (Index i = 0; i < X.rows(); ++i) {
      const double* x = X.row(i).data();
      const auto& et = tpc.get(x[kTp]);
      const auto& ep = ppc.get(x[kPp]);
      const double S = et.p1 * ep.p1;
      const double bl = x[kBatch] * x[kInputLen];
      const double A = t[0] * bl + t[1] * bl * x[kInputLen];
      const double ar = 1.0 - 1.0 / x[kTp];
      values[i] = A * S + t[4] * bl * ar + t[5];
      if (G == nullptr) continue;
      Matrix& g = *G;
      g(i, 0) = bl * S;
      g(i, 1) = bl * x[kInputLen] * S;
      g(i, 2) = A * S * et.log;
      g(i, 3) = A * S * ep.log;
      g(i, 4) = bl * ar;
      g(i, 5) = 1.0;
    }
  }

 private:
  std::vector<ParamInfo> params_;
  std::vector<std::string> phases_;
};

// ---------------------------------------------------------------------------------------------
// tpot_v1: time per output token during decode (seconds per step).
//   tpot = (c1 + c2 b + c3 b (Lin + Lout/2)) tp^c4 pp^c5 + c6 b (1 - 1/tp)
class TpotV1 final : public ModelTemplate {
 public:
  TpotV1()
      : params_{
            lin("c1", "s/step", "decode step time independent of batch (weight streaming)", 1e-2),
            lin("c2", "s/token", "decode time per sequence in the batch", 1e-5),
            lin("c3", "s/token^2", "KV-cache read time per cached token", 1e-9),
            nonlin("c4", "exponent", "tensor-parallel scaling of decode time", -2.0, 1.0, -1.0,
                   0.0),
            nonlin("c5", "exponent", "pipeline-parallel scaling of decode time", -2.0, 2.0, 0.0,
                   1.0),
            lin("c6", "s/token", "decode all-reduce time per sequence per step", 1e-6),
        },
        phases_{"compute", "allreduce"} {}
  std::string_view name() const noexcept override { return "tpot_v1"; }
  std::string_view quantity() const noexcept override { return "tpot_s"; }
  const std::vector<ParamInfo>& params() const noexcept override { return params_; }
  const std::vector<std::string>& phase_names() const noexcept override { return phases_; }

  void phases(const double* x, const double* t, double* out) const noexcept override {
    const Row r(x);
    out[0] = (t[0] + t[1] * r.b + t[2] * r.b * (r.lin + 0.5 * r.lout)) *
             std::exp(t[3] * r.log_tp + t[4] * r.log_pp);
    out[1] = t[5] * r.b * r.ar;
  }
  double value(const double* x, const double* t) const noexcept override {
    double p[2];
    phases(x, t, p);
    return p[0] + p[1];
  }
  double value_and_gradient(const double* x, const double* t, double* g) const noexcept override {
    const Row r(x);
    const double kv = r.b * (r.lin + 0.5 * r.lout);
    const double S = std::exp(t[3] * r.log_tp + t[4] * r.log_pp);
    const double C = t[0] + t[1] * r.b + t[2] * kv;
    g[0] = S;
    g[1] = r.b * S;
    g[2] = kv * S;
    g[3] = C * S * r.log_tp;
    g[4] = C * S * r.log_pp;
    g[5] = r.b * r.ar;
    return C * S + t[5] * g[5];
  }

  void batch(const FeatureRef& X, const double* t, double* values, Matrix* G) const override {
    PowCache tpc(t[3], 0.0), ppc(t[4], 0.0);  // tp^c4 and pp^c5 once per distinct value
    for (Index i = 0; i < X.rows(); ++i) {
      const double* x = X.row(i).data();
      const auto& et = tpc.get(x[kTp]);
      const auto& ep = ppc.get(x[kPp]);
      const double S = et.p1 * ep.p1;
      const double b = x[kBatch];
      const double kv = b * (x[kInputLen] + 0.5 * x[kOutputLen]);
      const double C = t[0] + t[1] * b + t[2] * kv;
      const double ar = 1.0 - 1.0 / x[kTp];
      values[i] = C * S + t[5] * b * ar;
      if (G == nullptr) continue;
      Matrix& g = *G;
      g(i, 0) = S;
      g(i, 1) = b * S;
      g(i, 2) = kv * S;
      g(i, 3) = C * S * et.log;
      g(i, 4) = C * S * ep.log;
      g(i, 5) = b * ar;
    }
  }

 private:
  std::vector<ParamInfo> params_;
  std::vector<std::string> phases_;
};

const EnergyTemplate kEnergyV1("energy_v1", AllReduce::kPerGpuShare);
const EnergyTemplate kEnergyV2("energy_v2", AllReduce::kAllGpus);
const TtftV1 kTtftV1;
const TpotV1 kTpotV1;
const ModelTemplate* const kTemplates[] = {&kEnergyV1, &kEnergyV2, &kTtftV1, &kTpotV1};

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

const ModelTemplate& get_template(std::string_view name) {
  for (const ModelTemplate* t : kTemplates)
    if (t->name() == name) return *t;
  std::string known;
  for (const ModelTemplate* t : kTemplates)
    known += (known.empty() ? "" : ", ") + std::string(t->name());
  throw std::invalid_argument("template: unknown model template '" + std::string(name) +
                              "' (known: " + known + ")");
}

std::vector<std::string> template_names() {
  std::vector<std::string> out;
  for (const ModelTemplate* t : kTemplates) out.emplace_back(t->name());
  return out;
}

void evaluate(const ModelTemplate& t, const FeatureRef& X, const Vector& theta,
              Eigen::Ref<Vector> out, int n_threads) {
  const Index n = X.rows();
  constexpr Index kChunk = 4096;
  const Index n_chunks = (n + kChunk - 1) / kChunk;
  parallel_for(n_chunks, n_chunks > 1 ? n_threads : 1, [&](Index c) {
    const Index end = std::min(n, (c + 1) * kChunk);
    for (Index i = c * kChunk; i < end; ++i) out[i] = t.value(X.row(i).data(), theta.data());
  });
}

void jacobian(const ModelTemplate& t, const FeatureRef& X, const Vector& theta,
              Eigen::Ref<Matrix> out) {
  std::vector<double> g(static_cast<size_t>(t.n_params()));
  for (Index i = 0; i < X.rows(); ++i) {
    t.value_and_gradient(X.row(i).data(), theta.data(), g.data());
    for (Index j = 0; j < t.n_params(); ++j) out(i, j) = g[static_cast<size_t>(j)];
  }
}

void phases(const ModelTemplate& t, const FeatureRef& X, const Vector& theta,
            Eigen::Ref<Matrix> out) {
  std::vector<double> p(t.phase_names().size());
  for (Index i = 0; i < X.rows(); ++i) {
    t.phases(X.row(i).data(), theta.data(), p.data());
    for (size_t k = 0; k < p.size(); ++k) out(i, static_cast<Index>(k)) = p[k];
  }
}

void ModelTemplate::batch(const FeatureRef& X, const double* theta, double* values,
                          Matrix* grad) const {
  if (grad == nullptr) {
    for (Index i = 0; i < X.rows(); ++i) values[i] = value(X.row(i).data(), theta);
    return;
  }
  std::vector<double> g(static_cast<size_t>(n_params()));
  for (Index i = 0; i < X.rows(); ++i) {
    values[i] = value_and_gradient(X.row(i).data(), theta, g.data());
    for (Index j = 0; j < n_params(); ++j) (*grad)(i, j) = g[static_cast<size_t>(j)];
  }
}

LogRatioProblem::LogRatioProblem(const ModelTemplate& t, FeatureRef X, Eigen::Ref<const Vector> y)
    : t_(t), X_(std::move(X)), y_(std::move(y)) {}

void LogRatioProblem::evaluate(const Vector& x, Vector& r, Matrix* J) const {
  const Index n = X_.rows();
  r.resize(n);
  if (J != nullptr) J->resize(n, t_.n_params());
  t_.batch(X_, x.data(), r.data(), J);
  r = r.cwiseMax(kTiny);
  // d log f / d theta = (d f / d theta) / f, scaled column by column (J is column-major).
  if (J != nullptr) J->array().colwise() /= r.array();
  for (Index i = 0; i < n; ++i) r[i] = std::log(r[i] / y_[i]);
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
  auto solve_passive = [&](Vector& z) {
    std::vector<Index> idx;
    for (Index j = 0; j < n; ++j)
      if (passive[static_cast<size_t>(j)]) idx.push_back(j);
    Matrix Ap(m, static_cast<Index>(idx.size()));
    for (size_t k = 0; k < idx.size(); ++k) Ap.col(static_cast<Index>(k)) = As.col(idx[k]);
    const Vector zp = Ap.colPivHouseholderQr().solve(b);
    z.setZero(n);
    for (size_t k = 0; k < idx.size(); ++k) z[idx[k]] = zp[static_cast<Index>(k)];
  };
  for (int it = 0; it < limit; ++it) {
    const Vector w = As.transpose() * (b - As * x);
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
  std::vector<double> g(static_cast<size_t>(p));
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
      for (Index i = 0; i < n; ++i) {
        const double held = t.value_and_gradient(X.row(i).data(), theta0.data(), g.data());
        const double sw = w.size() ? std::sqrt(w[i]) : 1.0;
        for (size_t k = 0; k < lin_idx.size(); ++k)
          A(i, static_cast<Index>(k)) = sw * g[static_cast<size_t>(lin_idx[k])] / y[i];
        rhs[i] = sw * (1.0 - held / y[i]);
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
    if (r.success()) out.row(b) = r.x.transpose();
    else out.row(b).setConstant(std::numeric_limits<double>::quiet_NaN());
  });
  return out;
}

}  // namespace energycore::model
