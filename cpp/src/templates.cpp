// The closed-form templates (templates.hpp). Each template states its formula and gradient once,
// in `kernel`; `ClosedForm` derives the per-row value, gradient and phase split and the batched
// evaluation from it, so the three can never disagree.
#include "energycore/templates.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "energycore/parallel.hpp"

namespace energycore::model {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

ParamInfo lin(const char* name, const char* unit, const char* desc, double typical) {
  return ParamInfo{name, unit, desc, 0.0, kInf, true, typical, 1.0};
}
ParamInfo nonlin(const char* name, const char* unit, const char* desc, double lower, double upper,
                 double typical, double start_hi) {
  return ParamInfo{name, unit, desc, lower, upper, false, typical, start_hi};
}

/// A column value x with log(x) and two of its powers x^e1, x^e2.
struct Pow {
  double x, log, p1, p2;
  static Pow of(double x, double e1, double e2) noexcept {
    const double l = std::log(x);
    // Templates with one power per column pass e2 = 0: skip that exp.
    return Pow{x, l, std::exp(e1 * l), e2 == 0.0 ? 1.0 : std::exp(e2 * l)};
  }
};

/// Pow entries for the few distinct values of a column, computed once each (linear search over
/// at most kSize entries; beyond that, computed on the spot).
class PowCache {
 public:
  PowCache(double e1, double e2) noexcept : e1_(e1), e2_(e2) {}
  const Pow& get(double x) noexcept {
    for (int k = 0; k < n_; ++k)
      if (entries_[k].x == x) return entries_[k];
    if (n_ < kSize) return entries_[n_++] = Pow::of(x, e1_, e2_);
    return spill_ = Pow::of(x, e1_, e2_);
  }

 private:
  static constexpr int kSize = 16;
  double e1_, e2_;
  Pow entries_[kSize] = {};
  Pow spill_{};
  int n_ = 0;
};

/// Writes gradient entries g[j * stride]: stride 1 for one row's gradient, the row count for
/// row i of a column-major Jacobian.
struct Grad {
  double* g;
  Index stride;
  double& operator[](int j) const noexcept { return g[static_cast<Index>(j) * stride]; }
};

/// The per-row and batched entry points of a template from its one `kernel`:
///   double D::kernel<kGrad>(const double* x, const double* t, const Pow& tp, const Pow& pp,
///                           double* phases_or_null, Grad g) const noexcept
/// where tp / pp carry the powers of tp and pp at the exponents D::tp_exponents(t) /
/// D::pp_exponents(t) (pp is a dummy when D::kPpPowers is false).
template <class D>
class ClosedForm : public ModelTemplate {
 public:
  double value(const double* x, const double* t) const noexcept override {
    return self().template kernel<false>(x, t, tp_pow(x, t), pp_pow(x, t), nullptr, Grad{});
  }
  double value_and_gradient(const double* x, const double* t, double* g) const noexcept override {
    return self().template kernel<true>(x, t, tp_pow(x, t), pp_pow(x, t), nullptr, Grad{g, 1});
  }
  void phases(const double* x, const double* t, double* out) const noexcept override {
    self().template kernel<false>(x, t, tp_pow(x, t), pp_pow(x, t), out, Grad{});
  }
  void batch(const FeatureRef& X, const double* t, double* values, Matrix* G) const override {
    if (G == nullptr) run<false>(X, t, values, nullptr);
    else run<true>(X, t, values, G->data());
  }

