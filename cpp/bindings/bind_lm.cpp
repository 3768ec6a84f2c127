// Bindings of the generic Levenberg-Marquardt solver (lm.hpp): options and results as dicts,
// and a least_squares() for residual functions written in Python (GIL held: it calls Python).
#include "common.hpp"

#include <string>

#include "energycore/lm.hpp"

namespace energycore::bindings {

namespace {

/// A Problem whose residuals and Jacobian come from Python callables.
class PyProblem final : public lm::Problem {
 public:
  PyProblem(py::function fun, py::function jac, Index m, Index n)
      : fun_(std::move(fun)), jac_(std::move(jac)), m_(m), n_(n) {}
  Index n_residuals() const noexcept override { return m_; }
  Index n_params() const noexcept override { return n_; }
  void evaluate(const Vector& x, Vector& r, Matrix* J) const override {
    r = fun_(x).cast<Vector>();
    if (r.size() != m_)
      throw std::invalid_argument("fun: returned a residual vector of the wrong length");
    if (J != nullptr) {
      *J = jac_(x).cast<Matrix>();
      if (J->rows() != m_ || J->cols() != n_)
        throw std::invalid_argument("jac: returned a Jacobian of the wrong shape");
    }
  }

 private:
  py::function fun_, jac_;
  Index m_, n_;
};

}  // namespace

py::dict result_to_dict(const lm::Result& r) {
  py::dict d;
  d["x"] = r.x;
  d["residuals"] = r.residuals;
  d["cost"] = r.cost;
  d["optimality"] = r.optimality;
  d["status"] = static_cast<int>(r.status);
  d["message"] = std::string(lm::status_message(r.status));
  d["success"] = r.success();
  d["iterations"] = r.iterations;
  d["n_fev"] = r.n_fev;
  d["n_jev"] = r.n_jev;
  d["start_index"] = r.start_index;
  d["active"] = r.active;
  d["covariance"] = r.covariance;
  d["null_weight"] = r.null_weight;
  return d;
}

lm::Options make_options(const std::string& loss, double f_scale, double ftol, double xtol,
                         double gtol, int max_iter) {
  lm::Options o;
  o.loss = lm::parse_loss(loss);
  if (!(f_scale > 0)) throw std::invalid_argument("f_scale: must be positive");
  if (max_iter < 1) throw std::invalid_argument("max_iter: must be at least 1");
  o.f_scale = f_scale;
  o.ftol = ftol;
  o.xtol = xtol;
  o.gtol = gtol;
  o.max_iter = max_iter;
  return o;
}

void bind_lm(py::module_& m) {
  m.def(
      "least_squares",
      [](py::function fun, py::function jac, const Vector& x0, const Vector& lower,
         const Vector& upper, const std::vector<bool>& fixed, const Vector& weights, Index m_res,
         const std::string& loss, double f_scale, double ftol, double xtol, double gtol,
         int max_iter) {
        if (m_res < 0) throw std::invalid_argument("m: the number of residuals must be >= 0");
        const PyProblem problem(std::move(fun), std::move(jac), m_res, x0.size());
        const auto o = make_options(loss, f_scale, ftol, xtol, gtol, max_iter);
        return result_to_dict(lm::solve(problem, x0, lm::Bounds{lower, upper}, fixed, weights, o));
      },
      py::arg("fun"), py::arg("jac"), py::arg("x0"), py::arg("lower"), py::arg("upper"),
      py::arg("fixed"), py::arg("weights"), py::arg("m"), py::arg("loss") = "linear",
      py::arg("f_scale") = 1.0, py::arg("ftol") = 1e-10, py::arg("xtol") = 1e-10,
      py::arg("gtol") = 1e-10, py::arg("max_iter") = 200,
      "Levenberg-Marquardt on Python residual/Jacobian callables (GIL held while they run).");
  m.def(
      "loss_terms",
      [](const std::string& loss, double z) {
        double rho = 0, d1 = 0, d2 = 0;
        lm::loss_terms(lm::parse_loss(loss), z, rho, d1, d2);
        return py::make_tuple(rho, d1, d2);
      },
      py::arg("loss"), py::arg("z"), "rho(z), rho'(z), rho''(z) of a robust loss.");
}

}  // namespace energycore::bindings
