"""Workloads that drive a real serving stack: :class:`OpenAIServer`.

vLLM, SGLang, TGI and most other inference servers speak the OpenAI HTTP API. An
:class:`OpenAIServer` streams requests to such a server (``/v1/completions`` or
``/v1/chat/completions``) at a given concurrency and, optionally, a Poisson request rate, and
records per request the time to first token (TTFT), the inter-token latencies (ITL), the
tokens and the errors. Called by a :class:`~energycore.Campaign`, it opens an energy window of
the campaign's :class:`~energycore.measure.EnergyMeter` around the requests only (not around a
server start-up by a :class:`~energycore.campaign.launcher.Launcher`).

The HTTP client is ``httpx`` (``pip install 'energycore[serve]'``).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from energycore.errors import ServerUnreachableError

__all__ = ["APIS", "OpenAIServer", "RequestResult", "ServerUnreachableError", "summarise"]

#: The OpenAI endpoints an :class:`OpenAIServer` can drive.
APIS = ("completions", "chat")
#: Words of the synthetic prompts (common English words: about one token each).
_WORDS = [
    "the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "energy",
    "flows", "through", "every", "wire", "and", "each", "token", "costs", "some", "joules",
    "on", "the", "node",
]  # fmt: skip


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:
        raise ImportError(
            "OpenAIServer needs httpx: pip install 'energycore[serve]' (or pip install httpx)"
        ) from None
    return httpx


@dataclass
class RequestResult:
    """One streamed request.

    Attributes
    ----------
    ok : bool
        The request completed (HTTP 200 and a finished stream).
    start_s : float
        Send time, seconds from the start of the run.
    ttft_s : float
        Time to the first generated text (NaN when none came).
    latency_s : float
        Time to the end of the stream (or to the error).
    itl_s : list of float
        Gaps between consecutive chunks of generated text.
    prompt_tokens, output_tokens : int
        From the server's ``usage`` when it sends one, else the prompt's words and the count of
        text chunks.
    error : str
        Why the request failed ("" when ``ok``).
    connect_error : bool
        The connection could not be made or broke (refused, connect timeout, the server closed
        it in the middle of a response): the server is gone, not the request at fault.
    """

    ok: bool
    start_s: float
    ttft_s: float = math.nan
    latency_s: float = math.nan
    itl_s: list[float] = field(default_factory=list)
    prompt_tokens: int = 0
    output_tokens: int = 0
    error: str = ""
    connect_error: bool = False


def _pct(values: Sequence[float], q: float) -> float:
    a = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    return float(np.percentile(a, q)) if a.size else math.nan


def _mean(values: Sequence[float]) -> float:
    a = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    return float(a.mean()) if a.size else math.nan


def summarise(results: Sequence[RequestResult], duration_s: float) -> dict[str, Any]:
    """Columns of one run: counts, throughput, and TTFT / ITL / TPOT means and percentiles.

    ``tpot_s`` of a request is ``(latency - ttft) / (output_tokens - 1)``; the column is the mean
    over the completed requests with at least two output tokens.
    """
    ok = [r for r in results if r.ok]
    errors = [r.error for r in results if not r.ok]
    itl = [g for r in ok for g in r.itl_s]
    tpot = [
        (r.latency_s - r.ttft_s) / (r.output_tokens - 1)
        for r in ok
        if r.output_tokens > 1 and math.isfinite(r.ttft_s)
    ]
    out_tokens = sum(r.output_tokens for r in ok)
    row: dict[str, Any] = {
        "n_requests": len(results),
        "n_ok": len(ok),
        "n_errors": len(errors),
        "error_rate": len(errors) / len(results) if results else math.nan,
        "first_error": errors[0] if errors else "",
        "duration_s": duration_s,
        "request_rate_rps": len(ok) / duration_s if duration_s > 0 else math.nan,
        "output_tokens": out_tokens,
        "throughput_tok_s": out_tokens / duration_s if duration_s > 0 else math.nan,
        "prompt_tokens_mean": _mean([float(r.prompt_tokens) for r in ok]),
        "output_tokens_mean": _mean([float(r.output_tokens) for r in ok]),
        "request_latency_s": _mean([r.latency_s for r in ok]),
        "ttft_s": _mean([r.ttft_s for r in ok]),
        "itl_s": _mean(itl),
        "tpot_s": _mean(tpot),
    }
    for q in (50, 90, 99):
        row[f"ttft_p{q}_s"] = _pct([r.ttft_s for r in ok], q)
        row[f"itl_p{q}_s"] = _pct(itl, q)
        row[f"tpot_p{q}_s"] = _pct(tpot, q)
    return row


class OpenAIServer:
    """Stream requests to an OpenAI-compatible server; a :class:`~energycore.Campaign` workload.

    Parameters
    ----------
    base_url : str
        The API root, e.g. ``"http://127.0.0.1:8000/v1"``. ``{port}`` and other ``{axis}``
        fields are filled from the configuration (a :class:`Launcher` sets ``port``).
    model : str
        The ``model`` field of every request (the served model's name).
    prompts : sequence of str, optional
        Prompts, used in turn. Default: synthetic prompts of ``input_len`` words (from the
        configuration, else 128).
    concurrency : int, optional
        Requests in flight at once. Default: the configuration's ``batch`` (the server's
        maximum batch), else 8.
    request_rate : float, optional
        Mean requests per second (Poisson arrivals, seeded); default: as fast as
        ``concurrency`` allows.
    n_requests : int
        Requests per configuration.
    max_tokens : int, optional
        Output tokens per request. Default: the configuration's ``output_len``, else 128.
    api : {"completions", "chat"}
        ``/completions`` (``prompt``) or ``/chat/completions`` (``messages``).
    timeout_s : float
        Seconds a request may take in all before it counts as failed.
    connect_timeout_s : float
        Seconds to wait for a connection.
    max_error_rate : float
        A run with a larger share of failed requests (HTTP errors, timeouts, broken streams)
        raises, so the configuration is recorded as failed with the first error; a smaller
        share is reported in ``n_errors`` and ``error_rate``.
    extra_body : dict, optional
        Merged into every request body (``{"ignore_eos": True}`` for vLLM, so that every request
        generates ``max_tokens``).
    headers : dict, optional
        HTTP headers (``{"Authorization": "Bearer ..."}``).
    seed : int
        Seed of the arrival times.

    Notes
    -----
    Called as ``workload(config, meter)``, the run returns its columns (see :func:`summarise`)
    and, with a meter, the energy of a window around the requests: ``energy_j`` (joules per
    *batch*, i.e. per request times the configuration's ``batch``, the unit of
    :class:`~energycore.EnergyModel`), ``energy_per_request_j``, ``serve_energy_j`` (the whole
    run), ``avg_power_w``, ``method``, ``energy_gpu{i}_j``, and ``latency_s`` (mean request
    latency). A run in which a request could not connect, or lost its connection (the server
    went away), raises :class:`~energycore.errors.ServerUnreachableError`, which stops a
    campaign without recording the configuration, so that ``resume`` measures it later (under
    a :class:`~energycore.workloads.Launcher`, a server process that exited makes it a failed
    configuration instead).

    Examples
    --------
    >>> wl = OpenAIServer("http://127.0.0.1:8000/v1", "llama", n_requests=32)
    >>> wl
    OpenAIServer('http://127.0.0.1:8000/v1', model='llama', api='completions', n_requests=32)
    """

    requires_meter = True

    def __init__(
        self,
        base_url: str,
        model: str,
        prompts: Sequence[str] | None = None,
        *,
        concurrency: int | None = None,
        request_rate: float | None = None,
        n_requests: int = 64,
        max_tokens: int | None = None,
        api: str = "completions",
        timeout_s: float = 300.0,
        connect_timeout_s: float = 10.0,
        max_error_rate: float = 0.5,
        extra_body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        seed: int = 0,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url: expected an http(s) URL, got {base_url!r}")
        if not isinstance(model, str) or not model:
            raise ValueError(f"model: expected the served model's name, got {model!r}")
        if prompts is not None:
            if isinstance(prompts, str) or not all(isinstance(p, str) for p in prompts):
                raise ValueError("prompts: expected a sequence of strings")
            if not prompts:
                raise ValueError("prompts: empty")
        for name, v in (("concurrency", concurrency), ("max_tokens", max_tokens)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"{name}: expected a positive integer, got {v!r}")
        if isinstance(n_requests, bool) or not isinstance(n_requests, int) or n_requests < 1:
            raise ValueError(f"n_requests: expected a positive integer, got {n_requests!r}")
        if request_rate is not None and not (
            isinstance(request_rate, (int, float)) and request_rate > 0
        ):
            raise ValueError(
                f"request_rate: expected requests per second > 0, got {request_rate!r}"
            )
        if api not in APIS:
            raise ValueError(f"api: expected one of {', '.join(APIS)}, got {api!r}")
        for name, sec in (("timeout_s", timeout_s), ("connect_timeout_s", connect_timeout_s)):
            if not (isinstance(sec, (int, float)) and 0 < sec < math.inf):
                raise ValueError(f"{name}: expected finite seconds > 0, got {sec!r}")
        if not (isinstance(max_error_rate, (int, float)) and 0 <= max_error_rate <= 1):
            raise ValueError(f"max_error_rate: expected a share in [0, 1], got {max_error_rate!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.prompts = list(prompts) if prompts is not None else None
        self.concurrency = concurrency
        self.request_rate = None if request_rate is None else float(request_rate)
        self.n_requests = n_requests
        self.max_tokens = max_tokens
        self.api = api
        self.timeout_s = float(timeout_s)
        self.connect_timeout_s = float(connect_timeout_s)
        self.max_error_rate = float(max_error_rate)
        self.extra_body = dict(extra_body or {})
        self.headers = dict(headers or {})
        self.seed = seed

    def __repr__(self) -> str:
        return (
            f"OpenAIServer({self.base_url!r}, model={self.model!r}, api={self.api!r}, "
            f"n_requests={self.n_requests})"
        )

    # ------------------------------------------------------------------ one configuration
    def url(self, config: Mapping[str, Any] | None = None) -> str:
        """The endpoint for ``config`` (``{field}`` of ``base_url`` filled from it)."""
        base = (
            self.base_url.format_map(_Fields(config or {}))
            if "{" in self.base_url
            else self.base_url
        )
        return f"{base}/{'chat/completions' if self.api == 'chat' else 'completions'}"

    def _prompts(self, config: Mapping[str, Any]) -> list[str]:
        if self.prompts is not None:
            return [self.prompts[i % len(self.prompts)] for i in range(self.n_requests)]
        n_words = max(1, int(config.get("input_len", 128)))
        out = []
        for i in range(self.n_requests):  # distinct prompts, so no prefix cache hides prefill
            words = [_WORDS[(i + k * 7) % len(_WORDS)] for k in range(n_words - 1)]
            out.append(f"{i} " + " ".join(words))
        return out

    def _body(self, prompt: str, max_tokens: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.api == "chat":
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        body.update(self.extra_body)
        return body

    def run(self, config: Mapping[str, Any] | None = None) -> list[RequestResult]:
        """Send the requests for ``config`` and return one :class:`RequestResult` each."""
        config = dict(config or {})
        conc = self.concurrency or int(config.get("batch", 8))
        max_tokens = self.max_tokens or int(config.get("output_len", 128))
        coro = self._run(self.url(config), self._prompts(config), conc, max_tokens)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coro)
        box: list[Any] = []  # called from a running loop (a notebook): run in a thread
        t = threading.Thread(target=lambda: box.append(asyncio.run(coro)))
        t.start()
        t.join()
        return box[0]

    def __call__(self, config: Mapping[str, Any], meter: Any = None) -> dict[str, Any]:
        """Run one configuration and return its columns (see the class notes)."""
        window = None
        t0 = time.perf_counter()
        if meter is not None:
            with meter.window("serve") as w:
                results = self.run(config)
            window = w.measurement
        else:
            results = self.run(config)
        duration = time.perf_counter() - t0
        lost = [r for r in results if r.connect_error]
        if lost:
            n_ok = sum(r.ok for r in results)
            raise ServerUnreachableError(
                f"{self.url(config)}: "
                + (
                    "no request could connect"
                    if n_ok == 0 and len(lost) == len(results)
                    else f"the server went away during the run ({len(lost)} of {len(results)} "
                    "requests lost their connection)"
                )
                + f": {lost[0].error}"
            )
        row = summarise(results, window.wall_s if window is not None else duration)
        if row["error_rate"] > self.max_error_rate or row["n_ok"] == 0:
            raise RuntimeError(
                f"{row['n_errors']} of {row['n_requests']} requests failed; first error: "
                f"{row['first_error']}"
            )
        row["latency_s"] = row["request_latency_s"]
        if "input_len" not in config:
            row["input_len"] = row["prompt_tokens_mean"]
        if "output_len" not in config:
            row["output_len"] = row["output_tokens_mean"]
        if window is not None:
            # the energy columns are those of this window (around the requests only), not of
            # a campaign window that may hold a server start-up too
            batch = float(config.get("batch", self.concurrency or 8))
            per_request = window.total_energy_j / row["n_ok"]
            row.update(window.to_dict())
            row.pop("time_s")
            row.update(
                energy_j=per_request * batch,
                energy_per_request_j=per_request,
                serve_energy_j=window.total_energy_j,
                energy_per_token_j=(
                    window.total_energy_j / row["output_tokens"]
                    if row["output_tokens"]
                    else math.nan
                ),
            )
        return row

    # ------------------------------------------------------------------ the client
    async def _run(
        self, url: str, prompts: list[str], concurrency: int, max_tokens: int
    ) -> list[RequestResult]:
        httpx = _httpx()
        rng = random.Random(self.seed)
        sem = asyncio.Semaphore(concurrency)
        timeout = httpx.Timeout(self.timeout_s, connect=self.connect_timeout_s)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        t0 = time.perf_counter()
        async with httpx.AsyncClient(timeout=timeout, limits=limits, headers=self.headers) as cl:

            async def one(prompt: str, at: float) -> RequestResult:
                delay = at - (time.perf_counter() - t0)
                if delay > 0:
                    await asyncio.sleep(delay)
                async with sem:
                    return await self._request(cl, httpx, url, prompt, max_tokens, t0)

            arrivals, t = [], 0.0
            for _ in prompts:
                arrivals.append(t)
                if self.request_rate is not None:
                    t += rng.expovariate(self.request_rate)
            return list(await asyncio.gather(*(one(p, a) for p, a in zip(prompts, arrivals))))

    async def _request(
        self, cl: Any, httpx: Any, url: str, prompt: str, max_tokens: int, t0: float
    ) -> RequestResult:
        start = time.perf_counter()
        res = RequestResult(ok=False, start_s=start - t0, prompt_tokens=len(prompt.split()))
        try:
            finished, usage, chunks = await asyncio.wait_for(
                self._stream(cl, url, prompt, max_tokens, start, res), self.timeout_s
            )
        except httpx.ConnectTimeout:
            res.error, res.connect_error = "connect timeout", True
            return _done(res, start)
        except (httpx.NetworkError, httpx.RemoteProtocolError) as e:
            # refused, reset, or closed in the middle of a stream: the server went away
            res.error, res.connect_error = f"{type(e).__name__}: {e}".rstrip(": "), True
            return _done(res, start)
        except (asyncio.TimeoutError, TimeoutError):
            res.error = f"timeout after {self.timeout_s:g} s"
            return _done(res, start)
        except httpx.HTTPError as e:
            res.error = f"{type(e).__name__}: {e}" if str(e) else f"{type(e).__name__}"
            return _done(res, start)
        except json.JSONDecodeError as e:
            res.error = f"malformed stream chunk: {e}"
            return _done(res, start)
        if res.error:
            return _done(res, start)
        if not finished:
            res.error = "the stream ended without [DONE]"
            return _done(res, start)
        res.ok = True
        res.output_tokens = chunks
        if usage:
            res.prompt_tokens = int(usage.get("prompt_tokens", res.prompt_tokens))
            res.output_tokens = int(usage.get("completion_tokens", chunks))
        return _done(res, start)

    async def _stream(
        self, cl: Any, url: str, prompt: str, max_tokens: int, start: float, res: RequestResult
    ) -> tuple[bool, dict[str, Any] | None, int]:
        """Read one response stream into ``res``; returns (finished, usage, text chunks)."""
        last: float | None = None
        chunks = 0
        usage: dict[str, Any] | None = None
        async with cl.stream("POST", url, json=self._body(prompt, max_tokens)) as resp:
            if resp.status_code != 200:
                body = (await resp.aread()).decode(errors="replace")[:200]
                res.error = f"HTTP {resp.status_code}: {body.strip()}"
                return False, None, 0
            async for line in resp.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return True, usage, chunks
                chunk = json.loads(data)
                if chunk.get("usage"):
                    usage = chunk["usage"]
                if "error" in chunk:
                    res.error = f"server error: {chunk['error']}"
                    return False, None, 0
                if _text(chunk, self.api):
                    now = time.perf_counter()
                    if last is None:
                        res.ttft_s = now - start
                    else:
                        res.itl_s.append(now - last)
                    last = now
                    chunks += 1
        return False, usage, chunks


def _done(res: RequestResult, start: float) -> RequestResult:
    res.latency_s = time.perf_counter() - start
    return res


def _text(chunk: Mapping[str, Any], api: str) -> str:
    choices = chunk.get("choices") or []
    if not choices:
        return ""
    c = choices[0]
    if api == "chat":
        return str((c.get("delta") or {}).get("content") or "")
    return str(c.get("text") or "")


class _Fields(dict):  # type: ignore[type-arg]
    """``str.format_map`` fields from a configuration; integers print without ``.0``."""

    def __missing__(self, key: str) -> str:
        raise ValueError(f"base_url: field {{{key}}} is not in the configuration")

    def __getitem__(self, key: str) -> Any:
        v = super().__getitem__(key)
        return int(v) if isinstance(v, float) and v.is_integer() else v
