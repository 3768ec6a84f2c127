"""Exceptions of energycore."""

from __future__ import annotations


class NoGPUError(RuntimeError):
    """No GPU (or no NVML / CUDA driver) is available for a real measurement.

    The message says what was tried. energycore never substitutes a made-up number.
    """
