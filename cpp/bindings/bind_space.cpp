// Bindings of the configuration-space engine and the Selector (space.hpp, selector.hpp):
// conversion and GIL only. Programs arrive as lists of (op, arg, value) triples compiled by
// energycore.constraints. The GIL is released around every walk over the space: the engine and
// selector are immutable C++ objects held by shared_ptr (kept alive by the Python wrapper for the
// whole call), all arguments are converted to C++ values before the release, and no Python object
// is touched.
#include "common.hpp"

#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "energycore/templates.hpp"
#include "energycore/selector.hpp"
#include "energycore/space.hpp"
#include "term_arg.hpp"

namespace energycore::bindings {

namespace {

using space::Engine;
using space::Limit;
using space::Program;
using space::Selection;
using space::Selector;

using Code = std::vector<std::tuple<int, int, double>>;

Program make_program(const Code& code, int n_slots) {
  std::vector<space::Instr> out;
  out.reserve(code.size());
  for (const auto& [op, arg, value] : code)
    out.push_back(space::Instr{static_cast<space::Op>(op), static_cast<std::int32_t>(arg), value});
  return Program(std::move(out), n_slots);
}

std::vector<Limit> make_limits(const std::vector<std::tuple<int, int, double>>& limits) {
  std::vector<Limit> out;
  out.reserve(limits.size());
  for (const auto& [slot, op, value] : limits) out.push_back(Limit{slot, op, value});
  return out;
}

/// A template name, or a term-sum model (term_arg.hpp) such as a DiscoveredModel.
using TemplateArg = std::variant<std::string, TermArg>;
using ModelArg = std::optional<std::pair<TemplateArg, std::vector<Vector>>>;

space::ModelSet make_models(const ModelArg& m, const char* quantity) {
  space::ModelSet s;
  if (!m) return s;
  if (const auto* name = std::get_if<std::string>(&m->first)) {
    s.tmpl = &model::get_template(*name);
  } else {
    s.owned = term_sum_of(std::get<TermArg>(m->first), quantity);
    s.tmpl = s.owned.get();
    for (size_t k = 0; k < m->second.size(); ++k)
      check_term_theta(*s.tmpl, m->second[k],
                       std::string(quantity) + " model (coefficient vector " + std::to_string(k) +
                           ")");
  }
  s.theta = m->second;
  return s;
}

using BoundArg = std::optional<std::tuple<std::vector<Matrix>, std::vector<double>, double>>;

void set_bound(space::ModelSet& m, const BoundArg& b, const char* what) {
  if (!b) return;
  if (!m.present()) throw std::invalid_argument(std::string(what) + ": a bound needs the model");
  const auto& [cov, var, z] = *b;
  if (cov.empty()) throw std::invalid_argument(std::string(what) + ": no covariance given");
  m.cov = cov;
  m.resid_var = var;
  m.z = z;
}

py::dict selection_dict(const Selection& r) {
  py::dict d;
  d["feasible"] = r.feasible;
  d["index"] = r.index;
  d["objective"] = r.objective;
  d["nearest"] = r.nearest;
  d["violation"] = r.violation;
  d["n_valid"] = r.n_valid;
  d["n_feasible"] = r.n_feasible;
  return d;
}

py::array_t<std::int64_t> index_array(const std::vector<Index>& v) {
  py::array_t<std::int64_t> out(static_cast<py::ssize_t>(v.size()));
  auto w = out.mutable_unchecked<1>();
  for (size_t i = 0; i < v.size(); ++i) w(static_cast<py::ssize_t>(i)) = v[i];
  return out;
}

}  // namespace

void bind_space(py::module_& m) {
  py::class_<Engine, std::shared_ptr<Engine>>(m, "SpaceEngine",
                                              "Enumeration and scoring engine of a ConfigSpace.")
      .def(py::init([](const std::vector<std::vector<double>>& axes,
                       const std::vector<double>& params, const std::vector<Code>& derived,
                       const std::vector<Code>& constraints, const std::vector<int>& feature_slot,
                       int key_axis, const ModelArg& energy, const ModelArg& ttft,
                       const ModelArg& tpot, int n_threads, const BoundArg& ttft_bound,
                       const BoundArg& tpot_bound,
                       const std::optional<py::array_t<std::int64_t, py::array::c_style |
                                                                         py::array::forcecast>>&
                           rows,
                       const BoundArg& energy_bound) {
             space::Spec spec;
             spec.axes = axes;
             spec.params = params;
             const int n_slots = static_cast<int>(axes.size() + params.size() + derived.size()) +
                                 space::kObjectives;
             for (const Code& c : derived) spec.derived.push_back(make_program(c, n_slots));
             for (const Code& c : constraints) spec.constraints.push_back(make_program(c, n_slots));
             if (feature_slot.size() != static_cast<size_t>(kFeatures))
               throw std::invalid_argument("feature_slot: expected 5 slots");
             for (int f = 0; f < kFeatures; ++f)
               spec.feature_slot[static_cast<size_t>(f)] = feature_slot[static_cast<size_t>(f)];
             spec.key_axis = key_axis;
             spec.energy = make_models(energy, "energy_j");
             spec.ttft = make_models(ttft, "ttft_s");
             spec.tpot = make_models(tpot, "tpot_s");
             set_bound(spec.ttft, ttft_bound, "ttft_bound");
             set_bound(spec.tpot, tpot_bound, "tpot_bound");
             set_bound(spec.energy, energy_bound, "energy_bound");
             if (rows) {
               if (rows->ndim() != 2 || rows->shape(1) != static_cast<py::ssize_t>(axes.size()))
                 throw std::invalid_argument("rows: expected an (n_points, " +
                                             std::to_string(axes.size()) + ") array of digits");
               if (rows->shape(0) == 0) throw std::invalid_argument("rows: no points");
               spec.rows.assign(rows->data(), rows->data() + rows->size());
             }
             py::gil_scoped_release release;  // the model table is built on worker threads
             return std::make_shared<Engine>(std::move(spec), n_threads);
           }),
           py::arg("axes"), py::arg("params"), py::arg("derived"), py::arg("constraints"),
           py::arg("feature_slot"), py::arg("key_axis"), py::arg("energy"), py::arg("ttft"),
           py::arg("tpot"), py::arg("n_threads") = 0, py::arg("ttft_bound") = py::none(),
           py::arg("tpot_bound") = py::none(), py::arg("rows") = py::none(),
           py::arg("energy_bound") = py::none())
      .def_property_readonly("size", &Engine::size)
      .def_property_readonly("n_slots", &Engine::n_slots)
      .def_property_readonly("uses_table", &Engine::uses_table)
      .def(
          "objective_slot",
          [](const Engine& e, int k) {
            if (k < 0 || k >= space::kObjectives) throw std::out_of_range("objective: bad code");
            return e.objective_slot(static_cast<space::Objective>(k));
          },
          py::arg("k"), "Slot of objective k (0 energy_j ... 5 power_w, 6-8 the latency upper bounds, 9 "
          "energy_upper_j, 10 power_upper_w).")
      .def(
          "count_valid",
          [](const Engine& e, const Code& where) {
            const Program w = make_program(where, e.n_slots());
            py::gil_scoped_release release;
            return e.count_valid(w);
          },
          py::arg("where"), "Number of points passing the constraints and `where`.")
      .def(
          "valid_indices",
          [](const Engine& e, Index limit, const Code& where) {
            const Program w = make_program(where, e.n_slots());
            std::vector<Index> out;
            {
              py::gil_scoped_release release;
              out = e.valid_indices(limit, w);
            }
            return index_array(out);
          },
          py::arg("limit"), py::arg("where"),
          "Indices of the first `limit` valid points, in enumeration order.")
      .def(
          "rows",
          [](const Engine& e,
             const py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>& idx,
             const std::optional<std::vector<double>>& params) {
            if (idx.ndim() != 1) throw std::invalid_argument("indices: must be one-dimensional");
            if (params && params->size() != e.spec().params.size())
              throw std::invalid_argument("params: expected " +
                                          std::to_string(e.spec().params.size()) + " values");
            const std::vector<Index> v(idx.data(), idx.data() + idx.size());
            RowMatrix out;
            {
              py::gil_scoped_release release;
              out = e.rows(v, params ? params->data() : nullptr);
            }
            return out;
          },
          py::arg("indices"), py::arg("params") = py::none(),
          "All slots of the given points (n x n_slots), scored; `params` overrides the fixed "
          "values (models then evaluated directly).")
      .def(
          "top_k",
          [](const Engine& e, int slot, bool maximize, Index k, const Code& where) {
            const Program w = make_program(where, e.n_slots());
            std::vector<Index> out;
            {
              py::gil_scoped_release release;
              out = e.top_k(slot, maximize, k, w);
            }
            return index_array(out);
          },
          py::arg("slot"), py::arg("maximize"), py::arg("k"), py::arg("where"),
          "Indices of the k valid points with the smallest (largest) slot value; ties by index.")
      .def(
          "argmin",
          [](const Engine& e, int slot, bool maximize,
             const std::vector<std::tuple<int, int, double>>& limits, const Code& where) {
            const Program w = make_program(where, e.n_slots());
            const std::vector<Limit> lim = make_limits(limits);
            Selection r;
            {
              py::gil_scoped_release release;
              r = e.argmin(slot, maximize, lim, w);
            }
            return selection_dict(r);
          },
          py::arg("slot"), py::arg("maximize"), py::arg("limits"), py::arg("where"),
          "Constrained argmin: best feasible point, or the nearest when none is (a dict).")
      .def(
          "pareto",
          [](const Engine& e, const std::vector<int>& slots, const std::vector<bool>& maximize,
             const Code& where) {
            const Program w = make_program(where, e.n_slots());
            std::vector<Index> out;
            {
              py::gil_scoped_release release;
              out = e.pareto(slots, maximize, w);
            }
            return index_array(out);
          },
          py::arg("slots"), py::arg("maximize"), py::arg("where"),
          "Indices of the valid points not dominated in the given slots.");

  py::class_<Selector, std::shared_ptr<Selector>>(m, "SpaceSelector",
                                                  "Precomputed workload-cell orderings of a space.")
      .def(py::init([](std::shared_ptr<Engine> engine, int slot, bool maximize, bool monotone,
                       int lin_slot, int lout_slot, std::vector<double> lin_edges,
                       std::vector<double> lout_edges) {
             py::gil_scoped_release release;  // builds the cell orderings on worker threads
             return std::make_shared<Selector>(std::move(engine), slot, maximize, monotone,
                                               lin_slot, lout_slot, std::move(lin_edges),
                                               std::move(lout_edges));
           }),
           py::arg("engine"), py::arg("slot"), py::arg("maximize"), py::arg("monotone"),
           py::arg("lin_slot"), py::arg("lout_slot"), py::arg("lin_edges"), py::arg("lout_edges"))
      .def_property_readonly("n_candidates", &Selector::n_candidates)
      .def(
          "best",
          [](const Selector& s, double input_len, double output_len,
             const std::vector<std::tuple<int, int, double>>& limits) {
            const std::vector<Limit> lim = make_limits(limits);
            Selection r;
            {
              py::gil_scoped_release release;
              r = s.best(input_len, output_len, lim);
            }
            return py::make_tuple(r.feasible, r.index, r.objective, r.nearest, r.violation);
          },
          py::arg("input_len"), py::arg("output_len"), py::arg("limits"),
          "(feasible, index, objective, nearest, violation) of the best point for a workload.");
}

}  // namespace energycore::bindings
