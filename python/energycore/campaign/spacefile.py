"""Space files: a profiling campaign against a real server, described in TOML (or YAML).

``energycore profile space.toml`` reads one::

    [space.axes]                 # the configurations (a ConfigSpace)
    tp = [1, 2, 4]
    batch = [8, 32, 128]

    [space]
    constraints = ["tp <= 4"]
    fixed = { input_len = 512, output_len = 128 }

    [campaign]                   # Campaign options
    plan = "all"                 # or random / latin_hypercube / d_optimal with n = ...
    journal = "profile.jsonl"    # relative paths are relative to this file
    seed = 0

    [server]                     # OpenAIServer options
    base_url = "http://127.0.0.1:{port}/v1"
    model = "meta-llama/Llama-3.1-8B-Instruct"
    n_requests = 64

    [launch]                     # optional: a Launcher that starts the server per configuration
    command = "vllm serve {model} --tensor-parallel-size {tp} --max-num-seqs {batch} --port {port}"
    fields = { model = "meta-llama/Llama-3.1-8B-Instruct" }

Without ``[launch]`` the server is one already running at ``base_url``. Unknown sections and
keys are errors that name them.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from energycore.campaign.campaign import Campaign
from energycore.campaign.launcher import Launcher
from energycore.campaign.workloads import OpenAIServer

__all__ = ["ProfileSpec", "load_space_file"]

_SECTIONS = {"space", "campaign", "server", "launch"}
_SPACE_KEYS = {"axes", "constraints", "fixed", "derived"}
_CAMPAIGN_KEYS = {"plan", "n", "seed", "journal", "warmup", "cooldown_s", "gpus"}
_SERVER_KEYS = {
    "base_url", "model", "prompts", "concurrency", "request_rate", "n_requests", "max_tokens",
    "api", "timeout_s", "connect_timeout_s", "max_error_rate", "extra_body", "headers", "seed",
}  # fmt: skip
_LAUNCH_KEYS = {
    "command", "health_url", "fields", "port", "ready_timeout_s", "stop_timeout_s", "poll_s",
    "env", "cwd", "log_dir",
}  # fmt: skip


@dataclass
class ProfileSpec:
    """A parsed space file: what :meth:`campaign` needs."""

    path: Path
    space: Any
    campaign: dict[str, Any] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    launch: dict[str, Any] | None = None

    def workload(self) -> Any:
        """The :class:`OpenAIServer`, wrapped in a :class:`Launcher` when the file has one."""
        wl = OpenAIServer(**self.server)
        if self.launch is None:
            return wl
        launch = dict(self.launch)
        return Launcher(launch.pop("command"), wl, **launch)

    def make_campaign(self, journal: str | Path | None = None, **overrides: Any) -> Campaign:
        """The :class:`~energycore.Campaign` (``journal`` and other options override the file's)."""
        opts = {**self.campaign, **overrides}
        if journal is not None:
            opts["journal"] = journal
        opts.setdefault("n", None)
        return Campaign(self.space, self.workload(), **opts)


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ImportError(f"{path}: YAML space files need PyYAML: pip install pyyaml") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: not valid YAML: {e}") from None
    else:
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path}: not valid TOML: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a table of sections ({', '.join(sorted(_SECTIONS))})")
    return data


def _section(data: Mapping[str, Any], name: str, keys: set[str], path: Path) -> dict[str, Any]:
    sec = data.get(name, {})
    if not isinstance(sec, Mapping):
        raise ValueError(f"{path}: [{name}] must be a table")
    unknown = sorted(set(sec) - keys)
    if unknown:
        raise ValueError(
            f"{path}: unknown key(s) in [{name}]: {', '.join(unknown)}; expected some of "
            f"{', '.join(sorted(keys))}"
        )
    return dict(sec)


def load_space_file(path: str | Path) -> ProfileSpec:
    """Read a space file (``.toml``, or ``.yaml``/``.yml``) into a :class:`ProfileSpec`.

    Raises ``ValueError`` naming the file and the bad section or key.
    """
    from energycore.space.configspace import ConfigSpace

    path = Path(path)
    data = _read(path)
    unknown = sorted(set(data) - _SECTIONS)
    if unknown:
        raise ValueError(
            f"{path}: unknown section(s) {', '.join(unknown)}; expected "
            f"{', '.join(sorted(_SECTIONS))}"
        )
    for need in ("space", "server"):
        if need not in data:
            raise ValueError(f"{path}: missing section [{need}]")
    sp = _section(data, "space", _SPACE_KEYS, path)
    if not isinstance(sp.get("axes"), Mapping) or not sp["axes"]:
        raise ValueError(f"{path}: [space.axes] must list at least one axis (tp = [1, 2] ...)")
    try:
        space = ConfigSpace(
            sp["axes"], sp.get("constraints", ()), fixed=sp.get("fixed"), derived=sp.get("derived")
        )
    except ValueError as e:
        raise ValueError(f"{path}: [space]: {e}") from None
    here = path.resolve().parent
    camp = _section(data, "campaign", _CAMPAIGN_KEYS, path)
    if "journal" in camp:
        camp["journal"] = here / str(camp["journal"])
    server = _section(data, "server", _SERVER_KEYS, path)
    for need in ("base_url", "model"):
        if need not in server:
            raise ValueError(f"{path}: [server] needs {need}")
    launch = None
    if "launch" in data:
        launch = _section(data, "launch", _LAUNCH_KEYS, path)
        if "command" not in launch:
            raise ValueError(f"{path}: [launch] needs command")
        for k in ("cwd", "log_dir"):
            if k in launch:
                launch[k] = here / str(launch[k])
        launch.setdefault("cwd", here)
    spec = ProfileSpec(path=path, space=space, campaign=camp, server=server, launch=launch)
    try:  # check every option now, with the file's name in the message
        spec.workload()
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: {e}") from None
    return spec
