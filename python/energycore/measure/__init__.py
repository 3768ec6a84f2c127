"""Real measurement on NVIDIA GPUs: energy windows (NVML) and GPU timing (CUDA events).

- :class:`EnergyMeter` opens named energy windows on some GPUs and returns a
  :class:`Measurement` per window (``energy_j`` per GPU and in total, ``time_s``,
  ``avg_power_w``, ``method``, warnings, the power timeline when sampled);
- :class:`CudaEventTimer` times work on a caller's CUDA stream with driver events;
- :func:`list_gpus` lists the visible GPUs.

NVML and the CUDA driver are loaded at run time; where they or a GPU are missing, these raise
:class:`~energycore.NoGPUError`. See ``docs/measurement.md`` for the methods and their limits.
"""

from __future__ import annotations

from energycore.errors import (
    CUDAError,
    GPULostError,
    NoGPUError,
    NVMLError,
    NVMLNotSupportedError,
    NVMLPermissionError,
    NVMLUninitializedError,
)
from energycore.measure.nvml import METHODS, EnergyMeter, Measurement, Window, list_gpus
from energycore.measure.timing import CudaEventTimer, monotonic_s, stream_handle

__all__ = [
    "METHODS",
    "CUDAError",
    "CudaEventTimer",
    "EnergyMeter",
    "GPULostError",
    "Measurement",
    "NVMLError",
    "NVMLNotSupportedError",
    "NVMLPermissionError",
    "NVMLUninitializedError",
    "NoGPUError",
    "Window",
    "list_gpus",
    "monotonic_s",
    "stream_handle",
]
