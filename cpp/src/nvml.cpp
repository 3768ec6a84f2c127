// NVML session: the library opened at run time, devices, counters and instant power.
#include "energycore/nvml.hpp"

#include <chrono>
#include <cstdlib>
#include <utility>

namespace energycore::nvml {

namespace {

// The NVML declarations energycore needs (nvml.h is not required at build time).
using nvmlDevice_t = void*;
using nvmlReturn_t = int;

// nvmlValue_t and nvmlFieldValue_t, laid out as in nvml.h.
union Value {
  double dVal;
  unsigned int uiVal;
  unsigned long ulVal;
  unsigned long long ullVal;
  long long sllVal;
  int siVal;
  unsigned short usVal;
};
struct FieldValue {
  unsigned int fieldId;
  unsigned int scopeId;
  long long timestamp;
  long long latencyUsec;
  int valueType;
  nvmlReturn_t nvmlReturn;
  Value value;
};
constexpr unsigned kFieldPowerInstant = 186;  // NVML_FI_DEV_POWER_INSTANT, milliwatts
constexpr unsigned kUuidLength = 96;          // NVML_DEVICE_UUID_V2_BUFFER_SIZE
constexpr unsigned kNameLength = 96;          // NVML_DEVICE_NAME_V2_BUFFER_SIZE

double value_as_double(const FieldValue& f) {
  switch (f.valueType) {
    case 0:
      return f.value.dVal;
    case 1:
      return static_cast<double>(f.value.uiVal);
    case 2:
      return static_cast<double>(f.value.ulVal);
    case 3:
      return static_cast<double>(f.value.ullVal);
    case 4:
      return static_cast<double>(f.value.sllVal);
    case 5:
      return static_cast<double>(f.value.siVal);
    case 6:
      return static_cast<double>(f.value.usVal);
    default:
      return -1.0;
  }
}

std::string default_path() {
  const char* env = std::getenv("ENERGYCORE_NVML_LIBRARY");
  return (env && *env) ? std::string(env) : std::string("libnvidia-ml.so.1");
}

}  // namespace

double monotonic_s() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

/// The dlopen handle (closed in the destructor) and the NVML entry points resolved from it.
class Library {
 public:
  explicit Library(const std::string& path) : lib_(path) {
    if (!lib_.ok())
      throw Error(kLibraryNotFound, "dlopen",
                  "could not load the NVML library '" + path + "': " + lib_.error() +
                      " (is the NVIDIA driver installed? ENERGYCORE_NVML_LIBRARY sets the path)");
    required(init, "nvmlInit_v2");
    required(shutdown, "nvmlShutdown");
    required(error_string, "nvmlErrorString");
    required(get_count, "nvmlDeviceGetCount_v2");
    required(by_index, "nvmlDeviceGetHandleByIndex_v2");
    required(get_uuid, "nvmlDeviceGetUUID");
    required(get_name, "nvmlDeviceGetName");
    optional(total_energy, "nvmlDeviceGetTotalEnergyConsumption");
    optional(power_usage, "nvmlDeviceGetPowerUsage");
    optional(field_values, "nvmlDeviceGetFieldValues");
    optional(is_mig, "nvmlDeviceIsMigDeviceHandle");
    optional(mig_parent, "nvmlDeviceGetDeviceHandleFromMigDeviceHandle");
    optional(mig_by_index, "nvmlDeviceGetMigDeviceHandleByIndex");
    optional(mig_max, "nvmlDeviceGetMaxMigDeviceCount");
  }
  /// Throws Error for a failed call, with NVML's own description.
  void check(nvmlReturn_t r, const char* function) const {
    if (r == kSuccess) return;
    const char* text = error_string ? error_string(r) : nullptr;
    throw Error(r, function,
                std::string(function) + " failed: " + (text ? text : "unknown error") +
                    " (NVML error " + std::to_string(r) + ")");
  }
  template <class F>
  void need(F* f, const char* function) const {
    if (!f)
      throw Error(kFunctionNotFound, function,
                  std::string(function) + " is not in " + lib_.path() + " (driver too old?)");
  }

