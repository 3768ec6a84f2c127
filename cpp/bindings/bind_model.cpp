// Bindings of the closed-form model templates and their fit (templates.hpp, fit.hpp).
// Arrays arrive as Eigen::Ref over the numpy buffers (no copy when C-contiguous float64); the
// GIL is released around every loop: the referenced arrays are owned by the caller's arguments,
// which stay alive for the whole call, and the C++ code touches no Python object.
#include "common.hpp"

#include <string>

#include "energycore/fit.hpp"
#include "energycore/parallel.hpp"

namespace energycore::bindings {

namespace {

using model::FitSpec;
using model::ModelTemplate;

void check_theta(const ModelTemplate& t, const Vector& theta, const char* what = "theta") {
  if (theta.size() != t.n_params())
    throw std::invalid_argument(std::string(what) + ": template '" + std::string(t.name()) +
                                "' has " + std::to_string(t.n_params()) + " coefficients, got " +
                                std::to_string(theta.size()));
}

FitSpec make_spec(const ModelTemplate& t, const std::vector<bool>& fixed,
                  const Vector& fixed_values, const Vector& lower, const Vector& upper,
                  const lm::Options& o, int n_starts, std::uint64_t seed, int n_threads) {
  const Index p = t.n_params();
  if (!fixed.empty() && static_cast<Index>(fixed.size()) != p)
    throw std::invalid_argument("fixed: expected " + std::to_string(p) + " flags");
  if (!fixed.empty() && fixed_values.size() != p)
    throw std::invalid_argument("fixed_values: expected " + std::to_string(p) + " values");
  if ((lower.size() && lower.size() != p) || (upper.size() && upper.size() != p))
    throw std::invalid_argument("bounds: expected " + std::to_string(p) + " values each");
  FitSpec s;
  s.fixed = fixed;
  s.fixed_values = fixed_values;
  s.lower = lower;
  s.upper = upper;
  s.lm = o;
  s.n_starts = n_starts;
  s.seed = seed;
  s.n_threads = resolve_threads(n_threads);
  return s;
}

}  // namespace

void bind_model(py::module_& m) {
  m.def("template_names", &model::template_names, "Names of the registered model templates.");
  m.def(
      "template_info",
      [](const std::string& name) {
        const ModelTemplate& t = model::get_template(name);
        py::list params;
        for (const auto& p : t.params()) {
          py::dict d;
          d["name"] = p.name;
          d["unit"] = p.unit;
          d["description"] = p.description;
          d["lower"] = p.lower;
          d["upper"] = p.upper;
          d["linear"] = p.linear;
          d["typical"] = p.typical;
          params.append(d);
        }
        py::dict out;
        out["name"] = std::string(t.name());
        out["quantity"] = std::string(t.quantity());
        out["params"] = params;
        out["phases"] = t.phase_names();
        return out;
      },
      py::arg("name"), "Metadata of a template: coefficients (name, unit, bounds), phases.");
  m.def(
      "template_value",
      [](const std::string& name, Eigen::Ref<const FeatureTable> X, const Vector& theta,
         int n_threads) {
        const ModelTemplate& t = model::get_template(name);
        check_theta(t, theta);
        Vector out(X.rows());
        {
          py::gil_scoped_release release;
          model::evaluate(t, X, theta, out, resolve_threads(n_threads));
        }
        return out;
      },
      py::arg("name"), py::arg("X"), py::arg("theta"), py::arg("n_threads") = 0,
      "Template value for each row of X (n x 5: tp, pp, batch, input_len, output_len).");
  m.def(
      "template_jacobian",
      [](const std::string& name, Eigen::Ref<const FeatureTable> X, const Vector& theta) {
        const ModelTemplate& t = model::get_template(name);
        check_theta(t, theta);
        Matrix out(X.rows(), t.n_params());
        {
          py::gil_scoped_release release;
          model::jacobian(t, X, theta, out);
        }
        return out;
      },
      py::arg("name"), py::arg("X"), py::arg("theta"),
      "d value / d theta for each row of X (n x n_params).");
  m.def(
      "template_phases",
      [](const std::string& name, Eigen::Ref<const FeatureTable> X, const Vector& theta) {
        const ModelTemplate& t = model::get_template(name);
        check_theta(t, theta);
        Matrix out(X.rows(), static_cast<Index>(t.phase_names().size()));
        {
          py::gil_scoped_release release;
          model::phases(t, X, theta, out);
        }
        return out;
      },
      py::arg("name"), py::arg("X"), py::arg("theta"), "The value split into phases (n x k).");
  m.def(
      "fit_template",
      [](const std::string& name, Eigen::Ref<const FeatureTable> X, Eigen::Ref<const Vector> y,
         const Vector& w, const std::vector<bool>& fixed, const Vector& fixed_values,
         const Vector& lower, const Vector& upper, const std::string& loss, double f_scale,
         double ftol, double xtol, double gtol, int max_iter, int n_starts, std::uint64_t seed,
         int n_threads, const Vector& x0) {
        const ModelTemplate& t = model::get_template(name);
        model::check_data(X, y, w);
        if (x0.size()) check_theta(t, x0, "x0");
        const FitSpec spec = make_spec(t, fixed, fixed_values, lower, upper,
                                       make_options(loss, f_scale, ftol, xtol, gtol, max_iter),
                                       n_starts, seed, n_threads);
        lm::Result r;
        std::vector<Vector> starts;
        {
          py::gil_scoped_release release;
          if (x0.size()) {
            const model::LogRatioProblem problem(t, X, y);
            Vector lo(t.n_params()), hi(t.n_params());
            for (Index j = 0; j < t.n_params(); ++j) {
              lo[j] = spec.lower.size() ? spec.lower[j] : t.params()[static_cast<size_t>(j)].lower;
              hi[j] = spec.upper.size() ? spec.upper[j] : t.params()[static_cast<size_t>(j)].upper;
            }
            Vector start = x0;
            for (Index j = 0; j < t.n_params(); ++j)
              if (!fixed.empty() && fixed[static_cast<size_t>(j)]) start[j] = fixed_values[j];
            r = lm::solve(problem, start, lm::Bounds{lo, hi}, spec.fixed, w, spec.lm);
          } else {
            r = model::fit(t, X, y, w, spec);
          }
        }
        return result_to_dict(r);
      },
      py::arg("name"), py::arg("X"), py::arg("y"), py::arg("w"), py::arg("fixed"),
      py::arg("fixed_values"), py::arg("lower"), py::arg("upper"), py::arg("loss") = "soft_l1",
      py::arg("f_scale") = 0.1, py::arg("ftol") = 1e-8, py::arg("xtol") = 1e-8,
      py::arg("gtol") = 1e-8, py::arg("max_iter") = 200, py::arg("n_starts") = 8,
      py::arg("seed") = 0, py::arg("n_threads") = 0, py::arg("x0") = Vector(),
      "Fit a template to y > 0 by log-ratio residuals; x0 given: one start from x0, else "
      "multi-start from NNLS-based starting points.");
  m.def(
      "template_identify",
      [](const std::string& name, Eigen::Ref<const FeatureTable> X, const Vector& w,
         const std::vector<bool>& fixed, const Vector& values, bool reduce, double rtol) {
        const ModelTemplate& t = model::get_template(name);
        model::Identification r;
        {
          py::gil_scoped_release release;
          r = model::identify(t, X, w, fixed, values, reduce, rtol);
        }
        py::dict out;
        out["pinned"] = r.pinned;
        out["full_rank"] = r.full_rank;
        out["lo"] = r.lo;
        out["hi"] = r.hi;
        out["n_rows"] = r.n_rows;
        return out;
      },
      py::arg("name"), py::arg("X"), py::arg("w"), py::arg("fixed"), py::arg("values"),
      py::arg("reduce"), py::arg("rtol"),
      "What the rows of positive weight identify: coefficients with no effect (pinned); with "
      "reduce, whether the log-scaled Jacobian of the others certainly has full rank "
      "(full_rank; else a collinearity is possible); feature ranges (lo, hi); n_rows.");
  m.def(
      "template_residuals",
      [](const std::string& name, Eigen::Ref<const FeatureTable> X, Eigen::Ref<const Vector> y,
         const Vector& w, const Vector& theta, const Vector& percentiles, double screen_k) {
        const ModelTemplate& t = model::get_template(name);
        check_theta(t, theta);
        model::ResidualSummary r;
        {
          py::gil_scoped_release release;
          r = model::residual_summary(t, X, y, w, theta, percentiles, screen_k);
        }
        py::object q = py::none();
        if (r.quantiles.size()) q = py::cast(r.quantiles);
        return py::make_tuple(py::cast(r.log_ratio), q, r.n_over);
      },
      py::arg("name"), py::arg("X"), py::arg("y"), py::arg("w"), py::arg("theta"),
      py::arg("percentiles"), py::arg("screen_k") = 0.0,
      "(log(max(f, 1e-300) / y) per row, quantiles of log(y / f) at the percentiles over the "
      "rows of positive weight or None when fewer than two, the rows of positive weight more "
      "than screen_k robust sigmas from the median or -1 when not computed).");
  m.def(
      "features_valid",
      [](Eigen::Ref<const FeatureTable> X, const Vector& limit) {
        py::gil_scoped_release release;
        return model::features_valid(X, limit);
      },
      py::arg("X"), py::arg("limit"),
      "Whether every row of an (n, 5) feature table passes the feature checks (finite; tp, pp "
      "integers; tp, pp, batch > 0; lengths >= 0; at most limit per column).");
  m.def(
      "bootstrap_template",
      [](const std::string& name, Eigen::Ref<const FeatureTable> X, Eigen::Ref<const Vector> y,
         const Vector& w, const Vector& theta0, const std::vector<bool>& fixed,
         const Vector& fixed_values, const Vector& lower, const Vector& upper,
         const std::string& loss, double f_scale, double ftol, double xtol, double gtol,
         int max_iter, int n_boot, std::uint64_t seed, int n_threads) {
        const ModelTemplate& t = model::get_template(name);
        check_theta(t, theta0);
        if (n_boot < 1)
          throw std::invalid_argument("n: at least one bootstrap replicate is needed");
        model::check_data(X, y, w);
        const FitSpec spec =
            make_spec(t, fixed, fixed_values, lower, upper,
                      make_options(loss, f_scale, ftol, xtol, gtol, max_iter), 1, seed, n_threads);
        Matrix out;
        {
          py::gil_scoped_release release;
          out = model::bootstrap(t, X, y, w, theta0, spec, n_boot, seed);
        }
        return out;
      },
      py::arg("name"), py::arg("X"), py::arg("y"), py::arg("w"), py::arg("theta0"),
      py::arg("fixed"), py::arg("fixed_values"), py::arg("lower"), py::arg("upper"),
      py::arg("loss") = "soft_l1", py::arg("f_scale") = 0.1, py::arg("ftol") = 1e-8,
      py::arg("xtol") = 1e-8, py::arg("gtol") = 1e-8, py::arg("max_iter") = 200,
      py::arg("n") = 1000, py::arg("seed") = 0, py::arg("n_threads") = 0,
      "n refits on resampled rows, all in one call across threads (n x n_params; NaN rows "
      "failed).");
  m.def(
      "fit_template_batch",
      [](const std::string& name, const std::vector<DoubleArray>& Xs,
         const std::vector<DoubleArray>& ys, const std::vector<DoubleArray>& ws,
         const std::vector<std::vector<bool>>& fixed, const std::vector<DoubleArray>& fixed_values,
         const std::string& loss, double f_scale, double ftol, double xtol, double gtol,
         int max_iter, int n_starts, std::uint64_t seed, int n_threads) {
        const ModelTemplate& t = model::get_template(name);
        const size_t k = Xs.size();
        if (ys.size() != k || ws.size() != k || fixed.size() != k || fixed_values.size() != k)
          throw std::invalid_argument("groups: Xs, ys, ws, fixed, fixed_values differ in length");
        const lm::Options o = make_options(loss, f_scale, ftol, xtol, gtol, max_iter);
        // Views of the numpy buffers, made while the GIL is held; the arrays are owned by the
        // argument vectors, alive for the whole call.
        std::vector<Eigen::Map<const FeatureTable>> X;
        std::vector<Eigen::Map<const Vector>> y;
        std::vector<Vector> w, fv;
        std::vector<FitSpec> specs;
        for (size_t g = 0; g < k; ++g) {
          const auto& a = Xs[g];
          if (a.ndim() != 2 || a.shape(1) != kFeatures)
            throw std::invalid_argument("Xs[" + std::to_string(g) + "]: expected shape (n, 5)");
          if (a.shape(0) < 1) throw std::invalid_argument("Xs[" + std::to_string(g) + "]: no rows");
          if (ws[g].ndim() != 1 || fixed_values[g].ndim() != 1)
            throw std::invalid_argument("ws, fixed_values[" + std::to_string(g) + "]: must be 1-D");
          if (ys[g].ndim() != 1 || ys[g].shape(0) != a.shape(0))
            throw std::invalid_argument("ys[" + std::to_string(g) + "]: length differs from X");
          X.emplace_back(a.data(), a.shape(0), kFeatures);
          y.emplace_back(ys[g].data(), ys[g].shape(0));
          w.emplace_back(Eigen::Map<const Vector>(ws[g].data(), ws[g].size()));
          fv.emplace_back(Eigen::Map<const Vector>(fixed_values[g].data(), fixed_values[g].size()));
          if (w.back().size() && w.back().size() != a.shape(0))
            throw std::invalid_argument("ws[" + std::to_string(g) + "]: length differs from X");
          specs.push_back(
              make_spec(t, fixed[g], fv.back(), Vector(), Vector(), o, n_starts, seed, 1));
        }
        std::vector<lm::Result> results(k);
        {
          py::gil_scoped_release release;
          parallel_for(static_cast<Index>(k), resolve_threads(n_threads), [&](Index g) {
            const auto gi = static_cast<size_t>(g);
            results[gi] = model::fit(t, X[gi], y[gi], w[gi], specs[gi]);
          });
        }
        py::list out;
        for (const auto& r : results) out.append(result_to_dict(r));
        return out;
      },
      py::arg("name"), py::arg("Xs"), py::arg("ys"), py::arg("ws"), py::arg("fixed"),
      py::arg("fixed_values"), py::arg("loss") = "soft_l1", py::arg("f_scale") = 0.1,
      py::arg("ftol") = 1e-8, py::arg("xtol") = 1e-8, py::arg("gtol") = 1e-8,
      py::arg("max_iter") = 200, py::arg("n_starts") = 8, py::arg("seed") = 0,
      py::arg("n_threads") = 0,
      "Fit independent problems (one per group) across threads; a list of result dicts.");
  m.def(
      "fit_template_arrays",
      [](const std::string& name, const DoubleArray& X, const DoubleArray& y, const DoubleArray& w,
         const std::vector<bool>& fixed, const Vector& fixed_values, const std::string& loss,
         double f_scale, double ftol, double xtol, double gtol, int max_iter, int n_starts,
         std::uint64_t seed, int n_threads, bool pin_unidentified, bool covariance) {
        const ModelTemplate& t = model::get_template(name);
        if (X.ndim() != 3 || X.shape(2) != kFeatures)
          throw std::invalid_argument("X: expected shape (n_problems, n_rows, 5), got " +
                                      std::to_string(X.ndim()) + " dimension(s)");
        const Index k = X.shape(0), n = X.shape(1);
        if (k < 1) throw std::invalid_argument("X: no problems to fit");
        if (n < 1) throw std::invalid_argument("X: no rows to fit");
        if (y.ndim() != 2 || y.shape(0) != k || y.shape(1) != n)
          throw std::invalid_argument("y: expected shape (" + std::to_string(k) + ", " +
                                      std::to_string(n) + ")");
        if (w.size() != 0 && (w.ndim() != 2 || w.shape(0) != k || w.shape(1) != n))
          throw std::invalid_argument("sample_weight: expected shape (" + std::to_string(k) +
                                      ", " + std::to_string(n) + ") or none");
        const FitSpec spec =
            make_spec(t, fixed, fixed_values, Vector(), Vector(),
                      make_options(loss, f_scale, ftol, xtol, gtol, max_iter), n_starts, seed,
                      n_threads);
        const Index p = t.n_params();
        // Views of the numpy buffers (C-contiguous float64: DoubleArray forces it), made while
        // the GIL is held; the arrays are owned by the arguments, alive for the whole call.
        const Eigen::Map<const FeatureTable> Xm(X.data(), k * n, kFeatures);
        const Eigen::Map<const Vector> ym(y.data(), k * n);
        const Vector wv = w.size() ? Vector(Eigen::Map<const Vector>(w.data(), k * n)) : Vector();
        py::array_t<double> coef({k, p}), cost(k), optimality(k), null_weight({k, p});
        py::array_t<int> status(k), iterations(k), n_fev(k), n_jev(k), start_index(k),
            active({k, p});
        py::array_t<std::uint8_t> pinned({k, p});
        py::array_t<double> cov = covariance ? py::array_t<double>({k, p, p})
                                             : py::array_t<double>(std::vector<Index>{0, p, p});
        model::BatchOutput out;
        out.coef = coef.mutable_data();
        out.cost = cost.mutable_data();
        out.optimality = optimality.mutable_data();
        out.status = status.mutable_data();
        out.iterations = iterations.mutable_data();
        out.n_fev = n_fev.mutable_data();
        out.n_jev = n_jev.mutable_data();
        out.start_index = start_index.mutable_data();
        out.active = active.mutable_data();
        out.null_weight = null_weight.mutable_data();
        out.pinned = pinned.mutable_data();
        out.covariance = covariance ? cov.mutable_data() : nullptr;
        {
          py::gil_scoped_release release;
          model::fit_batch(t, Xm, ym, wv, k, spec, pin_unidentified, out);
        }
        py::dict d;
        d["x"] = coef;
        d["cost"] = cost;
        d["optimality"] = optimality;
        d["status"] = status;
        d["iterations"] = iterations;
        d["n_fev"] = n_fev;
        d["n_jev"] = n_jev;
        d["start_index"] = start_index;
        d["active"] = active;
        d["null_weight"] = null_weight;
        d["pinned"] = pinned.attr("astype")("bool");
        d["covariance"] = cov;
        py::dict messages;  // status -> message, for the result objects built from one row
        for (const lm::Status st : {lm::Status::failed, lm::Status::max_iterations,
                                    lm::Status::gtol, lm::Status::ftol, lm::Status::xtol})
          messages[py::int_(static_cast<int>(st))] = std::string(lm::status_message(st));
        d["messages"] = messages;
        return d;
      },
      py::arg("name"), py::arg("X"), py::arg("y"), py::arg("w"), py::arg("fixed"),
      py::arg("fixed_values"), py::arg("loss") = "soft_l1", py::arg("f_scale") = 0.1,
      py::arg("ftol") = 1e-8, py::arg("xtol") = 1e-8, py::arg("gtol") = 1e-8,
      py::arg("max_iter") = 200, py::arg("n_starts") = 8, py::arg("seed") = 0,
      py::arg("n_threads") = 0, py::arg("pin_unidentified") = true, py::arg("covariance") = true,
      "Fit k independent problems of n rows (X: k x n x 5, y: k x n, w: k x n or empty) in one "
      "call across threads; a dict of arrays with one row per problem.");
  m.def(
      "nnls",
      [](const Matrix& A, const Vector& b) {
        if (A.rows() != b.size()) throw std::invalid_argument("b: length differs from A's rows");
        return model::nnls(A, b);
      },
      py::arg("A"), py::arg("b"), "Lawson-Hanson non-negative least squares.");
}

}  // namespace energycore::bindings