 private:
  const D& self() const noexcept { return static_cast<const D&>(*this); }
  static Pow tp_pow(const double* x, const double* t) noexcept {
    const auto [e1, e2] = D::tp_exponents(t);
    return Pow::of(x[kTp], e1, e2);
  }
  static Pow pp_pow(const double* x, const double* t) noexcept {
    if constexpr (D::kPpPowers) {
      const auto [e1, e2] = D::pp_exponents(t);
      return Pow::of(x[kPp], e1, e2);
    } else {
      return Pow{x[kPp], 0.0, 1.0, 1.0};
    }
  }
  // log(tp) and the powers of tp (and pp) once per distinct value (a deployment space has a
  // handful) instead of once per row.
  template <bool kGrad>
  void run(const FeatureRef& X, const double* t, double* values, double* G) const {
    const auto [a1, a2] = D::tp_exponents(t);
    PowCache tpc(a1, a2);
    const Index n = X.rows();
    if constexpr (D::kPpPowers) {
      const auto [b1, b2] = D::pp_exponents(t);
      PowCache ppc(b1, b2);
      for (Index i = 0; i < n; ++i) {
        const double* x = X.row(i).data();
        values[i] = self().template kernel<kGrad>(x, t, tpc.get(x[kTp]), ppc.get(x[kPp]),
                                                  nullptr, kGrad ? Grad{G + i, n} : Grad{});
      }
    } else {
      for (Index i = 0; i < n; ++i) {
        const double* x = X.row(i).data();
        values[i] = self().template kernel<kGrad>(x, t, tpc.get(x[kTp]),
                                                  Pow{x[kPp], 0.0, 1.0, 1.0}, nullptr,
                                                  kGrad ? Grad{G + i, n} : Grad{});
      }
    }
  }
};

struct Exponents {
  double e1, e2;
};

// ---------------------------------------------------------------------------------------------
// energy_v1 and energy_v2: DESIGN.md, "The energy model". Joules per batch, all GPUs.
//   prefill = (t1 b Lin + t2 b Lin^2) tp^t3 (1 + t4 (pp-1)) + t5 b Lin s(tp)
//   decode  = Lout (t6 + t7 b + t8 b (Lin + Lout/2)) tp^t9 (1 + t10 (pp-1)) + t11 b Lout s(tp)
//   fixed   = t12 tp pp
// They differ only in how all-reduce energy grows with tp (the share s(tp)): v1 takes the
// per-GPU time share of a ring all-reduce, 1 - 1/tp; v2 (the default) sums it over the tp GPUs
// that take part, tp*(1 - 1/tp) = tp - 1, which is what the energy of all GPUs pays (each of the
// tp GPUs spends 2(tp-1)/tp * bytes/bandwidth on the ring).
enum class AllReduce { kPerGpuShare, kAllGpus };

class EnergyTemplate final : public ClosedForm<EnergyTemplate> {
 public:
  static constexpr bool kPpPowers = false;
  static Exponents tp_exponents(const double* t) noexcept { return {t[2], t[8]}; }
  static Exponents pp_exponents(const double*) noexcept { return {0.0, 0.0}; }

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

  /// tp.p1 = tp^t3, tp.p2 = tp^t9.
  template <bool kGrad>
  double kernel(const double* x, const double* t, const Pow& tp, const Pow&, double* ph,
                Grad g) const noexcept {
    const double pp = x[kPp], b = x[kBatch], lin = x[kInputLen], lout = x[kOutputLen];
    const double s = kind_ == AllReduce::kAllGpus ? tp.x - 1.0 : 1.0 - 1.0 / tp.x;
    const double bl = b * lin;
    const double A = t[0] * bl + t[1] * bl * lin;
    const double Q4 = 1.0 + t[3] * (pp - 1.0);
    const double kv = b * (lin + 0.5 * lout);
    const double C = t[5] + t[6] * b + t[7] * kv;
    const double Q10 = 1.0 + t[9] * (pp - 1.0);
    const double pre = A * tp.p1 * Q4;
    const double dec = lout * C * tp.p2 * Q10;
    const double ar_pre = t[4] * bl * s, ar_dec = t[10] * b * lout * s;
    const double fixed = t[11] * tp.x * pp;
    if (ph != nullptr) {
      ph[0] = pre + ar_pre;
      ph[1] = dec + ar_dec;
      ph[2] = fixed;
    }
    if constexpr (kGrad) {
      const double w1 = bl * tp.p1 * Q4;
      const double w2 = lout * tp.p2 * Q10;
      g[0] = w1;
      g[1] = w1 * lin;
      g[2] = pre * tp.log;
      g[3] = A * tp.p1 * (pp - 1.0);
      g[4] = bl * s;
      g[5] = w2;
      g[6] = w2 * b;
      g[7] = w2 * kv;
      g[8] = dec * tp.log;
      g[9] = lout * C * tp.p2 * (pp - 1.0);
      g[10] = b * lout * s;
      g[11] = tp.x * pp;
    }
    return pre + ar_pre + dec + ar_dec + fixed;
  }

