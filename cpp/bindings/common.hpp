// Included first by every binding file: pybind11, numpy/Eigen conversion, and the rule that
// C++ exceptions reach Python as ValueError (std::invalid_argument, std::out_of_range,
// std::domain_error) or RuntimeError (everything else) with their message intact.
#pragma once

#include <pybind11/eigen.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <exception>
#include <string>

#include "energycore/types.hpp"

namespace py = pybind11;

namespace energycore::bindings {

/// A numpy float64 array, C-contiguous, converted (copied) only when it is not already so.
using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

void bind_lm(py::module_& m);
void bind_model(py::module_& m);
void bind_space(py::module_& m);
void bind_nvml(py::module_& m);
void bind_cuda(py::module_& m);
void bind_gbdt(py::module_& m);
void bind_terms(py::module_& m);

}  // namespace energycore::bindings

#include "energycore/lm.hpp"

namespace energycore::bindings {
/// Registers `_core.<name>` (a RuntimeError) for the C++ error type E of a run-time-loaded
/// library (an energycore::ApiError), raised with args (code, function, message) so that the
/// Python layer can map the library's return code to its own exception classes.
template <class E>
void register_api_error(py::module_& m, const char* name) {
  // The module attribute keeps the exception type alive as long as the module.
  static PyObject* type = nullptr;
  type = py::exception<E>(m, name, PyExc_RuntimeError).ptr();
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const E& e) {
      const py::tuple args = py::make_tuple(e.code(), e.function(), std::string(e.what()));
      PyErr_SetObject(type, args.ptr());
    }
  });
}

/// Results and options of the LM solver, shared by every binding that fits something.
py::dict result_to_dict(const lm::Result& r);
lm::Options make_options(const std::string& loss, double f_scale, double ftol, double xtol,
                         double gtol, int max_iter);
}  // namespace energycore::bindings
