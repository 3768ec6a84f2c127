"""Workloads that drive a real serving stack (the public home of :mod:`energycore.campaign`'s).

- :class:`OpenAIServer`: stream requests to an OpenAI-compatible server (vLLM, SGLang, TGI),
  recording TTFT, ITL, tokens, errors and the energy of the run;
- :class:`Launcher`: start the server per configuration, wait for health, tear it down, and
  record launch failures (out of memory, crash, timeout) as failed configurations.
"""

from __future__ import annotations

from energycore.campaign.launcher import OOM_PATTERN, Launcher, free_port
from energycore.campaign.workloads import APIS, OpenAIServer, RequestResult, summarise
from energycore.errors import LaunchError, ServerUnreachableError

__all__ = [
    "APIS",
    "OOM_PATTERN",
    "LaunchError",
    "Launcher",
    "OpenAIServer",
    "RequestResult",
    "ServerUnreachableError",
    "free_port",
    "summarise",
]
