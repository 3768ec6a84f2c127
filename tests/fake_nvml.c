/* A fake NVML for tests without a GPU: the handful of entry points energycore resolves.
 *
 * Behaviour is read from the environment when nvmlInit_v2 is called:
 *   FAKE_NVML_DEVICES=n            physical GPUs (default 1, at most 8)
 *   FAKE_NVML_POWER_W=p0,p1,...    constant power of each GPU in watts (default 100)
 *   FAKE_NVML_NO_COUNTER=1         nvmlDeviceGetTotalEnergyConsumption: NOT_SUPPORTED
 *   FAKE_NVML_NO_FIELD=1           the POWER_INSTANT field: NOT_SUPPORTED (PowerUsage works)
 *   FAKE_NVML_COUNTER_PERIOD_MS=t  the energy counter moves only every t milliseconds
 *   FAKE_NVML_LOST_AFTER=n         after n energy/power reads every read: GPU_IS_LOST
 *   FAKE_NVML_NO_PERMISSION=1      energy and power reads: NO_PERMISSION
 *   FAKE_NVML_INIT_ERROR=code      nvmlInit_v2 returns this code
 *   FAKE_NVML_MIG=k                GPU 0 is in MIG mode with k instances (at most 7)
 * Energy rises at the set power from the first nvmlInit_v2 on, so counter and sampler must
 * agree. Init is reference-counted like NVML's; every nvmlInit_v2 re-reads the settings (tests
 * change them between meters) and restarts the read count of FAKE_NVML_LOST_AFTER.
 * Build: cc -shared -fPIC -o libfake_nvml.so fake_nvml.c
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_GPUS 8
#define MAX_MIG 7

typedef struct {
  int index; /* physical index */
  int mig;   /* -1: the GPU itself, else the MIG instance number */
} fake_device;

typedef union {
  double dVal;
  unsigned int uiVal;
  unsigned long ulVal;
  unsigned long long ullVal;
  long long sllVal;
  int siVal;
  unsigned short usVal;
} fake_value;

typedef struct {
  unsigned int fieldId;
  unsigned int scopeId;
  long long timestamp;
  long long latencyUsec;
  int valueType;
  int nvmlReturn;
  fake_value value;
} fake_field_value;

static fake_device gpus[MAX_GPUS];
static fake_device migs[MAX_MIG];
static int n_gpus = 1, no_counter = 0, no_field = 0, no_permission = 0, n_mig = 0;
static long lost_after = -1;
static double power_w[MAX_GPUS], counter_period_s = 0.0, t_init = 0.0;
static atomic_long reads;
static atomic_int initialised;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static long env_long(const char* name, long fallback) {
  const char* v = getenv(name);
  return (v && *v) ? strtol(v, NULL, 10) : fallback;
}

int nvmlInit_v2(void) {
  long code = env_long("FAKE_NVML_INIT_ERROR", 0);
  if (code) return (int)code;
  atomic_fetch_add(&initialised, 1); /* reference-counted, like NVML */
  n_gpus = (int)env_long("FAKE_NVML_DEVICES", 1);
  if (n_gpus < 0) n_gpus = 0;
  if (n_gpus > MAX_GPUS) n_gpus = MAX_GPUS;
  for (int i = 0; i < MAX_GPUS; ++i) {
    power_w[i] = 100.0;
    gpus[i].index = i;
    gpus[i].mig = -1;
  }
  const char* p = getenv("FAKE_NVML_POWER_W");
  for (int i = 0; p && *p && i < MAX_GPUS; ++i) {
    char* end = NULL;
    power_w[i] = strtod(p, &end);
    p = (*end == ',') ? end + 1 : NULL;
  }
  no_counter = (int)env_long("FAKE_NVML_NO_COUNTER", 0);
  no_field = (int)env_long("FAKE_NVML_NO_FIELD", 0);
  no_permission = (int)env_long("FAKE_NVML_NO_PERMISSION", 0);
  lost_after = env_long("FAKE_NVML_LOST_AFTER", -1);
  counter_period_s = 1e-3 * (double)env_long("FAKE_NVML_COUNTER_PERIOD_MS", 0);
  n_mig = (int)env_long("FAKE_NVML_MIG", 0);
  if (n_mig > MAX_MIG) n_mig = MAX_MIG;
  for (int k = 0; k < MAX_MIG; ++k) {
    migs[k].index = 0;
    migs[k].mig = k;
  }
  atomic_store(&reads, 0);
  if (t_init == 0.0) t_init = now_s();
  return 0;
}

