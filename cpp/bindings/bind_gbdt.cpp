// Bindings of the gradient-boosted trees (gbdt.hpp): training, batch and single-row prediction,
// model state as numpy arrays (for JSON files and pickling).
// Arrays arrive as C-contiguous numpy buffers (copied only when not already so); the GIL is
// released around training and batch prediction: the buffers belong to the call's arguments,
// which stay alive for the whole call, and the C++ code touches no Python object.
#include "common.hpp"

#include <optional>
#include <string>

#include "energycore/gbdt.hpp"

namespace energycore::bindings {

namespace {

using gbdt::Model;
using gbdt::ModelState;
using Int64Array = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

gbdt::Params make_params(const py::dict& d) {
  gbdt::Params p;
  for (const auto& [key, value] : d) {
    const auto k = py::cast<std::string>(key);
    try {
      if (k == "objective") p.objective = gbdt::parse_objective(py::cast<std::string>(value));
      else if (k == "growth") p.growth = gbdt::parse_growth(py::cast<std::string>(value));
      else if (k == "n_estimators") p.n_estimators = py::cast<int>(value);
      else if (k == "learning_rate") p.learning_rate = py::cast<double>(value);
      else if (k == "max_depth") p.max_depth = py::cast<int>(value);
      else if (k == "num_leaves") p.num_leaves = py::cast<int>(value);
      else if (k == "reg_lambda") p.lambda_l2 = py::cast<double>(value);
      else if (k == "min_child_weight") p.min_child_weight = py::cast<double>(value);
      else if (k == "min_child_samples") p.min_child_samples = py::cast<int>(value);
      else if (k == "min_split_gain") p.min_split_gain = py::cast<double>(value);
      else if (k == "subsample") p.subsample = py::cast<double>(value);
      else if (k == "colsample") p.colsample = py::cast<double>(value);
      else if (k == "max_bin") p.max_bin = py::cast<int>(value);
      else if (k == "huber_delta") p.huber_delta = py::cast<double>(value);
      else if (k == "pairs_per_sample") p.pairs_per_sample = py::cast<int>(value);
      else if (k == "early_stopping_rounds") p.early_stopping_rounds = py::cast<int>(value);
      else if (k == "monotone") p.monotone = py::cast<std::vector<int>>(value);
      else if (k == "seed") p.seed = py::cast<std::uint64_t>(value);
      else if (k == "n_threads") p.n_threads = py::cast<int>(value);
      else throw std::invalid_argument("params: unknown parameter '" + k + "'");
    } catch (const py::cast_error&) {
      throw std::invalid_argument("params: bad value for '" + k + "'");
    }
  }
  return p;
}

gbdt::DataView make_view(const DoubleArray& X, const DoubleArray& y,
                         const std::optional<DoubleArray>& w,
                         const std::optional<Int64Array>& group, const char* what) {
  const std::string name(what);
  if (X.ndim() != 2) throw std::invalid_argument(name + ": X must be 2-D");
  if (y.ndim() != 1 || y.shape(0) != X.shape(0))
    throw std::invalid_argument(name + ": y must be 1-D with one value per row of X");
  if (w && (w->ndim() != 1 || w->shape(0) != X.shape(0)))
    throw std::invalid_argument(name + ": sample_weight must have one value per row of X");
  if (group && (group->ndim() != 1 || group->shape(0) != X.shape(0)))
    throw std::invalid_argument(name + ": group must have one value per row of X");
  gbdt::DataView v;
  v.X = X.data();
  v.n_rows = X.shape(0);
  v.n_features = X.shape(1);
  v.y = y.data();
  v.w = w ? w->data() : nullptr;
  v.group = group ? group->data() : nullptr;
  return v;
}

template <class T>
py::array_t<T> to_array(const std::vector<T>& v) {
  return py::array_t<T>(static_cast<py::ssize_t>(v.size()), v.data());
}

py::dict state_to_dict(const Model& m) {
  const ModelState s = m.state();
  py::dict d;
  d["objective"] = std::string(gbdt::objective_name(s.objective));
  d["n_features"] = s.n_features;
  d["base_score"] = s.base_score;
  d["roots"] = to_array(s.roots);
  d["feature"] = to_array(s.feature);
  d["value"] = to_array(s.value);
  d["left"] = to_array(s.left);
  d["default_left"] = to_array(s.default_left);
  d["gain"] = to_array(s.gain);
  d["cover"] = to_array(s.cover);
  return d;
}

template <class T>
std::vector<T> from_array(const py::dict& d, const char* key) {
  if (!d.contains(key)) throw std::invalid_argument(std::string("model: missing '") + key + "'");
  try {
    const auto a = py::cast<py::array_t<T, py::array::c_style | py::array::forcecast>>(d[key]);
    if (a.ndim() != 1) throw std::invalid_argument(std::string("model: '") + key + "' must be 1-D");
    return std::vector<T>(a.data(), a.data() + a.size());
  } catch (const py::error_already_set&) {
    throw std::invalid_argument(std::string("model: bad values in '") + key + "'");
  } catch (const py::cast_error&) {
    throw std::invalid_argument(std::string("model: bad values in '") + key + "'");
  }
}

Model dict_to_model(const py::dict& d) {
  ModelState s;
  try {
    if (!d.contains("objective") || !d.contains("n_features") || !d.contains("base_score"))
      throw std::invalid_argument("model: missing objective, n_features or base_score");
    s.objective = gbdt::parse_objective(py::cast<std::string>(d["objective"]));
    s.n_features = py::cast<Index>(d["n_features"]);
    s.base_score = py::cast<double>(d["base_score"]);
  } catch (const py::cast_error&) {
    throw std::invalid_argument("model: bad objective, n_features or base_score");
  }
  s.roots = from_array<std::int64_t>(d, "roots");
  s.feature = from_array<std::int64_t>(d, "feature");
  s.value = from_array<double>(d, "value");
  s.left = from_array<std::int64_t>(d, "left");
  s.default_left = from_array<std::uint8_t>(d, "default_left");
  s.gain = from_array<double>(d, "gain");
  s.cover = from_array<double>(d, "cover");
  return Model(s);
}

const double* row_pointer(const Model& m, py::handle row, double* buf, DoubleArray& keep) {
  const Index p = m.n_features();
  PyObject* o = row.ptr();
  if (PyList_Check(o) || PyTuple_Check(o)) {
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(o);
    if (n != p)
      throw std::invalid_argument("row: expected " + std::to_string(p) + " values, got " +
                                  std::to_string(n));
    PyObject** items = PySequence_Fast_ITEMS(o);
    for (Py_ssize_t j = 0; j < n; ++j) {
      PyObject* it = items[j];
      const double v = PyFloat_CheckExact(it) ? PyFloat_AS_DOUBLE(it) : PyFloat_AsDouble(it);
      if (v == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        throw std::invalid_argument("row: value " + std::to_string(j) + " is not a number");
      }
      buf[j] = v;
    }
    return buf;
  }
  keep = DoubleArray::ensure(row);
  if (!keep) {
    PyErr_Clear();
    throw std::invalid_argument("row: expected a sequence of numbers");
  }
  if (keep.ndim() != 1 || keep.shape(0) != p)
    throw std::invalid_argument("row: expected a 1-D sequence of " + std::to_string(p) + " values");
  return keep.data();
}

}  // namespace

void bind_gbdt(py::module_& m) {
  py::class_<gbdt::CodedRows>(
      m, "GbdtCodedRows",
      "A fixed row set coded once (per-column ranks of distinct values) for fast repeated "
      "prediction by any model with the same feature count (immutable).")
      .def(py::init([](const DoubleArray& X) {
             if (X.ndim() != 2) throw std::invalid_argument("X: expected a 2-D array");
             const Index n = X.shape(0), p = X.shape(1);
             const double* x = X.data();
             py::gil_scoped_release release;
             return gbdt::CodedRows(x, n, p);
           }),
           py::arg("X"),
           "Codes the rows of X (n x p, NaN allowed); ValueError if a column holds more than "
           "256 distinct values (NaN counts as one).")
      .def_property_readonly("n_rows", &gbdt::CodedRows::n_rows)
      .def_property_readonly("n_features", &gbdt::CodedRows::n_features);

  py::class_<Model>(m, "GbdtModel", "A fitted gradient-boosting model (immutable, thread-safe).")
      .def_property_readonly("n_features", &Model::n_features)
      .def_property_readonly("n_trees", &Model::n_trees)
      .def_property_readonly("n_nodes", &Model::n_nodes)
      .def_property_readonly("base_score", &Model::base_score)
      .def_property_readonly(
          "objective", [](const Model& self) { return gbdt::objective_name(self.objective()); })
      .def(
          "predict",
          [](const Model& self, const DoubleArray& X, bool raw, int n_threads) {
            if (X.ndim() != 2 || X.shape(1) != self.n_features())
              throw std::invalid_argument("X: expected " + std::to_string(self.n_features()) +
                                          " columns");
            const Index n = X.shape(0);
            py::array_t<double> out(n);
            double* o = out.mutable_data();
            const double* x = X.data();
            {
              py::gil_scoped_release release;
              self.predict_raw(x, n, o, n_threads);
              if (!raw)
                for (Index i = 0; i < n; ++i) o[i] = self.transform(o[i]);
            }
            return out;
          },
          py::arg("X"), py::arg("raw") = false, py::arg("n_threads") = 0,
          "Predictions for the rows of X (n x n_features): transformed by the objective's link "
          "(probability for logistic) unless raw.")
      .def(
          "predict_coded",
          [](const Model& self, const gbdt::CodedRows& rows, bool raw, int n_threads) {
            if (rows.n_features() != self.n_features())
              throw std::invalid_argument("rows: " + std::to_string(rows.n_features()) +
                                          " features, the model has " +
                                          std::to_string(self.n_features()));
            const Index n = rows.n_rows();
            py::array_t<double> out(n);
            double* o = out.mutable_data();
            {
              py::gil_scoped_release release;
              self.predict_coded(rows, o, n_threads);
              if (!raw)
                for (Index i = 0; i < n; ++i) o[i] = self.transform(o[i]);
            }
            return out;
          },
          py::arg("rows"), py::arg("raw") = false, py::arg("n_threads") = 0,
          "Predictions for every row of a GbdtCodedRows set; equal to predict() on the rows it "
          "was coded from.")
      .def(
          "predict_row",
          [](const Model& self, py::handle row) {
            // Single row: the walk takes about a microsecond, less than releasing the GIL would.
            double buf[256];
            std::vector<double> big;
            double* b = buf;
            if (self.n_features() > 256) {
              big.resize(static_cast<size_t>(self.n_features()));
              b = big.data();
            }
            DoubleArray keep;
            const double* x = row_pointer(self, row, b, keep);
            return self.transform(self.predict_row(x));
          },
          py::arg("row"),
          "Prediction for one row (list, tuple or 1-D array of n_features numbers).")
      .def("importance", &Model::importance, py::arg("kind") = "gain",
           "Per-feature importance: 'gain' (sum of split gains) or 'split' (split count).")
      .def("state", &state_to_dict, "The model as plain arrays (what save/load write and read).")
      .def_static("from_state", &dict_to_model, py::arg("state"),
                  "A model from `state()`; ValueError naming the problem if it is not valid.")
      .def(py::pickle([](const Model& self) { return state_to_dict(self); },
                      [](const py::dict& d) { return dict_to_model(d); }));

  m.def(
      "gbdt_train",
      [](const DoubleArray& X, const DoubleArray& y, const std::optional<DoubleArray>& w,
         const std::optional<Int64Array>& group, const py::dict& params,
         const std::optional<DoubleArray>& X_val, const std::optional<DoubleArray>& y_val,
         const std::optional<DoubleArray>& w_val, const std::optional<Int64Array>& group_val) {
        const gbdt::Params p = make_params(params);
        const gbdt::DataView train = make_view(X, y, w, group, "X");
        std::optional<gbdt::DataView> valid;
        if (X_val) {
          if (!y_val) throw std::invalid_argument("eval_set: y is missing");
          valid = make_view(*X_val, *y_val, w_val, group_val, "eval_set");
        }
        std::vector<double> curve;
        Model model;
        {
          py::gil_scoped_release release;
          model = gbdt::train(train, valid ? &*valid : nullptr, p, &curve);
        }
        return py::make_tuple(std::move(model), curve);
      },
      py::arg("X"), py::arg("y"), py::arg("sample_weight") = py::none(),
      py::arg("group") = py::none(), py::arg("params") = py::dict(), py::arg("X_val") = py::none(),
      py::arg("y_val") = py::none(), py::arg("w_val") = py::none(),
      py::arg("group_val") = py::none(),
      "Train gradient-boosted trees; returns (model, validation metric per round).");
  m.def(
      "gbdt_pairwise_accuracy",
      [](const DoubleArray& score, const DoubleArray& y, const std::optional<Int64Array>& group) {
        if (score.ndim() != 1 || y.ndim() != 1 || y.shape(0) != score.shape(0) ||
            (group && (group->ndim() != 1 || group->shape(0) != score.shape(0))))
          throw std::invalid_argument("score, y, group: expected 1-D arrays of equal length");
        const double* s = score.data();
        const double* yy = y.data();
        const std::int64_t* g = group ? group->data() : nullptr;
        const Index n = score.shape(0);
        py::gil_scoped_release release;
        return gbdt::pairwise_accuracy(s, yy, g, n);
      },
      py::arg("score"), py::arg("y"), py::arg("group") = py::none(),
      "Fraction of correctly ordered pairs (ties one half) among pairs of rows of the same group "
      "with different labels; NaN without such pairs.");
}

}  // namespace energycore::bindings