 private:
  const char* name_;
  AllReduce kind_;
  std::vector<ParamInfo> params_;
  std::vector<std::string> phases_;
};

// ---------------------------------------------------------------------------------------------
// ttft_v1: time to first token of a batch (seconds).
//   ttft = (a1 b Lin + a2 b Lin^2) tp^a3 pp^a4 + a5 b Lin (1 - 1/tp) + a6
class TtftV1 final : public ClosedForm<TtftV1> {
 public:
  static constexpr bool kPpPowers = true;
  static Exponents tp_exponents(const double* t) noexcept { return {t[2], 0.0}; }
  static Exponents pp_exponents(const double* t) noexcept { return {t[3], 0.0}; }

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

  /// tp.p1 = tp^a3, pp.p1 = pp^a4.
  template <bool kGrad>
  static double kernel(const double* x, const double* t, const Pow& tp, const Pow& pp,
                       double* ph, Grad g) noexcept {
    const double bl = x[kBatch] * x[kInputLen];
    const double S = tp.p1 * pp.p1;
    const double A = t[0] * bl + t[1] * bl * x[kInputLen];
    const double ar = bl * (1.0 - 1.0 / tp.x);
    if (ph != nullptr) {
      ph[0] = A * S;
      ph[1] = t[4] * ar;
      ph[2] = t[5];
    }
    if constexpr (kGrad) {
      g[0] = bl * S;
      g[1] = bl * x[kInputLen] * S;
      g[2] = A * S * tp.log;
      g[3] = A * S * pp.log;
      g[4] = ar;
      g[5] = 1.0;
    }
    return A * S + t[4] * ar + t[5];
  }

 private:
  std::vector<ParamInfo> params_;
  std::vector<std::string> phases_;
};

// ---------------------------------------------------------------------------------------------
/// The coefficients c1 .. c6 of tpot_v1, which tpot_v2 shares (and extends by c7).
std::vector<ParamInfo> tpot_v1_params() {
  return {
      lin("c1", "s/step", "decode step time independent of batch (weight streaming)", 1e-2),
      lin("c2", "s/token", "decode time per sequence in the batch", 1e-5),
      lin("c3", "s/token^2", "KV-cache read time per cached token", 1e-9),
      nonlin("c4", "exponent", "tensor-parallel scaling of decode time", -2.0, 1.0, -1.0,
             0.0),
      nonlin("c5", "exponent", "pipeline-parallel scaling of decode time", -2.0, 2.0, 0.0,
             1.0),
      lin("c6", "s/token", "decode all-reduce time per sequence per step", 1e-6),
  };
}

// tpot_v1: time per output token during decode (seconds per step).
//   tpot = (c1 + c2 b + c3 b (Lin + Lout/2)) tp^c4 pp^c5 + c6 b (1 - 1/tp)
class TpotV1 final : public ClosedForm<TpotV1> {
 public:
  static constexpr bool kPpPowers = true;
  static Exponents tp_exponents(const double* t) noexcept { return {t[3], 0.0}; }
  static Exponents pp_exponents(const double* t) noexcept { return {t[4], 0.0}; }

  TpotV1() : params_{tpot_v1_params()}, phases_{"compute", "allreduce"} {}
  std::string_view name() const noexcept override { return "tpot_v1"; }
  std::string_view quantity() const noexcept override { return "tpot_s"; }
  const std::vector<ParamInfo>& params() const noexcept override { return params_; }
  const std::vector<std::string>& phase_names() const noexcept override { return phases_; }

