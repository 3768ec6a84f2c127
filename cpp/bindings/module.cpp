// The compiled module energycore._core: only a list of bind_* calls, one per capability.
#include "common.hpp"

#include <stdexcept>

PYBIND11_MODULE(_core, m) {
  m.doc() = "energycore C++ core (private: use the energycore package)";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const std::invalid_argument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const std::out_of_range& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const std::domain_error& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  energycore::bindings::bind_lm(m);
  energycore::bindings::bind_model(m);
  energycore::bindings::bind_space(m);
  energycore::bindings::bind_nvml(m);
  energycore::bindings::bind_cuda(m);
  energycore::bindings::bind_gbdt(m);
  energycore::bindings::bind_terms(m);
}
