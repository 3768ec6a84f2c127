"""Timing of GPU work: CUDA driver events on the caller's stream, or the monotonic clock.

The CUDA driver (``libcuda.so.1``, or the path in ``ENERGYCORE_CUDA_LIBRARY``) is opened at run
time by the C++ core, so neither the CUDA toolkit, torch nor CuPy is needed: pass a raw stream
handle (``torch.cuda.current_stream().cuda_stream``, ``cupy.cuda.get_current_stream().ptr``, or
the stream object itself) and the events are recorded on it. The caller's CUDA context must be
current on the calling thread (it is, once torch or CuPy has touched the GPU).
"""

from __future__ import annotations

import functools
from typing import Any

from energycore import _core
from energycore.errors import CUDAError, NoGPUError

__all__ = ["CudaEventTimer", "monotonic_s", "stream_handle"]

#: CUresult values meaning "no usable GPU" rather than a failed call.
_NO_DEVICE = {3: "not initialized", 100: "no CUDA-capable device", 999: "unknown"}


def monotonic_s() -> float:
    """Seconds on the monotonic clock shared with the C++ power sampler."""
    return float(_core.monotonic_s())


def stream_handle(stream: Any) -> int:
    """The raw ``CUstream`` handle of ``stream``.

    Accepts an integer (0 is the legacy default stream), an object with ``cuda_stream``
    (torch) or ``ptr`` (CuPy). ``ValueError`` for anything else.
    """
    for attr in ("cuda_stream", "ptr"):
        if hasattr(stream, attr):
            stream = getattr(stream, attr)
            break
    if isinstance(stream, bool) or not isinstance(stream, int) or stream < 0:
        raise ValueError(
            "stream: expected a CUDA stream handle (an int such as "
            "torch.cuda.current_stream().cuda_stream) or a torch/CuPy stream, got "
            f"{type(stream).__name__}"
        )
    return stream


def _translate(e: Exception) -> Exception:
    code, function, message = e.args if len(e.args) == 3 else (-1, "", str(e))
    if function in ("dlopen", "dlsym") or (function == "cuInit" and code in _NO_DEVICE):
        return NoGPUError(f"CUDA event timing is unavailable: {message}")
    return CUDAError(message, code, function)


@functools.lru_cache(maxsize=4)
def _runtime(path: str) -> Any:
    try:
        return _core.CudaRuntime(path)
    except _core.CudaError as e:
        raise _translate(e) from None


class CudaEventTimer:
    """Two CUDA events timing the work queued on one stream between :meth:`start` and
    :meth:`stop`.

    Parameters
    ----------
    library : str, optional
        Path of the CUDA driver library (default ``ENERGYCORE_CUDA_LIBRARY`` or
        ``libcuda.so.1``).

    Raises
    ------
    NoGPUError
        The CUDA driver cannot be loaded or sees no GPU.
    """

    def __init__(self, library: str | None = None) -> None:
        self._timer = None
        try:
            self._timer = _core.CudaEventTimer(_runtime(library or ""))
        except _core.CudaError as e:
            raise _translate(e) from None
        self._stream: int | None = None

    def start(self, stream: Any = 0) -> None:
        """Record the start event on ``stream``."""
        self._stream = stream_handle(stream)
        self._call("start", self._stream)

    def stop(self, stream: Any = None) -> float:
        """Record the stop event (on the start stream unless given), wait for it, return
        the seconds between the two events."""
        if self._stream is None:
            raise ValueError("CudaEventTimer.stop: start() was never called")
        handle = self._stream if stream is None else stream_handle(stream)
        self._call("stop", handle)
        self._stream = None
        return float(self._call("elapsed_s"))

    def _call(self, name: str, *args: Any) -> Any:
        try:
            return getattr(self._timer, name)(*args)
        except _core.CudaError as e:
            raise _translate(e) from None
