// Bindings of NVML (nvml.hpp): the session, devices, counters and the power-sampler thread.
// NVML failures reach Python as _core.NvmlError with args (code, function, message); the
// energycore.measure package turns them into NoGPUError and the NVMLError family. Every call
// that enters NVML or joins the sampler thread releases the GIL: the C++ objects are kept alive
// by the Python wrappers for the whole call and touch no Python object.
#include "common.hpp"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "energycore/nvml.hpp"

namespace energycore::bindings {

namespace {

using nvml::PowerSampler;
using nvml::Session;

py::array_t<double> to_array(const std::vector<double>& v) {
  py::array_t<double> a(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), a.mutable_data());
  return a;
}

}  // namespace

void bind_nvml(py::module_& m) {
  register_api_error<nvml::Error>(m, "NvmlError");

  m.def("monotonic_s", &nvml::monotonic_s,
        "Seconds on the monotonic clock used by the power sampler.");

  py::class_<Session, std::shared_ptr<Session>>(m, "NvmlSession",
                                                "NVML opened with dlopen and initialised.")
      .def(py::init([](const std::string& path) {
             py::gil_scoped_release release;  // dlopen and nvmlInit may take a while
             return std::make_shared<Session>(path);
           }),
           py::arg("path") = "")
      .def_property_readonly("path", &Session::path)
      .def("physical_count", &Session::physical_count, py::call_guard<py::gil_scoped_release>())
      .def(
          "devices",
          [](const Session& s, std::optional<std::string> visible) {
            std::vector<nvml::DeviceInfo> devs;
            {
              py::gil_scoped_release release;
              devs = s.devices(visible.has_value(), visible.value_or(""));
            }
            py::list out;
            for (const auto& d : devs) {
              py::dict r;
              r["index"] = d.index;
              r["uuid"] = d.uuid;
              r["name"] = d.name;
              r["is_mig"] = d.is_mig;
              r["physical"] = d.physical;
              r["physical_uuid"] = d.physical_uuid;
              out.append(r);
            }
            return out;
          },
          py::arg("visible") = py::none(),
          "Visible devices under a CUDA_VISIBLE_DEVICES value (None: all GPUs).")
      .def("energy_mj", &Session::energy_mj, py::arg("physical"),
           py::call_guard<py::gil_scoped_release>(), "Total-energy counter, mJ.")
      .def("power_mw", &Session::power_mw, py::arg("physical"),
           py::call_guard<py::gil_scoped_release>(), "Instant power, mW.")
      .def("counter_supported", &Session::counter_supported, py::arg("physical"),
           py::call_guard<py::gil_scoped_release>())
      .def("energy_snapshot", &Session::energy_snapshot, py::arg("physical"),
           py::call_guard<py::gil_scoped_release>(),
           "(monotonic time, energy counters in mJ) of several GPUs, read together.");

  py::class_<PowerSampler, std::shared_ptr<PowerSampler>>(
      m, "PowerSampler", "A thread sampling the power of some GPUs into a timeline.")
      .def(py::init<std::shared_ptr<const Session>, std::vector<int>, double>(), py::arg("session"),
           py::arg("physical"), py::arg("period_s"))
      .def("start", &PowerSampler::start, py::call_guard<py::gil_scoped_release>())
      .def("stop", &PowerSampler::stop, py::call_guard<py::gil_scoped_release>())
      .def("sample_now", &PowerSampler::sample_now, py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("running", &PowerSampler::running,
                             "Whether the thread is sampling (false once stopped or failed).")
      .def_property_readonly(
          "error",
          [](const PowerSampler& s) -> py::object {
            if (!s.failed()) return py::none();
            const nvml::Error e = s.error();
            return py::make_tuple(e.code(), e.function(), std::string(e.what()));
          },
          "None, or (code, function, message) of the error that stopped sampling.")
      .def_property_readonly("period_s", &PowerSampler::period_s)
      .def_property_readonly("n_gpus", &PowerSampler::n_gpus)
      .def("size", &PowerSampler::size)
      .def("count", &PowerSampler::count, py::arg("t0"), py::arg("t1"))
      .def(
          "integrate",
          [](const PowerSampler& s, double t0, double t1) {
            std::vector<double> e;
            {
              py::gil_scoped_release release;
              e = s.integrate(t0, t1);
            }
            return to_array(e);
          },
          py::arg("t0"), py::arg("t1"), "Energy per GPU (J) between t0 and t1 (trapezoids).")
      .def(
          "timeline",
          [](const PowerSampler& s, double t0, double t1) {
            nvml::Timeline tl;
            {
              py::gil_scoped_release release;
              tl = s.timeline(t0, t1);
            }
            py::array_t<double> p(
                {static_cast<py::ssize_t>(tl.t.size()), static_cast<py::ssize_t>(tl.n_gpus)});
            std::copy(tl.power_w.begin(), tl.power_w.end(), p.mutable_data());
            return py::make_tuple(to_array(tl.t), p);
          },
          py::arg("t0"), py::arg("t1"), "Samples in [t0, t1]: (times, power W per GPU).")
      .def("discard_before", &PowerSampler::discard_before, py::arg("t"));
}

}  // namespace energycore::bindings
