"""Energy windows on NVIDIA GPUs: :class:`EnergyMeter` and its :class:`Measurement`.

Two methods, chosen per meter:

- ``counter``: the GPU's total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``, Volta
  and newer) read at the start and the end of each window; exact up to the counter's update
  period, no thread, no timeline.
- ``sampled``: a C++ thread reads instant power every ``period_s`` (down to 1 ms; the
  ``NVML_FI_DEV_POWER_INSTANT`` field, else ``nvmlDeviceGetPowerUsage``) into a timeline that is
  integrated with trapezoids over each window; used where the counter is missing, or on request.

Windows are named and may nest or overlap (``begin("request")``, ``begin("prefill")``,
``end("prefill")``, ``begin("decode")`` ...). Nothing here ever returns a made-up number: without
NVML or a GPU, creating a meter raises :class:`~energycore.NoGPUError`; NVML failures raise the
:class:`~energycore.errors.NVMLError` family.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from energycore import _core
from energycore.errors import (
    GPULostError,
    NoGPUError,
    NVMLError,
    NVMLNotSupportedError,
    NVMLPermissionError,
    NVMLUninitializedError,
)
from energycore.measure.timing import CudaEventTimer, monotonic_s

__all__ = ["METHODS", "EnergyMeter", "Measurement", "Window", "list_gpus"]

#: Measurement methods of :class:`EnergyMeter`.
METHODS = ("auto", "counter", "sampled")
#: Assumed update period of the energy counter (s) for the short-window warning; conservative.
COUNTER_PERIOD_S = 0.1

_ERRORS: dict[int, type[NVMLError]] = {
    1: NVMLUninitializedError,
    3: NVMLNotSupportedError,
    4: NVMLPermissionError,
    15: GPULostError,
}
#: Codes at initialisation that mean "no usable GPU here" (library, driver or device missing).
_NO_GPU_CODES = {6: "not found", 9: "driver not loaded", 12: "library not found"}


def _translate(e: BaseException, tried: str = "") -> Exception:
    """The energycore exception for a ``_core.NvmlError`` (args: code, function, message)."""
    code, function, message = e.args if len(e.args) == 3 else (-1, "", str(e))
    if function in ("dlopen", "dlsym") or (function == "nvmlInit_v2" and code in _NO_GPU_CODES):
        return NoGPUError(f"no GPU energy measurement possible: {message}{tried}")
    return _ERRORS.get(code, NVMLError)(message, code, function)


@contextlib.contextmanager
def _nvml_errors(tried: str = "") -> Iterator[None]:
    try:
        yield
    except _core.NvmlError as e:
        raise _translate(e, tried) from None


def _visible() -> str | None:
    return os.environ.get("CUDA_VISIBLE_DEVICES")


def _open(library: str | None) -> tuple[Any, list[dict[str, Any]]]:
    path = library or os.environ.get("ENERGYCORE_NVML_LIBRARY") or "libnvidia-ml.so.1"
    visible = _visible()
    tried = f" (tried NVML library '{path}'"
    tried += f", CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ")"
    with _nvml_errors(tried):
        session = _core.NvmlSession(path)
        devices = session.devices(visible)
    if not devices:
        n = None
        with contextlib.suppress(_core.NvmlError):
            n = session.physical_count()
        raise NoGPUError(
            f"no GPU energy measurement possible: NVML ({path}) sees {n} GPU(s) and none is "
            f"visible" + (f" under CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else "")
        )
    return session, devices


def list_gpus(library: str | None = None) -> list[dict[str, Any]]:
    """The GPUs visible to this process (honouring ``CUDA_VISIBLE_DEVICES``).

    Returns one dict per device: ``index`` (CUDA ordinal), ``uuid``, ``name``, ``is_mig``,
    ``physical`` (NVML index of the GPU that is measured) and ``physical_uuid``. Raises
    :class:`~energycore.NoGPUError` when there is none.
    """
    return _open(library)[1]


@dataclass(frozen=True)
class Measurement:
    """The energy and time of one window.

    Attributes
    ----------
    name : str
        The window's name.
    time_s : float
        Duration: CUDA event time when the window had a stream, else monotonic wall time.
    wall_s : float
        Monotonic wall time of the window (over which energy is measured).
    energy_j : dict of int to float
        Energy per GPU (key: the GPU's index as given to the meter), J. This is the energy
        the GPUs *served* during the window, idle power included.
    method : str
        ``counter`` or ``sampled``.
    timing : str
        ``cuda_event`` or ``monotonic``.
    idle_power_w : dict of int to float or None
        Idle power per GPU from :meth:`EnergyMeter.calibrate_idle`, if calibrated.
    timeline : tuple of (ndarray, ndarray) or None
        Sampled windows: sample times (s, from the window start) and power (W), shape
        (n_samples, n_gpus), GPUs in the order of ``energy_j``.
    warnings : tuple of str
        Reasons to doubt the figure (window shorter than the counter's update period, a
        counter that did not move, too few samples).
    start_s, end_s : float
        Monotonic start and end times.
    """

    name: str
    time_s: float
    wall_s: float
    energy_j: dict[int, float]
    method: str
    timing: str = "monotonic"
    idle_power_w: dict[int, float] | None = None
    timeline: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)
    warnings: tuple[str, ...] = ()
    start_s: float = 0.0
    end_s: float = 0.0

    @property
    def total_energy_j(self) -> float:
        """Energy over all GPUs, J (served, idle included)."""
        return float(sum(self.energy_j.values()))

    served_energy_j = total_energy_j

    @property
    def avg_power_w(self) -> float:
        """Average power over all GPUs during the window, W (NaN for an empty window)."""
        return self.total_energy_j / self.wall_s if self.wall_s > 0 else math.nan

    @property
    def idle_energy_j(self) -> float | None:
        """Energy the GPUs would have drawn idle over the window, J (None if not calibrated)."""
        if self.idle_power_w is None:
            return None
        return float(sum(self.idle_power_w.values())) * self.wall_s

    @property
    def active_energy_j(self) -> float | None:
        """Served energy minus idle energy, J (None if not calibrated)."""
        idle = self.idle_energy_j
        return None if idle is None else self.total_energy_j - idle

    def to_dict(self, prefix: str = "") -> dict[str, Any]:
        """Flat JSON-ready columns (``energy_j``, ``time_s``, ``avg_power_w``, ``method`` ...),
        each name prefixed with ``prefix`` (e.g. ``"prefill_"``)."""
        d: dict[str, Any] = {
            "energy_j": self.total_energy_j,
            "time_s": self.time_s,
            "wall_s": self.wall_s,
            "avg_power_w": self.avg_power_w,
            "method": self.method,
            "timing": self.timing,
        }
        if self.idle_power_w is not None:
            d["active_energy_j"] = self.active_energy_j
            d["idle_energy_j"] = self.idle_energy_j
        for g, e in self.energy_j.items():
            d[f"energy_gpu{g}_j"] = e
        if self.warnings:
            d["warnings"] = "; ".join(self.warnings)
        return {prefix + k: v for k, v in d.items()}

    def __repr__(self) -> str:
        extra = f", active_energy_j={self.active_energy_j:.4g}" if self.idle_power_w else ""
        warn = f", warnings={list(self.warnings)}" if self.warnings else ""
        return (
            f"Measurement(name={self.name!r}, time_s={self.time_s:.6g}, "
            f"energy_j={self.total_energy_j:.6g}{extra}, avg_power_w={self.avg_power_w:.4g}, "
            f"method={self.method!r}, gpus={list(self.energy_j)}{warn})"
        )


@dataclass
class _Open:
    t0: float
    counters: list[int] | None
    timer: CudaEventTimer | None
    nvtx_id: Any


class Window:
    """Handle of a window opened by :meth:`EnergyMeter.window`; ``measurement`` is set when
    the ``with`` block ends."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.measurement: Measurement | None = None

    def __repr__(self) -> str:
        return f"Window({self.name!r}, measurement={self.measurement!r})"


class EnergyMeter:
    """Measures the energy of named windows on some GPUs.

    Parameters
    ----------
    gpus : int or iterable of int, optional
        Indices of the GPUs to measure, as CUDA numbers them in this process (after
        ``CUDA_VISIBLE_DEVICES``). Default: every visible GPU. A MIG instance is measured through
        its whole parent GPU (with a warning in each measurement).
    method : {"auto", "counter", "sampled"}
        ``auto`` uses the energy counter when every GPU has one, else the sampler.
    period_s : float
        Sampling period of the power sampler, s (1e-3 and up; default 0.01).
    sync : callable, optional
        Called before reading the clock at the start and the end of each window, e.g.
        ``torch.cuda.synchronize``, so that queued GPU work is inside the window.
    nvtx : bool
        Also open an NVTX range per window (needs the ``nvtx`` package), visible in Nsight.
    idle_power_w : mapping of int to float, optional
        Known idle power per GPU (instead of :meth:`calibrate_idle`).
    library : str, optional
        Path of the NVML library (default ``ENERGYCORE_NVML_LIBRARY`` or
        ``libnvidia-ml.so.1``).

    Notes
    -----
    Windows may be begun and ended from several threads (names are shared by all of them).

    Raises
    ------
    NoGPUError
        NVML cannot be loaded or initialised, or no GPU is visible.
    ValueError
        Bad arguments (unknown GPU index, method, period).

    Examples
    --------
    >>> with EnergyMeter() as meter:                      # doctest: +SKIP
    ...     meter.begin("request")
    ...     meter.begin("prefill"); prefill(); p = meter.end("prefill")
    ...     meter.begin("decode"); decode(); d = meter.end("decode")
    ...     total = meter.end("request")
    """

    def __init__(
        self,
        gpus: int | Iterable[int] | None = None,
        *,
        method: str = "auto",
        period_s: float = 0.01,
        sync: Callable[[], Any] | None = None,
        nvtx: bool = False,
        idle_power_w: dict[int, float] | None = None,
        library: str | None = None,
    ) -> None:
        self._sampler: Any = None
        self._windows: dict[str, _Open] = {}
        self._lock = threading.Lock()  # windows may be begun and ended from several threads
        # Operations in flight (thread id -> count): close() waits for them, so that no thread
        # uses the sampler or the NVML session after close() has released them.
        self._idle = threading.Condition(self._lock)
        self._busy: dict[int, int] = {}
        self._closed = False
        if method not in METHODS:
            raise ValueError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
        if isinstance(period_s, bool) or not isinstance(period_s, (int, float)):
            raise ValueError(f"period_s: expected a number of seconds, got {period_s!r}")
        if not (1e-3 <= period_s <= 60):
            raise ValueError(f"period_s: must be between 0.001 and 60 s, got {period_s}")
        if sync is not None and not callable(sync):
            raise ValueError(f"sync: expected a callable or None, got {type(sync).__name__}")
        self._nvtx = _import_nvtx() if nvtx else None
        self._sync = sync
        self.period_s = float(period_s)
        self._session, devices = _open(library)
        try:
            self._setup(gpus, method, devices, idle_power_w)
        except BaseException:
            self.close()
            raise

    def _setup(
        self, gpus: Any, method: str, devices: list[dict[str, Any]], idle_power_w: Any
    ) -> None:
        self.devices: list[dict[str, Any]] = devices
        self.gpus: tuple[int, ...] = self._select(gpus, devices)
        # One physical GPU is measured once, even when several visible MIG instances share it.
        self._physical: list[int] = []
        self._notes: list[str] = []
        for g in self.gpus:
            d = devices[g]
            if d["is_mig"]:
                self._notes.append(
                    f"GPU {g} is MIG instance {d['uuid']}: energy is that of the whole GPU "
                    f"{d['physical_uuid']}, shared with every instance on it"
                )
            if d["physical"] in self._physical:
                raise ValueError(
                    f"gpus: GPU {g} is on the same physical GPU as an earlier one "
                    f"({d['physical_uuid']}); measure it once"
                )
            self._physical.append(d["physical"])
        with _nvml_errors():
            supported = [self._session.counter_supported(p) for p in self._physical]
        if method == "counter" and not all(supported):
            bad = [g for g, ok in zip(self.gpus, supported) if not ok]
            raise NVMLNotSupportedError(
                f"method='counter': GPU(s) {bad} have no total-energy counter; use "
                "method='sampled' or 'auto'",
                3,
                "nvmlDeviceGetTotalEnergyConsumption",
            )
        self.method = "counter" if method != "sampled" and all(supported) else "sampled"
        self.idle_power_w: dict[int, float] | None = None
        if idle_power_w is not None:
            self.idle_power_w = self._check_idle(idle_power_w)
        if self.method == "sampled":
            with _nvml_errors():
                self._sampler = _core.PowerSampler(self._session, self._physical, self.period_s)
                self._sampler.start()

    # ------------------------------------------------------------------ set-up
    @staticmethod
    def _select(gpus: Any, devices: list[dict[str, Any]]) -> tuple[int, ...]:
        n = len(devices)
        if gpus is None:
            return tuple(range(n))
        items = [gpus] if isinstance(gpus, (int, np.integer)) else list(gpus)
        if not items:
            raise ValueError("gpus: empty; give GPU indices or None for all visible GPUs")
        out: list[int] = []
        for g in items:
            if isinstance(g, bool) or not isinstance(g, (int, np.integer)):
                raise ValueError(f"gpus: expected integer GPU indices, got {g!r}")
            if not 0 <= g < n:
                raise ValueError(f"gpus: no GPU {g}; {n} visible GPU(s): 0..{n - 1}")
            if int(g) in out:
                raise ValueError(f"gpus: GPU {g} given twice")
            out.append(int(g))
        return tuple(out)

    def _check_idle(self, idle: Any) -> dict[int, float]:
        if not isinstance(idle, dict) or set(idle) != set(self.gpus):
            raise ValueError(f"idle_power_w: expected a dict with one entry per GPU {self.gpus}")
        out = {}
        for g, w in idle.items():
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not w >= 0:
                raise ValueError(f"idle_power_w[{g}]: must be a non-negative number, got {w!r}")
            out[int(g)] = float(w)
        return out

    def __repr__(self) -> str:
        names = sorted({self.devices[g]["name"] for g in self.gpus})
        return (
            f"EnergyMeter(gpus={list(self.gpus)}, method={self.method!r}, devices={names}, "
            f"open_windows={list(self._windows)})"
        )

    # ------------------------------------------------------------------ windows
    @property
    def open_windows(self) -> tuple[str, ...]:
        """Names of the windows begun and not yet ended."""
        with self._lock:
            return tuple(self._windows)

    def _enter(self, op: str) -> None:
        """Start an operation that uses the session or the sampler; the lock must be held.

        ``ValueError`` when the meter is closed."""
        if self._closed or self._session is None:
            raise ValueError(f"{op}: the meter is closed (close() was called); open a new one")
        me = threading.get_ident()
        self._busy[me] = self._busy.get(me, 0) + 1

    def _release(self) -> None:
        """End an operation begun by :meth:`_enter`; the lock must be held."""
        me = threading.get_ident()
        self._busy[me] -= 1
        if not self._busy[me]:
            del self._busy[me]
        self._idle.notify_all()

    def _leave(self) -> None:
        with self._lock:
            self._release()

    @contextlib.contextmanager
    def _operation(self, op: str) -> Iterator[None]:
        with self._lock:
            self._enter(op)
        try:
            yield
        finally:
            self._leave()

    def _read(self) -> tuple[float, list[int] | None]:
        """(time, counters): after the sync callback; for the counter method the time and
        the counters are read together in one C++ call, so that no other Python thread can run
        between them."""
        if self._sync is not None:
            self._sync()
        if self.method != "counter":
            return monotonic_s(), None
        try:  # (a plain try: this is the hot path of every window)
            t, mj = self._session.energy_snapshot(self._physical)
        except _core.NvmlError as e:
            raise _translate(e) from None
        return t, mj

    def begin(self, name: str = "window", *, stream: Any = None) -> None:
        """Open the window ``name``.

        Parameters
        ----------
        name : str
            Unique among the open windows.
        stream : int or stream object, optional
            A CUDA stream (``torch.cuda.current_stream().cuda_stream``, a CuPy stream ...): the
            window's ``time_s`` is then measured with CUDA events on it.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"name: expected a non-empty string, got {name!r}")
        with self._lock:
            self._enter("begin")
            if name in self._windows:
                self._release()
                raise ValueError(f"begin: window {name!r} is already open")
            self._windows[name] = _Open(math.nan, None, None, None)  # reserved
        try:
            timer = None
            if stream is not None:
                timer = CudaEventTimer()
                timer.start(stream)
            nvtx_id = self._nvtx.start_range(message=name) if self._nvtx is not None else None
            t0, counters = self._read()
        except BaseException:
            with self._lock:
                self._windows.pop(name, None)
            self._leave()
            raise
        with self._lock:
            if not self._closed:
                self._windows[name] = _Open(t0, counters, timer, nvtx_id)
        self._leave()

    def end(self, name: str = "window") -> Measurement:
        """Close the window ``name`` and return its :class:`Measurement`.

        Raises ``ValueError`` when no window of that name is open; an NVML error (GPU lost ...)
        closes the window and propagates.
        """
        with self._lock:
            self._enter("end")
            w = self._windows.pop(name, None) if isinstance(name, str) else None
            if w is None or math.isnan(w.t0):
                if w is not None:  # being begun by another thread: leave it
                    self._windows[name] = w
                open_ = ", ".join(repr(n) for n in self._windows) or "none"
                self._release()
                raise ValueError(f"end: window {name!r} was never begun (open windows: {open_})")
        try:
            return self._finish(name, w)
        finally:
            try:
                if self._nvtx is not None:
                    self._nvtx.end_range(w.nvtx_id)
                self._trim()
            finally:
                self._leave()

    def _finish(self, name: str, w: _Open) -> Measurement:
        time_s = None
        if w.timer is not None:
            time_s = w.timer.stop()
        t1, after = self._read()
        wall = t1 - w.t0
        warns = list(self._notes)
        timeline = None
        if self.method == "counter":
            assert w.counters is not None and after is not None
            energy = []
            for g, a, b in zip(self.gpus, w.counters, after):
                if b < a:
                    raise NVMLError(
                        f"GPU {g}: the energy counter went backwards ({a} -> {b} mJ); was the "
                        "driver reloaded?",
                        -1,
                        "nvmlDeviceGetTotalEnergyConsumption",
                    )
                if b == a and wall > 0:
                    warns.append(f"GPU {g}: the energy counter did not move during the window")
                energy.append(1e-3 * (b - a))
            if wall < COUNTER_PERIOD_S:
                warns.append(
                    f"window of {wall:.3g} s is shorter than the energy counter's update period "
                    f"(about {COUNTER_PERIOD_S} s): the energy may be off by up to one update"
                )
        else:
            with _nvml_errors():
                self._sampler.sample_now()  # a sample at the end, so the window is covered
                energy = [float(e) for e in self._sampler.integrate(w.t0, t1)]
                t, p = self._sampler.timeline(w.t0, t1)
            timeline = (np.asarray(t) - w.t0, np.asarray(p))
            if len(t) < 2:
                warns.append(
                    f"window of {wall:.3g} s holds {len(t)} power sample(s) (period "
                    f"{self.period_s} s): the energy is interpolated"
                )
        return Measurement(
            name=name,
            time_s=float(wall if time_s is None else time_s),
            wall_s=float(wall),
            energy_j=dict(zip(self.gpus, energy)),
            method=self.method,
            timing="monotonic" if time_s is None else "cuda_event",
            idle_power_w=dict(self.idle_power_w) if self.idle_power_w is not None else None,
            timeline=timeline,
            warnings=tuple(warns),
            start_s=w.t0,
            end_s=t1,
        )

    def _trim(self) -> None:
        with self._lock:
            starts = [w.t0 for w in self._windows.values()]
            sampler = self._sampler
        if sampler is not None:
            # a window being begun (NaN start) keeps everything: its start is not known yet
            if any(math.isnan(t) for t in starts):
                return
            sampler.discard_before(min(starts, default=monotonic_s()))

    @contextlib.contextmanager
    def window(self, name: str = "window", *, stream: Any = None) -> Iterator[Window]:
        """``with meter.window("prefill") as w: ...``; then ``w.measurement``."""
        handle = Window(name)
        self.begin(name, stream=stream)
        try:
            yield handle
        except BaseException:
            with self._lock:
                self._windows.pop(name, None)
            self._trim()
            raise
        handle.measurement = self.end(name)

    def measure(self, fn: Callable[[], Any], name: str = "call") -> tuple[Any, Measurement]:
        """Run ``fn()`` inside a window; return its result and the measurement."""
        with self.window(name) as w:
            out = fn()
        assert w.measurement is not None
        return out, w.measurement

    def calibrate_idle(self, seconds: float = 5.0) -> dict[int, float]:
        """Measure the idle power of each GPU over ``seconds`` (nothing else should run).

        Later measurements report ``idle_power_w`` and ``active_energy_j`` (served energy minus
        idle power times duration). Returns the idle power per GPU, W.
        """
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
            raise ValueError(f"seconds: must be a positive number, got {seconds!r}")
        if not math.isfinite(seconds):
            raise ValueError(f"seconds: must be finite, got {seconds!r}")
        name = "__idle__"
        self.begin(name)
        time.sleep(seconds)
        m = self.end(name)
        self.idle_power_w = {g: e / m.wall_s for g, e in m.energy_j.items()}
        return dict(self.idle_power_w)

    def power_w(self) -> dict[int, float]:
        """Instant power of each GPU now, W."""
        with self._operation("power_w"), _nvml_errors():
            return {g: 1e-3 * self._session.power_mw(p) for g, p in zip(self.gpus, self._physical)}

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Stop the sampler and release NVML; open windows are dropped. Idempotent.

        Safe from any thread: waits for windows being begun or ended by other threads to
        finish; afterwards every operation raises ``ValueError`` ("the meter is closed").
        """
        with self._lock:
            self._closed = True
            me = threading.get_ident()
            # (not for this thread's own operations: close() from inside a sync callback)
            self._idle.wait_for(lambda: not any(t != me for t in self._busy))
            sampler, self._sampler = self._sampler, None
            self._windows.clear()
            self._session = None
        if sampler is not None:
            sampler.stop()

    def __enter__(self) -> EnergyMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def _import_nvtx() -> Any:
    try:
        import nvtx  # type: ignore[import-not-found]
    except ImportError:
        raise ValueError(
            "nvtx=True needs the 'nvtx' package (pip install nvtx); it is not installed"
        ) from None
    return nvtx