  /// tp.p1 = tp^c4, pp.p1 = pp^c5.
  template <bool kGrad>
  static double kernel(const double* x, const double* t, const Pow& tp, const Pow& pp,
                       double* ph, Grad g) noexcept {
    const double b = x[kBatch];
    const double kv = b * (x[kInputLen] + 0.5 * x[kOutputLen]);
    const double S = tp.p1 * pp.p1;
    const double C = t[0] + t[1] * b + t[2] * kv;
    const double ar = b * (1.0 - 1.0 / tp.x);
    if (ph != nullptr) {
      ph[0] = C * S;
      ph[1] = t[5] * ar;
    }
    if constexpr (kGrad) {
      g[0] = S;
      g[1] = b * S;
      g[2] = kv * S;
      g[3] = C * S * tp.log;
      g[4] = C * S * pp.log;
      g[5] = ar;
    }
    return C * S + t[5] * ar;
  }

 private:
  std::vector<ParamInfo> params_;
  std::vector<std::string> phases_;
};

// ---------------------------------------------------------------------------------------------
// tpot_v2: tpot_v1 with a power law in the batch for the per-sequence decode time:
//   tpot = (c1 + c2 b^(1 + c7) + c3 b (Lin + Lout/2)) tp^c4 pp^c5 + c6 b (1 - 1/tp)
// Real engines' decode steps are not linear in the batch: below the compute roofline a step
// mostly streams weights (growth slower than linear, c7 < 0); batching overheads and attention
// kernels past it grow faster (c7 > 0). c7 = 0 (its neutral value) is tpot_v1 exactly.
class TpotV2 final : public ClosedForm<TpotV2> {
 public:
  static constexpr bool kPpPowers = true;
  static Exponents tp_exponents(const double* t) noexcept { return {t[3], 0.0}; }
  static Exponents pp_exponents(const double* t) noexcept { return {t[4], 0.0}; }

  TpotV2() : params_{tpot_v1_params()}, phases_{"compute", "allreduce"} {
    params_.push_back(nonlin("c7", "exponent", "batch exponent of the per-sequence time, minus 1",
                             -0.9, 1.0, 0.0, 0.5));
  }
  std::string_view name() const noexcept override { return "tpot_v2"; }
  std::string_view quantity() const noexcept override { return "tpot_s"; }
  const std::vector<ParamInfo>& params() const noexcept override { return params_; }
  const std::vector<std::string>& phase_names() const noexcept override { return phases_; }

  /// tp.p1 = tp^c4, pp.p1 = pp^c5.
  template <bool kGrad>
  static double kernel(const double* x, const double* t, const Pow& tp, const Pow& pp,
                       double* ph, Grad g) noexcept {
    const double b = x[kBatch];
    const double lb = std::log(b);
    const double bp = b * std::exp(t[6] * lb);  // b^(1 + c7)
    const double kv = b * (x[kInputLen] + 0.5 * x[kOutputLen]);
    const double S = tp.p1 * pp.p1;
    const double C = t[0] + t[1] * bp + t[2] * kv;
    const double ar = b * (1.0 - 1.0 / tp.x);
    if (ph != nullptr) {
      ph[0] = C * S;
      ph[1] = t[5] * ar;
    }
    if constexpr (kGrad) {
      g[0] = S;
      g[1] = bp * S;
      g[2] = kv * S;
      g[3] = C * S * tp.log;
      g[4] = C * S * pp.log;
      g[5] = ar;
      g[6] = t[1] * bp * lb * S;
    }
    return C * S + t[5] * ar;
  }

 private:
  std::vector<ParamInfo> params_;
  std::vector<std::string> phases_;
};

// ---------------------------------------------------------------------------------------------
// tpot_moe_v1: tpot_v1 for a mixture-of-experts model, whose decode step reads only the experts
// its tokens are routed to. With b sequences in a step each routed to a fraction r = k/E of the
// experts (independently and uniformly), the expected share of experts read is 1 - (1 - r)^b:
//   tpot = (c1 + c7 (1 - (1 - c8)^b) + c2 b + c3 b (Lin + Lout/2)) tp^c4 pp^c5 + c6 b (1 - 1/tp)
// c1 is the step time of the always-read (dense) weights, c7 that of all expert weights, c8 = r
// (pin it to k/E when the model's routing is known). c1 .. c6 mean what they mean in tpot_v1.
class TpotMoeV1 final : public ClosedForm<TpotMoeV1> {
 public:
  static constexpr bool kPpPowers = true;
  static Exponents tp_exponents(const double* t) noexcept { return {t[3], 0.0}; }
  static Exponents pp_exponents(const double* t) noexcept { return {t[4], 0.0}; }

