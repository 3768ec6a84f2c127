// Included first by every binding file: pybind11, numpy/Eigen conversion, and the rule that
// C++ exceptions reach Python as ValueError (std::invalid_argument, std::out_of_range,
// std::domain_error) or RuntimeError (everything else) with their message intact.
#pragma once

#include <pybind11/eigen.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

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

}  // namespace energycore::bindings

#include "energycore/lm.hpp"

namespace energycore::bindings {
/// Results and options of the LM solver, shared by every binding that fits something.
py::dict result_to_dict(const lm::Result& r);
lm::Options make_options(const std::string& loss, double f_scale, double ftol, double xtol,
                         double gtol, int max_iter);
}  // namespace energycore::bindings
