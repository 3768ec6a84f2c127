"""Overhead of energycore's measurement path, on the fake NVML of tests/fake_nvml.c.

What an empty window (``begin`` then ``end`` with nothing between) costs in energycore's own
code: Python, the binding, the C++ session, the sampler's timeline and integral. The fake NVML
answers each call in well under a microsecond, so the figures exclude the real driver's cost
(an ioctl per NVML call, to be measured on a GPU with bench/gpu_check.py). Also: the CPU the
sampler thread uses at a 1 ms period, and a check that counter and sampler agree.

Run:

    PYTHONPATH=python python bench/bench_measure.py          # ~20 s
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(name: str, out: Path) -> Path:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        sys.exit("no C compiler to build the fake NVML")
    lib = out / f"lib{name}.so"
    subprocess.run(
        [cc, "-shared", "-fPIC", "-O2", "-o", str(lib), str(ROOT / "tests" / f"{name}.c")],
        check=True,
    )
    return lib


def per_window_us(meter, n: int, repeats: int, stream=None) -> tuple[float, float]:
    """Median over ``repeats`` of the mean cost of one empty window: (thread CPU us, wall us)."""
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.thread_time(), time.perf_counter()
        for _ in range(n):
            meter.begin("w", stream=stream)
            meter.end("w")
        cpu.append((time.thread_time() - c0) / n * 1e6)
        wall.append((time.perf_counter() - w0) / n * 1e6)
    return statistics.median(cpu), statistics.median(wall)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=5000, help="windows per repeat")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ec-bench-measure-"))
    os.environ["ENERGYCORE_NVML_LIBRARY"] = str(build("fake_nvml", tmp))
    os.environ["ENERGYCORE_CUDA_LIBRARY"] = str(build("fake_cuda", tmp))
    os.environ.pop("CUDA_VISIBLE_DEVICES", None)

    from energycore import _core
    from energycore.measure import EnergyMeter

    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; fake NVML (no driver cost)")  # fmt: skip
    print(f"{'case':<46} {'CPU us/window':>14} {'wall us/window':>15}")
    rows = []
    for gpus, method, period in [
        (1, "counter", None),
        (8, "counter", None),
        (1, "sampled", 0.01),
        (1, "sampled", 0.001),
        (8, "sampled", 0.001),
    ]:
        os.environ["FAKE_NVML_DEVICES"] = str(gpus)
        kw = {"method": method} | ({"period_s": period} if period else {})
        with EnergyMeter(**kw) as meter:
            cpu, wall = per_window_us(meter, args.n, args.repeats)
        label = f"{method}, {gpus} GPU(s)" + (f", period {period * 1e3:g} ms" if period else "")
        rows.append((label, cpu, wall))
        print(f"{label:<46} {cpu:>14.1f} {wall:>15.1f}")
    os.environ["FAKE_NVML_DEVICES"] = "1"
    with EnergyMeter() as meter:
        cpu, wall = per_window_us(meter, args.n // 5, args.repeats, stream=0)
    print(f"{'counter, 1 GPU, + CUDA events (fake driver)':<46} {cpu:>14.1f} {wall:>15.1f}")

    # Raw core calls, for scale.
    s = _core.NvmlSession()
    t0 = time.thread_time()
    for _ in range(args.n * 4):
        s.energy_mj(0)
    print(f"{'_core.NvmlSession.energy_mj (one call)':<46} "
          f"{(time.thread_time() - t0) / (args.n * 4) * 1e6:>14.2f}")  # fmt: skip

    # The sampler thread's CPU at 1 ms over 2 s of idle waiting, 1 and 8 GPUs.
    for gpus in (1, 8):
        os.environ["FAKE_NVML_DEVICES"] = str(gpus)
        with EnergyMeter(method="sampled", period_s=0.001) as meter:
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.perf_counter()
            meter.begin("idle")
            time.sleep(2.0)
            m = meter.end("idle")
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            dt = time.perf_counter() - t0
        cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
        assert m.timeline is not None
        n_s = len(m.timeline[0])
        print(f"sampler thread, {gpus} GPU(s), 1 ms: {n_s / dt:.0f} samples/s, "
              f"{100 * cpu / dt:.2f} % of one core")  # fmt: skip

    # Correctness: counter and sampler agree on the fake's constant power.
    os.environ["FAKE_NVML_DEVICES"] = "2"
    os.environ["FAKE_NVML_POWER_W"] = "300,120"
    with EnergyMeter() as c, EnergyMeter(method="sampled", period_s=0.001) as s2:
        c.begin("x")
        s2.begin("x")
        time.sleep(0.3)
        mc, ms = c.end("x"), s2.end("x")
    rel = abs(mc.total_energy_j - ms.total_energy_j) / mc.total_energy_j
    print(f"check: counter {mc.total_energy_j:.3f} J, sampled {ms.total_energy_j:.3f} J over "
          f"{mc.wall_s:.3f} s (420 W): relative difference {rel:.2e}")  # fmt: skip
    assert rel < 0.01, rel
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