int nvmlShutdown(void) {
  if (atomic_load(&initialised) <= 0) return 1;
  atomic_fetch_sub(&initialised, 1);
  return 0;
}

const char* nvmlErrorString(int r) {
  switch (r) {
    case 0: return "Success";
    case 1: return "Uninitialized";
    case 2: return "Invalid Argument";
    case 3: return "Not Supported";
    case 4: return "Insufficient Permissions";
    case 6: return "Not Found";
    case 9: return "Driver Not Loaded";
    case 15: return "GPU is lost";
    default: return "Unknown Error";
  }
}

int nvmlDeviceGetCount_v2(unsigned* n) {
  if (!atomic_load(&initialised)) return 1;
  *n = (unsigned)n_gpus;
  return 0;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned i, fake_device** h) {
  if (!atomic_load(&initialised)) return 1;
  if (i >= (unsigned)n_gpus) return 2;
  *h = &gpus[i];
  return 0;
}

int nvmlDeviceGetUUID(fake_device* h, char* buf, unsigned len) {
  if (h->mig < 0)
    snprintf(buf, len, "GPU-fake%04d-0000-0000-0000-000000000000", h->index);
  else
    snprintf(buf, len, "MIG-fake%04d-%04d-0000-0000-000000000000", h->index, h->mig);
  return 0;
}

int nvmlDeviceGetName(fake_device* h, char* buf, unsigned len) {
  snprintf(buf, len, "Fake GPU %d", h->index);
  return 0;
}

int nvmlDeviceGetMaxMigDeviceCount(fake_device* h, unsigned* count) {
  *count = (h->mig < 0 && h->index == 0 && n_mig > 0) ? MAX_MIG : 0;
  return (h->mig < 0 && h->index == 0 && n_mig > 0) ? 0 : 3;
}

int nvmlDeviceGetMigDeviceHandleByIndex(fake_device* h, unsigned k, fake_device** out) {
  if (h->mig >= 0 || h->index != 0 || k >= (unsigned)n_mig) return 6;
  *out = &migs[k];
  return 0;
}

int nvmlDeviceIsMigDeviceHandle(fake_device* h, unsigned* is_mig) {
  *is_mig = h->mig >= 0;
  return 0;
}

int nvmlDeviceGetDeviceHandleFromMigDeviceHandle(fake_device* h, fake_device** parent) {
  if (h->mig < 0) return 2;
  *parent = &gpus[h->index];
  return 0;
}

/* The common failures of a read: not initialised, no permission, GPU lost after n reads. */
static int read_status(fake_device* h) {
  if (!atomic_load(&initialised)) return 1;
  if (h->mig >= 0) return 3; /* MIG instances have no counters of their own */
  if (no_permission) return 4;
  long n = atomic_fetch_add(&reads, 1);
  if (lost_after >= 0 && n >= lost_after) return 15;
  return 0;
}

int nvmlDeviceGetTotalEnergyConsumption(fake_device* h, unsigned long long* mj) {
  int r = read_status(h);
  if (r) return r;
  if (no_counter) return 3;
  double t = now_s() - t_init;
  if (counter_period_s > 0) t = counter_period_s * (double)(long long)(t / counter_period_s);
  *mj = (unsigned long long)(1e3 * power_w[h->index] * t + 5e6); /* since "driver load" */
  return 0;
}

int nvmlDeviceGetPowerUsage(fake_device* h, unsigned* mw) {
  int r = read_status(h);
  if (r) return r;
  *mw = (unsigned)(1e3 * power_w[h->index] + 0.5);
  return 0;
}

int nvmlDeviceGetFieldValues(fake_device* h, int count, fake_field_value* values) {
  for (int i = 0; i < count; ++i) {
    fake_field_value* f = &values[i];
    if (f->fieldId != 186 || no_field) {
      f->nvmlReturn = 3;
      continue;
    }
    int r = read_status(h);
    f->nvmlReturn = r;
    if (r) continue;
    f->valueType = 1;
    f->value.uiVal = (unsigned)(1e3 * power_w[h->index] + 0.5);
  }
  return 0;
}