  nvmlReturn_t (*init)() = nullptr;
  nvmlReturn_t (*shutdown)() = nullptr;
  const char* (*error_string)(nvmlReturn_t) = nullptr;
  nvmlReturn_t (*get_count)(unsigned*) = nullptr;
  nvmlReturn_t (*by_index)(unsigned, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*get_uuid)(nvmlDevice_t, char*, unsigned) = nullptr;
  nvmlReturn_t (*get_name)(nvmlDevice_t, char*, unsigned) = nullptr;
  nvmlReturn_t (*total_energy)(nvmlDevice_t, unsigned long long*) = nullptr;
  nvmlReturn_t (*power_usage)(nvmlDevice_t, unsigned*) = nullptr;
  nvmlReturn_t (*field_values)(nvmlDevice_t, int, FieldValue*) = nullptr;
  nvmlReturn_t (*is_mig)(nvmlDevice_t, unsigned*) = nullptr;
  nvmlReturn_t (*mig_parent)(nvmlDevice_t, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*mig_by_index)(nvmlDevice_t, unsigned, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*mig_max)(nvmlDevice_t, unsigned*) = nullptr;

 private:
  template <class F>
  void required(F*& f, const char* name) {
    if (!lib_.resolve(f, name))
      throw Error(kFunctionNotFound, "dlsym",
                  "'" + lib_.path() + "' is not a usable NVML library: " + name + " is missing");
  }
  template <class F>
  void optional(F*& f, const char* name) {
    lib_.resolve(f, name);
  }

