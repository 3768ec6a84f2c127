"""Start a server per configuration: :class:`Launcher`.

Serving parameters such as the tensor-parallel size or the maximum batch are fixed when the
server starts, so profiling them means one server process per configuration. A
:class:`Launcher` wraps a workload (an :class:`~energycore.workloads.OpenAIServer`): for each
configuration it fills the user's command template (``"vllm serve {model}
--tensor-parallel-size {tp} --max-num-seqs {batch} --port {port}"``), starts it, waits until
the server answers its health URL, runs the workload, and stops the process group. A server
that does not come up (out of memory, a crash, no answer in time) or dies while it is measured
makes that configuration *failed* with the reason (:class:`~energycore.errors.LaunchError`),
and the campaign goes on.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from energycore.errors import LaunchError

__all__ = ["OOM_PATTERN", "LaunchError", "Launcher", "free_port"]

#: Log text that marks a launch failure as out of memory (CUDA, PyTorch, vLLM, SGLang, TGI).
OOM_PATTERN = re.compile(
    r"out of memory|OutOfMemory|CUDA_ERROR_OUT_OF_MEMORY|No available memory for the cache"
    r"|not enough (?:GPU )?memory|insufficient (?:GPU )?memory",
    re.IGNORECASE,
)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class _Fields(dict):  # type: ignore[type-arg]
    """Template fields; integral floats print without ``.0``; a missing field names itself."""

    def __missing__(self, key: str) -> Any:
        raise ValueError(
            f"command: field {{{key}}} is neither in the configuration nor in fields "
            f"(known: {', '.join(sorted(self))})"
        )

    def __getitem__(self, key: str) -> Any:
        v = super().__getitem__(key)
        return int(v) if isinstance(v, float) and v.is_integer() else v


class Launcher:
    """Run a workload against a server started for each configuration.

    Parameters
    ----------
    command : str or sequence of str
        The server's command line, with ``{field}`` placeholders filled from the configuration,
        from ``fields`` and ``{port}``. A string is split like a shell would (no shell runs).
    workload : callable
        ``workload(config, meter)``, called with the configuration plus ``port`` once the
        server is healthy (an :class:`~energycore.workloads.OpenAIServer` whose ``base_url``
        holds ``{port}``).
    health_url : str
        Polled until it answers HTTP 200 (``{port}`` and other fields filled).
    fields : dict, optional
        Extra template fields (``{"model": "meta-llama/Llama-3.1-8B-Instruct"}``).
    port : int, optional
        A fixed port (default: a free port per launch).
    ready_timeout_s : float
        Seconds the server may take to become healthy (model loading can take minutes).
    stop_timeout_s : float
        Seconds between SIGTERM and SIGKILL when stopping the server.
    poll_s : float
        Seconds between health checks.
    env : dict, optional
        Environment variables added to this process's for the server.
    cwd : str or Path, optional
        Working directory of the server.
    log_dir : str or Path, optional
        Keep each launch's output there (``launch-<n>.log``); by default the log is kept only
        when the launch fails, in the temporary folder, and its path is in the error.

    Notes
    -----
    The campaign's energy window is around the whole call (start-up included); the energy
    columns of an :class:`~energycore.workloads.OpenAIServer` come from its own window around
    the requests and replace the campaign's.

    Examples
    --------
    >>> from energycore.workloads import OpenAIServer
    >>> wl = OpenAIServer("http://127.0.0.1:{port}/v1", "llama", n_requests=64)
    >>> Launcher("vllm serve {model} -tp {tp} --max-num-seqs {batch} --port {port}", wl,
    ...          fields={"model": "llama"})
    Launcher('vllm serve {model} -tp {tp} --max-num-seqs {batch} --port {port}', workload=OpenAIServer(...))
    """

    def __init__(
        self,
        command: str | Sequence[str],
        workload: Callable[..., Any],
        *,
        health_url: str = "http://127.0.0.1:{port}/health",
        fields: Mapping[str, Any] | None = None,
        port: int | None = None,
        ready_timeout_s: float = 900.0,
        stop_timeout_s: float = 30.0,
        poll_s: float = 0.5,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        log_dir: str | Path | None = None,
    ) -> None:
        if isinstance(command, str):
            if not command.strip():
                raise ValueError("command: empty")
            self.argv = shlex.split(command)
        elif not command or not all(isinstance(a, str) for a in command):
            raise ValueError("command: expected a string or a non-empty sequence of strings")
        else:
            self.argv = list(command)
        self.command = command if isinstance(command, str) else shlex.join(command)
        if not callable(workload):
            raise ValueError(f"workload: expected a callable, got {type(workload).__name__}")
        if not isinstance(health_url, str) or not health_url.startswith(("http://", "https://")):
            raise ValueError(f"health_url: expected an http(s) URL, got {health_url!r}")
        if port is not None and (
            isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536
        ):
            raise ValueError(f"port: expected a TCP port 1..65535, got {port!r}")
        for name, v in (
            ("ready_timeout_s", ready_timeout_s),
            ("stop_timeout_s", stop_timeout_s),
            ("poll_s", poll_s),
        ):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < float("inf"):
                raise ValueError(f"{name}: expected finite seconds > 0, got {v!r}")
        self.workload = workload
        self.health_url = health_url
        self.fields = dict(fields or {})
        self.port = port
        self.ready_timeout_s = float(ready_timeout_s)
        self.stop_timeout_s = float(stop_timeout_s)
        self.poll_s = float(poll_s)
        self.env = dict(env or {})
        self.cwd = cwd
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self._launches = 0

    def __repr__(self) -> str:
        wl = type(self.workload).__name__
        return f"Launcher({self.command!r}, workload={wl}(...))"

    @property
    def requires_meter(self) -> bool:
        """As the wrapped workload."""
        return bool(getattr(self.workload, "requires_meter", True))

    # ------------------------------------------------------------------ one configuration
    def argv_for(self, config: Mapping[str, Any], port: int) -> list[str]:
        """The command line for ``config`` on ``port``."""
        f = _Fields({**self.fields, **config, "port": port})
        return [a.format_map(f) for a in self.argv]

    def __call__(self, config: Mapping[str, Any], meter: Any = None) -> Any:
        """Start the server for ``config``, run the workload, stop the server."""
        port = self.port or free_port()
        argv = self.argv_for(config, port)
        health = self.health_url.format_map(_Fields({**self.fields, **config, "port": port}))
        self._launches += 1
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log_path = self.log_dir / f"launch-{self._launches}.log"
        else:
            fd, name = tempfile.mkstemp(prefix="energycore-launch-", suffix=".log")
            os.close(fd)
            log_path = Path(name)
        keep_log = self.log_dir is not None
        with open(log_path, "wb") as log:
            try:
                proc = subprocess.Popen(
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env={**os.environ, **self.env},
                    cwd=self.cwd,
                    start_new_session=True,  # its own process group, stopped as a whole
                )
            except OSError as e:
                raise LaunchError("crash", f"cannot start {argv[0]!r}: {e}") from None
            try:
                self._wait_ready(proc, health, log_path)
                try:
                    return self.workload({**config, "port": port}, meter)
                except Exception as e:
                    if proc.poll() is None:
                        raise
                    raise self._failure(proc, log_path, "during the run") from e
            except LaunchError:
                keep_log = True
                raise
            finally:
                self._stop(proc)
                if not keep_log:
                    with contextlib.suppress(OSError):
                        log_path.unlink()

    # ------------------------------------------------------------------ process handling
    def _wait_ready(self, proc: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
        import httpx

        deadline = time.monotonic() + self.ready_timeout_s
        while True:
            if proc.poll() is not None:
                raise self._failure(proc, log_path, "before it was healthy")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=min(5.0, self.ready_timeout_s)).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise LaunchError(
                    "timeout",
                    f"{url} did not answer 200 within {self.ready_timeout_s:g} s"
                    f"{_tail(log_path)} (log: {log_path})",
                )
            time.sleep(self.poll_s)

    def _failure(self, proc: subprocess.Popen[bytes], log_path: Path, when: str) -> LaunchError:
        tail = _tail(log_path)
        reason = "out_of_memory" if OOM_PATTERN.search(_read(log_path)) else "crash"
        return LaunchError(
            reason, f"the server exited with code {proc.returncode} {when}{tail} (log: {log_path})"
        )

    def _stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, self.stop_timeout_s), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue


def _read(path: Path) -> str:
    try:
        return path.read_bytes()[-65536:].decode(errors="replace")
    except OSError:
        return ""


def _tail(path: Path, lines: int = 3) -> str:
    text = [ln.strip() for ln in _read(path).splitlines() if ln.strip()]
    return (": " + " | ".join(text[-lines:])) if text else ""
