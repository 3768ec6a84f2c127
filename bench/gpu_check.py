"""Real-GPU check of energycore.measure: counter vs 1 ms samples vs nvidia-ml-py, events vs wall.

NOT RUN YET (no GPU in the sessions so far). Run it on a machine with an NVIDIA GPU, torch
(CUDA build) and nvidia-ml-py installed; it changes no GPU setting (no clocks, no power limit,
no persistence mode) and only reads counters:

    pip install torch nvidia-ml-py
    PYTHONPATH=python python bench/gpu_check.py --gpu 0 --out gpu_check.json

For each workload (a bf16/fp16 matmul loop, a small transformer forward pass from random
weights, at a few batch sizes) and each repeat, one window is measured at the same time by

- ``EnergyMeter(method="counter")`` (the total-energy counter through the C++ core),
- ``EnergyMeter(method="sampled", period_s=0.001)`` (1 ms power samples integrated),
- nvidia-ml-py's ``nvmlDeviceGetTotalEnergyConsumption`` read before and after (an independent
  binding of the same counter),

and its duration by CUDA events on the torch stream (``stream=``) and by the wall clock after
``torch.cuda.synchronize``. It also measures the energy counter's update period (the interval
between changes of its value while polling) and the cost of one empty window. It prints a
Markdown table for docs/measurement.md and writes every figure to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from typing import Any


def need(module: str, hint: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        sys.exit(f"gpu_check: {module} is missing ({hint})")


def counter_update_period(session: Any, physical: int, seconds: float = 2.0) -> dict[str, float]:
    """Poll the energy counter and time the intervals between changes of its value."""
    changes = []
    last = session.energy_mj(physical)
    t_last = time.perf_counter()
    end = t_last + seconds
    polls = 0
    while time.perf_counter() < end:
        v = session.energy_mj(physical)
        polls += 1
        if v != last:
            now = time.perf_counter()
            changes.append(now - t_last)
            last, t_last = v, now
    return {
        "polls_per_s": polls / seconds,
        "median_update_s": statistics.median(changes[1:]) if len(changes) > 2 else math.nan,
        "max_update_s": max(changes[1:]) if len(changes) > 2 else math.nan,
        "changes": len(changes),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description="real-GPU check of energycore.measure")
    ap.add_argument("--gpu", type=int, default=0, help="CUDA device index")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0, help="target length of one window")
    ap.add_argument("--out", default="gpu_check.json")
    args = ap.parse_args()

    torch = need("torch", "pip install torch (a CUDA build)")
    pynvml = need("pynvml", "pip install nvidia-ml-py")
    if not torch.cuda.is_available():
        sys.exit("gpu_check: torch sees no CUDA GPU")
    from energycore import _core
    from energycore.measure import EnergyMeter

    dev = torch.device(f"cuda:{args.gpu}")
    torch.cuda.set_device(dev)
    pynvml.nvmlInit()
    counter = EnergyMeter(args.gpu, method="counter", sync=torch.cuda.synchronize)
    sampled = EnergyMeter(args.gpu, method="sampled", period_s=0.001, sync=torch.cuda.synchronize)
    phys = counter.devices[args.gpu]
    handle = pynvml.nvmlDeviceGetHandleByUUID(phys["physical_uuid"])
    info: dict[str, Any] = {
        "gpu": phys["name"],
        "uuid": phys["physical_uuid"],
        "driver": pynvml.nvmlSystemGetDriverVersion(),
        "nvml": pynvml.nvmlSystemGetNVMLVersion(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "host": platform.node(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    info["counter_update"] = counter_update_period(_core.NvmlSession(), phys["physical"])
    stream = torch.cuda.current_stream()
    t0 = time.perf_counter()
    for _ in range(2000):
        counter.begin("empty")
        counter.end("empty")
    info["empty_window_counter_us"] = (time.perf_counter() - t0) / 2000 * 1e6
    t0 = time.perf_counter()
    for _ in range(2000):
        sampled.begin("empty")
        sampled.end("empty")
    info["empty_window_sampled_us"] = (time.perf_counter() - t0) / 2000 * 1e6
    info["idle_power_w"] = counter.calibrate_idle(2.0)[args.gpu]

    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    def matmul(batch: int) -> Any:
        a = torch.randn(batch * 512, 4096, device=dev, dtype=dtype)
        b = torch.randn(4096, 4096, device=dev, dtype=dtype)
        return lambda: a @ b

    def transformer(batch: int) -> Any:
        layer = torch.nn.TransformerEncoder(
            torch.nn.TransformerEncoderLayer(1024, 16, 4096, batch_first=True),
            num_layers=8,
            enable_nested_tensor=False,
        ).to(dev, dtype)
        layer.eval()
        x = torch.randn(batch, 512, 1024, device=dev, dtype=dtype)

        def step() -> Any:
            with torch.no_grad():
                return layer(x)

        return step

    rows = []
    for wname, make in (("matmul", matmul), ("transformer", transformer)):
        for batch in (1, 8, 32):
            step = make(batch)
            step()
            torch.cuda.synchronize()
            t0 = time.perf_counter()  # calibrate the iteration count to ~args.seconds
            for _ in range(5):
                step()
            torch.cuda.synchronize()
            iters = max(1, int(args.seconds / ((time.perf_counter() - t0) / 5)))
            for rep in range(args.repeats):
                torch.cuda.synchronize()
                e0 = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
                counter.begin("w", stream=stream)
                sampled.begin("w")
                for _ in range(iters):
                    step()
                ms = sampled.end("w")
                mc = counter.end("w")
                e1 = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
                rows.append(
                    {
                        "workload": wname,
                        "batch": batch,
                        "repeat": rep,
                        "iters": iters,
                        "event_s": mc.time_s,
                        "wall_s": mc.wall_s,
                        "counter_j": mc.total_energy_j,
                        "sampled_j": ms.total_energy_j,
                        "pynvml_j": (e1 - e0) / 1e3,
                        "avg_power_w": mc.avg_power_w,
                        "samples": len(ms.timeline[0]) if ms.timeline else 0,
                        "warnings": list(mc.warnings) + list(ms.warnings),
                    }
                )
            del step
            torch.cuda.empty_cache()
    counter.close()
    sampled.close()

    print(
        f"GPU {info['gpu']}, driver {info['driver']}, torch {info['torch']} (CUDA {info['cuda']})"
    )
    print(
        f"counter update period: median {info['counter_update']['median_update_s'] * 1e3:.1f} ms, "
        f"max {info['counter_update']['max_update_s'] * 1e3:.1f} ms; empty window "
        f"{info['empty_window_counter_us']:.0f} us (counter), "
        f"{info['empty_window_sampled_us']:.0f} us (sampled); idle {info['idle_power_w']:.1f} W"
    )
    print("| workload | batch | event s | wall s | counter J | sampled/counter | pynvml/counter |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['workload']} | {r['batch']} | {r['event_s']:.3f} | {r['wall_s']:.3f} | "
            f"{r['counter_j']:.1f} | {r['sampled_j'] / r['counter_j']:.4f} | "
            f"{r['pynvml_j'] / r['counter_j']:.4f} |"
        )
    with open(args.out, "w") as f:
        json.dump({"info": info, "rows": rows}, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
