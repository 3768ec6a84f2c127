"""Exceptions of energycore."""

from __future__ import annotations


class NoGPUError(RuntimeError):
    """No GPU (or no NVML / CUDA driver) is available for a real measurement.

    The message says what was tried. energycore never substitutes a made-up number.
    """


class NVMLError(RuntimeError):
    """An NVML call failed.

    Attributes
    ----------
    code : int
        The NVML return code (``nvmlReturn_t``).
    function : str
        The NVML entry point that failed.
    """

    def __init__(self, message: str, code: int = -1, function: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.function = function


class NVMLNotSupportedError(NVMLError):
    """The GPU or driver does not support what was asked (NVML_ERROR_NOT_SUPPORTED)."""


class NVMLPermissionError(NVMLError):
    """The process may not read this value (NVML_ERROR_NO_PERMISSION)."""


class NVMLUninitializedError(NVMLError):
    """NVML was used before initialisation or after shutdown (NVML_ERROR_UNINITIALIZED)."""


class GPULostError(NVMLError):
    """The GPU fell off the bus or stopped answering (NVML_ERROR_GPU_IS_LOST)."""


class CUDAError(RuntimeError):
    """A CUDA driver call (event timing) failed; ``code`` is the ``CUresult``."""

    def __init__(self, message: str, code: int = -1, function: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.function = function


class ServerUnreachableError(RuntimeError):
    """An inference server could not be reached, or went away during a run.

    Like a lost GPU, this says nothing about the configuration being measured: a campaign stops
    without recording it, so that :meth:`~energycore.Campaign.resume` measures it later.
    """


class LaunchError(RuntimeError):
    """A server started for a configuration did not come up, or died while it was measured.

    A failure *of the configuration* (recorded as failed with this message, and the campaign
    goes on). ``reason`` is one of ``"out_of_memory"``, ``"crash"`` or ``"timeout"``; the
    message names it and ends with the last lines of the server's log.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


class ConvergenceWarning(UserWarning):
    """A fit stopped before its solver converged (it reached ``max_iter``).

    The coefficients are the best the solver reached and are kept, but they may be far from the
    optimum: raise ``max_iter``, check the data for rows the model cannot describe (an outlier,
    a unit error), or fix coefficients the data cannot determine. ``fit_result_.status`` is 0 and
    ``fit_result_.success`` is ``False``.
    """