  SharedLibrary lib_;
};

Session::Session(const std::string& path) : path_(path.empty() ? default_path() : path) {
  lib_ = std::make_unique<Library>(path_);
  lib_->check(lib_->init(), "nvmlInit_v2");
}

Session::~Session() {
  if (lib_) lib_->shutdown();  // errors at shutdown cannot be reported from a destructor
}

int Session::physical_count() const {
  unsigned n = 0;
  lib_->check(lib_->get_count(&n), "nvmlDeviceGetCount_v2");
  return static_cast<int>(n);
}

void* Session::handle(int physical) const {
  nvmlDevice_t h = nullptr;
  lib_->check(lib_->by_index(static_cast<unsigned>(physical), &h), "nvmlDeviceGetHandleByIndex_v2");
  return h;
}

namespace {

struct Candidate {
  std::string uuid;
  bool is_mig;
  int physical;
};

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

std::string trim(const std::string& s) {
  const auto a = s.find_first_not_of(" \t");
  if (a == std::string::npos) return "";
  const auto b = s.find_last_not_of(" \t");
  return s.substr(a, b - a + 1);
}

}  // namespace

std::vector<DeviceInfo> Session::devices(bool has_visible, const std::string& visible) const {
  const int n = physical_count();
  std::vector<std::string> uuids(n), names(n);
  std::vector<Candidate> migs;
  for (int i = 0; i < n; ++i) {
    nvmlDevice_t h = handle(i);
    char buf[kUuidLength] = {0};
    lib_->check(lib_->get_uuid(h, buf, kUuidLength), "nvmlDeviceGetUUID");
    uuids[i] = buf;
    char nb[kNameLength] = {0};
    lib_->check(lib_->get_name(h, nb, kNameLength), "nvmlDeviceGetName");
    names[i] = nb;
    if (lib_->mig_max && lib_->mig_by_index) {
      unsigned count = 0;
      if (lib_->mig_max(h, &count) != kSuccess) count = 0;  // not a MIG-capable GPU
      for (unsigned k = 0; k < count; ++k) {
        nvmlDevice_t mh = nullptr;
        if (lib_->mig_by_index(h, k, &mh) != kSuccess) continue;  // slot not in use
        char mb[kUuidLength] = {0};
        lib_->check(lib_->get_uuid(mh, mb, kUuidLength), "nvmlDeviceGetUUID");
        migs.push_back({mb, true, i});
      }
    }
  }
  auto make = [&](int index, const std::string& uuid, bool mig, int physical) {
    DeviceInfo d;
    d.index = index;
    d.uuid = uuid;
    d.name = names[physical];
    d.is_mig = mig;
    d.physical = physical;
    d.physical_uuid = uuids[physical];
    return d;
  };
  std::vector<DeviceInfo> out;
  if (!has_visible) {
    for (int i = 0; i < n; ++i) out.push_back(make(i, uuids[i], false, i));
    return out;
  }
  // CUDA's rule: entries are read in order and the list ends at the first invalid entry.
  std::size_t pos = 0;
  while (pos <= visible.size()) {
    const std::size_t comma = visible.find(',', pos);
    const std::string tok =
        trim(visible.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
    pos = comma == std::string::npos ? visible.size() + 1 : comma + 1;
    if (tok.empty()) break;
    const int index = static_cast<int>(out.size());
    if (starts_with(tok, "GPU-") || starts_with(tok, "MIG-")) {
      std::vector<Candidate> hits;
      for (int i = 0; i < n; ++i)
        if (starts_with(uuids[i], tok)) hits.push_back({uuids[i], false, i});
      for (const auto& m : migs)
        if (starts_with(m.uuid, tok)) hits.push_back(m);
      if (hits.size() != 1) break;  // unknown or ambiguous prefix
      out.push_back(make(index, hits[0].uuid, hits[0].is_mig, hits[0].physical));
    } else {
      char* end = nullptr;
      const long v = std::strtol(tok.c_str(), &end, 10);
      if (*end != '\0' || v < 0 || v >= n) break;
      out.push_back(make(index, uuids[v], false, static_cast<int>(v)));
    }
  }
  return out;
}

unsigned long long Session::energy_mj(int physical) const {
  lib_->need(lib_->total_energy, "nvmlDeviceGetTotalEnergyConsumption");
  unsigned long long mj = 0;
  lib_->check(lib_->total_energy(handle(physical), &mj), "nvmlDeviceGetTotalEnergyConsumption");
  return mj;
}

std::pair<double, std::vector<unsigned long long>> Session::energy_snapshot(
    const std::vector<int>& physical) const {
  std::vector<unsigned long long> mj(physical.size());
  const double before = monotonic_s();
  for (std::size_t g = 0; g < physical.size(); ++g) mj[g] = energy_mj(physical[g]);
  return {0.5 * (before + monotonic_s()), std::move(mj)};
}

bool Session::counter_supported(int physical) const {
  if (!lib_->total_energy) return false;
  unsigned long long mj = 0;
  const nvmlReturn_t r = lib_->total_energy(handle(physical), &mj);
  if (r == kNotSupported) return false;
  lib_->check(r, "nvmlDeviceGetTotalEnergyConsumption");
  return true;
}

unsigned int Session::power_mw(int physical) const {
  nvmlDevice_t h = handle(physical);
  if (lib_->field_values && field_ok_.load() != 0) {
    FieldValue f{};
    f.fieldId = kFieldPowerInstant;
    const nvmlReturn_t r = lib_->field_values(h, 1, &f);
    if (r == kSuccess && f.nvmlReturn == kSuccess) {
      const double v = value_as_double(f);
      if (v >= 0) {
        field_ok_.store(1);
        return static_cast<unsigned>(v);
      }
    }
    // A lost GPU or a permission problem is an error whichever call is used.
    const nvmlReturn_t why = r != kSuccess ? r : f.nvmlReturn;
    if (why == kGpuIsLost || why == kNoPermission || why == kUninitialized)
      lib_->check(why, "nvmlDeviceGetFieldValues");
    field_ok_.store(0);  // the field is not available here: use nvmlDeviceGetPowerUsage
  }
  lib_->need(lib_->power_usage, "nvmlDeviceGetPowerUsage");
  unsigned mw = 0;
  lib_->check(lib_->power_usage(h, &mw), "nvmlDeviceGetPowerUsage");
  return mw;
}

}  // namespace energycore::nvml
