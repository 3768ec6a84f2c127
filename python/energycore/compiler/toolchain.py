"""Finding an LLVM toolchain (clang, opt, llc, llvm-link, llvm-size) of one version."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_VERSION", "Toolchain", "find_toolchain"]

#: The LLVM major version searched first (``ENERGYCORE_LLVM_VERSION`` overrides it).
DEFAULT_VERSION = 19
_TOOLS = ("clang", "opt", "llc", "llvm-link", "llvm-size")


@dataclass(frozen=True)
class Toolchain:
    """Paths of the LLVM tools of one major version.

    Attributes
    ----------
    version : int
        LLVM major version (from ``opt --version``).
    clang, opt, llc, llvm_link, llvm_size : Path
    """

    version: int
    clang: Path
    opt: Path
    llc: Path
    llvm_link: Path
    llvm_size: Path

    @staticmethod
    def at(version: int | None = None) -> Toolchain:
        """The tools of ``version`` (``clang-19``, ``opt-19``, ...; ``None``: unversioned
        names); ``ValueError`` naming the first missing tool."""
        if version is not None and (
            isinstance(version, bool) or not isinstance(version, int) or version < 1
        ):
            raise ValueError(f"version: expected a positive LLVM major version, got {version!r}")
        paths = []
        for tool in _TOOLS:
            name = tool if version is None else f"{tool}-{version}"
            found = shutil.which(name)
            if found is None and version is not None:  # Debian's /usr/lib/llvm-N/bin
                cand = Path(f"/usr/lib/llvm-{version}/bin/{tool}")
                found = str(cand) if cand.is_file() else None
            if found is None:
                raise ValueError(f"version: {name} not found on PATH")
            paths.append(Path(found))
        out = subprocess.run(
            [str(paths[1]), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
        m = re.search(r"LLVM version (\d+)", out.stdout)
        if m is None:
            raise ValueError(f"version: cannot read the LLVM version of {paths[1]}")
        got = int(m.group(1))
        if version is not None and got != version:
            raise ValueError(f"version: {paths[1]} is LLVM {got}, not {version}")
        return Toolchain(got, *paths)


def find_toolchain(version: int | None = None) -> Toolchain | None:
    """The LLVM toolchain to use, or ``None`` when none is installed.

    ``version`` (or the ``ENERGYCORE_LLVM_VERSION`` environment variable) asks for one major
    version only; otherwise :data:`DEFAULT_VERSION` is tried first, then other versions from
    newest to oldest, then the unversioned tool names.
    """
    env = os.environ.get("ENERGYCORE_LLVM_VERSION")
    if version is None and env:
        try:
            version = int(env)
        except ValueError:
            raise ValueError(f"ENERGYCORE_LLVM_VERSION: expected an integer, got {env!r}") from None
    if version is not None:
        try:
            return Toolchain.at(version)
        except ValueError:
            return None
    for v in [DEFAULT_VERSION, *(v for v in range(30, 9, -1) if v != DEFAULT_VERSION)]:
        if shutil.which(f"opt-{v}") or Path(f"/usr/lib/llvm-{v}/bin/opt").is_file():
            try:
                return Toolchain.at(v)
            except ValueError:
                continue
    try:
        return Toolchain.at(None)
    except (ValueError, OSError, subprocess.SubprocessError):
        return None
