// The term-sum template (term_sum.hpp): a discovered closed form evaluated per feature row with
// the gradient in its coefficients and free exponents. Powers follow numpy's evaluation of
// DiscoveredModel.predict: |x|^e, with 0^e = 0 for e > 0, 1 for e = 0 and +inf for e < 0, and
// the factors multiplied in the order given, so the engine and numpy agree to rounding.
// (Measured in docs/benchmarks.md, "Structure discovery", (space).)
#include "energycore/term_sum.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

namespace energycore::model {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

double variable_of(const double* row, int v) noexcept {
  switch (v) {
    case kVarNGpus:
      return row[kTp] * row[kPp];
    case kVarTpMinus1:
      return row[kTp] - 1.0;
    case kVarPpMinus1:
      return row[kPp] - 1.0;
    default:
      return row[v];  // kVarTp .. kVarOutputLen are the feature columns themselves
  }
}

/// |x|^e; the common exponents without pow() (as numpy's power does for them: identity,
/// square, reciprocal, square root), which is several times faster per factor.
double power(double x, double e) noexcept {
  if (x == 0.0) return e > 0.0 ? 0.0 : (e == 0.0 ? 1.0 : kInf);
  const double a = std::fabs(x);
  if (e == 1.0) return a;
  if (e == 2.0) return a * a;
  if (e == -1.0) return 1.0 / a;
  if (e == 0.5) return std::sqrt(a);
  return std::pow(a, e);
}

class TermSum final : public ModelTemplate {
 public:
  TermSum(std::vector<std::vector<TermFactor>> terms, int n_free, std::string quantity)
      : terms_(std::move(terms)), n_free_(n_free), quantity_(std::move(quantity)) {
    const int k = static_cast<int>(terms_.size());
    for (int j = 0; j < k; ++j) {
      const std::string nm = "c" + std::to_string(j);
      params_.push_back(ParamInfo{nm, "", "coefficient of term " + std::to_string(j), 0.0, kInf,
                                  true, 1.0, 1.0});
    }
    for (int i = 0; i < n_free_; ++i)
      params_.push_back(ParamInfo{"e" + std::to_string(i), "1",
                                  "free exponent " + std::to_string(i), -kInf, kInf, false, 1.0,
                                  1.0});
    phase_of_.reserve(terms_.size());
    for (const auto& t : terms_) {
      int ph = 2;  // fixed
      for (const TermFactor& f : t) {
        if (f.variable == kVarOutputLen) ph = 1;
        if (f.variable == kVarInputLen && ph == 2) ph = 0;
      }
      phase_of_.push_back(ph);
    }
  }

  std::string_view name() const noexcept override { return "term_sum"; }
  std::string_view quantity() const noexcept override { return quantity_; }
  const std::vector<ParamInfo>& params() const noexcept override { return params_; }
  const std::vector<std::string>& phase_names() const noexcept override { return phases_; }

  double value(const double* row, const double* theta) const noexcept override {
    double y = 0.0;
    for (size_t j = 0; j < terms_.size(); ++j) {
      const double c = theta[j];
      if (c == 0.0) continue;  // an absent term (a zero coefficient) adds nothing, even at inf
      y += c * term(row, theta, j);
    }
    return y;
  }

  double value_and_gradient(const double* row, const double* theta,
                            double* grad) const noexcept override {
    const size_t k = terms_.size();
    for (Index p = 0; p < n_params(); ++p) grad[p] = 0.0;
    double y = 0.0;
    for (size_t j = 0; j < k; ++j) {
      const double t = term(row, theta, j);
      grad[j] = t;
      const double c = theta[j];
      if (c == 0.0) continue;
      const double ct = c * t;
      y += ct;
      for (const TermFactor& f : terms_[j]) {
        if (f.free_index < 0) continue;
        const double x = variable_of(row, f.variable);
        grad[k + static_cast<size_t>(f.free_index)] += x > 0.0 ? ct * std::log(x) : 0.0;
      }
    }
    return y;
  }

  void phases(const double* row, const double* theta, double* out) const noexcept override {
    out[0] = out[1] = out[2] = 0.0;
    for (size_t j = 0; j < terms_.size(); ++j) {
      const double c = theta[j];
      if (c == 0.0) continue;
      out[phase_of_[j]] += c * term(row, theta, j);
    }
  }

 private:
  double term(const double* row, const double* theta, size_t j) const noexcept {
    const size_t k = terms_.size();
    double t = 1.0;
    for (const TermFactor& f : terms_[j]) {
      const double e =
          f.free_index >= 0 ? theta[k + static_cast<size_t>(f.free_index)] : f.exponent;
      t *= power(variable_of(row, f.variable), e);
    }
    return t;
  }

  std::vector<std::vector<TermFactor>> terms_;
  int n_free_;
  std::string quantity_;
  std::vector<ParamInfo> params_;
  std::vector<int> phase_of_;
  std::vector<std::string> phases_{"prefill", "decode", "fixed"};
};

}  // namespace

std::shared_ptr<const ModelTemplate> make_term_sum(std::vector<std::vector<TermFactor>> terms,
                                                   int n_free, std::string quantity) {
  if (terms.empty()) throw std::invalid_argument("terms: a term-sum model needs at least one term");
  if (terms.size() > static_cast<size_t>(kMaxTerms))
    throw std::invalid_argument("terms: at most " + std::to_string(kMaxTerms) + " terms, got " +
                                std::to_string(terms.size()));
  if (n_free < 0 || n_free > kMaxFree)
    throw std::invalid_argument("terms: the number of free exponents must be in [0, " +
                                std::to_string(kMaxFree) + "], got " + std::to_string(n_free));
  for (size_t j = 0; j < terms.size(); ++j) {
    const std::string where = "terms: term " + std::to_string(j);
    if (terms[j].size() > static_cast<size_t>(kMaxFactors))
      throw std::invalid_argument(where + " has more than " + std::to_string(kMaxFactors) +
                                  " factors");
    for (const TermFactor& f : terms[j]) {
      if (f.variable < 0 || f.variable >= kTermVariables)
        throw std::invalid_argument(where + ": variable index " + std::to_string(f.variable) +
                                    " is outside [0, " + std::to_string(kTermVariables) +
                                    ") (tp, pp, batch, input_len, output_len, n_gpus, tp-1, pp-1)");
      if (f.free_index < -1 || f.free_index >= n_free)
        throw std::invalid_argument(where + ": free exponent index " +
                                    std::to_string(f.free_index) + " is outside [-1, " +
                                    std::to_string(n_free) + ")");
      if (f.free_index < 0 && !std::isfinite(f.exponent))
        throw std::invalid_argument(where + ": exponent must be finite, got " +
                                    std::to_string(f.exponent));
    }
  }
  return std::make_shared<const TermSum>(std::move(terms), n_free, std::move(quantity));
}

}  // namespace energycore::model
