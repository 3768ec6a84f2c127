/* A fake CUDA driver for tests without a GPU: events record the monotonic time.
 * FAKE_CUDA_INIT_ERROR=code makes cuInit fail with that code (100: no device).
 * Build: cc -shared -fPIC -o libfake_cuda.so fake_cuda.c
 */
#include <stdlib.h>
#include <time.h>

typedef struct {
  double t;
  int recorded;
} fake_event;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

int cuInit(unsigned flags) {
  (void)flags;
  const char* e = getenv("FAKE_CUDA_INIT_ERROR");
  return (e && *e) ? atoi(e) : 0;
}

int cuEventCreate(fake_event** ev, unsigned flags) {
  (void)flags;
  *ev = calloc(1, sizeof(fake_event));
  return *ev ? 0 : 2;
}

int cuEventRecord(fake_event* ev, void* stream) {
  (void)stream;
  ev->t = now_ms();
  ev->recorded = 1;
  return 0;
}

int cuEventSynchronize(fake_event* ev) { return ev->recorded ? 0 : 400; }

int cuEventElapsedTime(float* ms, fake_event* a, fake_event* b) {
  if (!a->recorded || !b->recorded) return 600; /* CUDA_ERROR_NOT_READY */
  *ms = (float)(b->t - a->t);
  return 0;
}

int cuEventDestroy_v2(fake_event* ev) {
  free(ev);
  return 0;
}

int cuGetErrorString(int r, const char** s) {
  *s = r == 100 ? "no CUDA-capable device is detected" : "fake CUDA error";
  return 0;
}
