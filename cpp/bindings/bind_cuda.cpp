// Bindings of CUDA driver events (cuda_events.hpp). Failures reach Python as _core.CudaError
// with args (code, function, message). The GIL is released around driver calls (recording and
// waiting for events): the C++ objects are owned by their Python wrappers during the call.
#include "common.hpp"

#include <memory>
#include <string>

#include "energycore/cuda_events.hpp"

namespace energycore::bindings {

void bind_cuda(py::module_& m) {
  register_api_error<cuda::Error>(m, "CudaError");

  py::class_<cuda::Runtime, std::shared_ptr<cuda::Runtime>>(
      m, "CudaRuntime", "The CUDA driver opened with dlopen and initialised (cuInit).")
      .def(py::init([](const std::string& path) {
             py::gil_scoped_release release;
             return std::make_shared<cuda::Runtime>(path);
           }),
           py::arg("path") = "")
      .def_property_readonly("path", &cuda::Runtime::path);

  py::class_<cuda::EventTimer, std::shared_ptr<cuda::EventTimer>>(
      m, "CudaEventTimer", "Two CUDA events timing work on a caller's stream.")
      .def(py::init<std::shared_ptr<const cuda::Runtime>>(), py::arg("runtime"))
      .def("start", &cuda::EventTimer::start, py::arg("stream"),
           py::call_guard<py::gil_scoped_release>())
      .def("stop", &cuda::EventTimer::stop, py::arg("stream"),
           py::call_guard<py::gil_scoped_release>())
      .def("elapsed_s", &cuda::EventTimer::elapsed_s, py::call_guard<py::gil_scoped_release>());
}

}  // namespace energycore::bindings