  TpotMoeV1()
      : params_{
            lin("c1", "s/step", "decode step time of the always-read (dense) weights", 1e-2),
            lin("c2", "s/token", "decode time per sequence in the batch", 1e-5),
            lin("c3", "s/token^2", "KV-cache read time per cached token", 1e-9),
            nonlin("c4", "exponent", "tensor-parallel scaling of decode time", -2.0, 1.0, -1.0,
                   0.0),
            nonlin("c5", "exponent", "pipeline-parallel scaling of decode time", -2.0, 2.0, 0.0,
                   1.0),
            lin("c6", "s/token", "decode all-reduce time per sequence per step", 1e-6),
            lin("c7", "s/step", "decode step time to read every expert's weights", 1e-2),
            nonlin("c8", "1", "fraction of the experts each token is routed to (k/E)", 0.0,
                   0.999, 0.25, 0.6),
        },
        phases_{"compute", "experts", "allreduce"} {}
  std::string_view name() const noexcept override { return "tpot_moe_v1"; }
  std::string_view quantity() const noexcept override { return "tpot_s"; }
  const std::vector<ParamInfo>& params() const noexcept override { return params_; }
  const std::vector<std::string>& phase_names() const noexcept override { return phases_; }

  /// tp.p1 = tp^c4, pp.p1 = pp^c5.
  template <bool kGrad>
  static double kernel(const double* x, const double* t, const Pow& tp, const Pow& pp,
                       double* ph, Grad g) noexcept {
    const double b = x[kBatch];
    const double kv = b * (x[kInputLen] + 0.5 * x[kOutputLen]);
    const double S = tp.p1 * pp.p1;
    const double q = std::exp(b * std::log1p(-t[7]));  // (1 - c8)^b: no expert left unread
    const double cover = 1.0 - q;
    const double C = t[0] + t[1] * b + t[2] * kv;
    const double W = C + t[6] * cover;
    const double ar = b * (1.0 - 1.0 / tp.x);
    if (ph != nullptr) {
      ph[0] = C * S;
      ph[1] = t[6] * cover * S;
      ph[2] = t[5] * ar;
    }
    if constexpr (kGrad) {
      g[0] = S;
      g[1] = b * S;
      g[2] = kv * S;
      g[3] = W * S * tp.log;
      g[4] = W * S * pp.log;
      g[5] = ar;
      g[6] = cover * S;
      g[7] = t[6] * S * b * q / (1.0 - t[7]);
    }
    return W * S + t[5] * ar;
  }

 private:
  std::vector<ParamInfo> params_;
  std::vector<std::string> phases_;
};

const EnergyTemplate kEnergyV1("energy_v1", AllReduce::kPerGpuShare);
const EnergyTemplate kEnergyV2("energy_v2", AllReduce::kAllGpus);
const TtftV1 kTtftV1;
const TpotV1 kTpotV1;
const TpotV2 kTpotV2;
const TpotMoeV1 kTpotMoeV1;
const ModelTemplate* const kTemplates[] = {&kEnergyV1, &kEnergyV2, &kTtftV1, &kTpotV1,
                                           &kTpotMoeV1, &kTpotV2};

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
    const Index begin = c * kChunk;
    const Index len = std::min(n, begin + kChunk) - begin;
    t.batch(X.middleRows(begin, len), theta.data(), out.data() + begin, nullptr);
  });
}

void jacobian(const ModelTemplate& t, const FeatureRef& X, const Vector& theta,
              Eigen::Ref<Matrix> out) {
  Vector values(X.rows());
  Matrix grad(X.rows(), t.n_params());
  t.batch(X, theta.data(), values.data(), &grad);
  out = grad;
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

}  // namespace energycore::model
