// Bindings of the term-sum template (term_sum.hpp): its conversion from Python, shared with the
// space engine binding, and a direct evaluation (values and gradient) used by DiscoveredModel's
// tests. The GIL is released around the loop over rows.
#include "common.hpp"

#include <cmath>
#include <string>

#include "term_arg.hpp"

namespace energycore::bindings {

std::shared_ptr<const model::ModelTemplate> term_sum_of(const TermArg& arg,
                                                        const std::string& quantity) {
  std::vector<std::vector<model::TermFactor>> terms;
  terms.reserve(arg.first.size());
  for (const auto& t : arg.first) {
    std::vector<model::TermFactor> fs;
    fs.reserve(t.size());
    for (const auto& [v, e, free] : t) fs.push_back(model::TermFactor{v, e, free});
    terms.push_back(std::move(fs));
  }
  return model::make_term_sum(std::move(terms), arg.second, quantity);
}

void check_term_theta(const model::ModelTemplate& t, const Vector& theta, const std::string& what) {
  if (theta.size() != t.n_params())
    throw std::invalid_argument(what + ": the term-sum model needs " +
                                std::to_string(t.n_params()) + " values (coefficients, then free "
                                "exponents), got " + std::to_string(theta.size()));
  for (Index j = 0; j < theta.size(); ++j) {
    if (!std::isfinite(theta[j]))
      throw std::invalid_argument(what + ": value " + std::to_string(j) + " is not finite");
    if (t.params()[static_cast<size_t>(j)].linear && theta[j] < 0)
      throw std::invalid_argument(what + ": coefficient " + std::to_string(j) +
                                  " is negative (" + std::to_string(theta[j]) + ")");
  }
}

void bind_terms(py::module_& m) {
  m.def(
      "term_sum_value",
      [](const TermArg& terms, Eigen::Ref<const FeatureTable> X, const Vector& theta,
         bool gradient) -> py::object {
        const auto t = term_sum_of(terms, "y");
        check_term_theta(*t, theta, "theta");
        Vector values(X.rows());
        Matrix grad;
        {
          py::gil_scoped_release release;
          if (gradient) grad.resize(X.rows(), t->n_params());
          t->batch(X, theta.data(), values.data(), gradient ? &grad : nullptr);
        }
        if (!gradient) return py::cast(values);
        return py::make_tuple(values, grad);
      },
      py::arg("terms"), py::arg("X"), py::arg("theta"), py::arg("gradient") = false,
      "A term-sum model ([[(variable, exponent, free_index), ...] per term], n_free) at each row "
      "of X (n x 5: tp, pp, batch, input_len, output_len); with gradient, also d value / d theta "
      "(n x n_params). Variables: 0 tp, 1 pp, 2 batch, 3 input_len, 4 output_len, 5 n_gpus, "
      "6 tp-1, 7 pp-1.");
}

}  // namespace energycore::bindings
