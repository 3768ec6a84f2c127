"""Every code block of README.md and docs/*.md runs as pasted.

A page is a script: its ```python blocks run in order in one namespace, in a fresh temporary
working directory (with ``data/`` linked to the public datasets when they are present). Its
```bash blocks run their ``energycore ...`` commands (continuation lines joined, comments
dropped; ``pip install ...`` and ``python -m pytest`` steps left out: the suite runs in the
installed environment and is that pytest run) in
the same directory. Blocks fenced as ``text``, ``console``, ``toml`` or without a language are
output, pseudo-code or file contents and are not run.

A block may be preceded (blank lines allowed) by one directive, an HTML comment that renders
to nothing on the site:

- ``<!-- docs-test: expect NoGPUError -->``: needs a GPU; on a machine without one it must
  raise :class:`energycore.NoGPUError` (and it must not raise anything else); with a GPU
  (``ENERGYCORE_DOCS_GPU=1``) it must run;
- ``<!-- docs-test: requires MODULE[, MODULE] -->``: skipped with a reason unless the modules
  import (optional dependencies: ``torch``, ``kernel_tuner``, ...);
- ``<!-- docs-test: requires-file PATH -->``: skipped unless PATH exists (relative to the
  working directory: ``data/...`` for the public datasets);
- ``<!-- docs-test: requires-command NAME[, NAME] -->``: skipped unless the programs are on
  PATH (``clang-19``);
- ``<!-- docs-test: skip REASON -->``: not run (a real server, minutes of benchmark); the
  reason is shown in the test report. Python blocks may not use it.

Directives combine with ``;`` (``requires torch; expect NoGPUError``). Each block has a
timeout (``BLOCK_TIMEOUT_S``); a page stops at its first failing block, and the later blocks
of that page fail with a pointer to it.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import energycore

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHARED_DATA = ROOT.parent / "shared" / "data"
BLOCK_TIMEOUT_S = 60
RUN_LANGS = {"python", "bash"}
PYTEST = ["python", "-m", "pytest"]
#: languages of blocks that are not run (output, pseudo-code, file contents)
INERT_LANGS = {"", "text", "console", "toml", "yaml", "json", "cpp", "c", "ini"}

_FENCE = re.compile(r"^```([\w+-]*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
_DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(.*?)\s*-->\s*\Z", re.S)


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    code: str
    expect: str | None = None
    requires: list[str] = field(default_factory=list)
    requires_file: list[str] = field(default_factory=list)
    requires_command: list[str] = field(default_factory=list)
    skip: str | None = None

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def parse(page: Path) -> list[Block]:
    """The fenced blocks of a page with their directives."""
    text = page.read_text()
    blocks = []
    for m in _FENCE.finditer(text):
        lang = m.group(1).lower()
        b = Block(page, text.count("\n", 0, m.start()) + 1, lang, m.group(2))
        d = _DIRECTIVE.search(text[max(0, m.start() - 300) : m.start()])
        for part in d.group(1).split(";") if d else []:
            key, _, arg = part.strip().partition(" ")
            arg = arg.strip()
            if key == "expect":
                b.expect = arg
            elif key == "requires":
                b.requires += [a.strip() for a in arg.split(",") if a.strip()]
            elif key == "requires-command":
                b.requires_command += [a.strip() for a in arg.split(",") if a.strip()]
            elif key == "requires-file":
                b.requires_file.append(arg)
            elif key == "skip" and arg:
                b.skip = arg
            else:
                raise ValueError(f"{b.id}: unknown docs-test directive {part.strip()!r}")
        blocks.append(b)
    return blocks


ALL_BLOCKS = [b for p in PAGES for b in parse(p)]
RUN_BLOCKS = [b for b in ALL_BLOCKS if b.lang in RUN_LANGS]


def test_every_block_is_classified() -> None:
    """A block in an unknown language would silently not run."""
    unknown = [f"{b.id} ({b.lang})" for b in ALL_BLOCKS if b.lang not in RUN_LANGS | INERT_LANGS]
    assert not unknown, f"fence these as python/bash (run) or text (not run): {unknown}"


def test_python_blocks_are_not_skipped() -> None:
    bad = [b.id for b in ALL_BLOCKS if b.lang == "python" and b.skip]
    assert not bad, f"python blocks must run (or expect NoGPUError): {bad}"


def test_no_pythonpath_instructions() -> None:
    """``PYTHONPATH=python`` only works in a dev build; docs say ``python bench/...``."""
    bad = [b.id for b in ALL_BLOCKS if b.lang == "bash" and "PYTHONPATH=python" in b.code]
    assert not bad, bad


@dataclass
class PageState:
    cwd: Path
    namespace: dict[str, Any]
    failed: str | None = None


_STATES: dict[Path, PageState] = {}


@pytest.fixture
def page_state(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    block: Block = request.node.callspec.params["block"]
    state = _STATES.get(block.page)
    if state is None:
        cwd = tmp_path_factory.mktemp(block.page.stem)
        if SHARED_DATA.is_dir():
            (cwd / "data").symlink_to(SHARED_DATA)
        state = PageState(cwd, {"__name__": "__docs__"})
        _STATES[block.page] = state
    old = Path.cwd()
    os.chdir(state.cwd)
    try:
        yield state
    finally:
        os.chdir(old)


class _Timeout(Exception):
    pass


@pytest.fixture
def timeout() -> Iterator[None]:
    def _raise(signum: int, frame: types.FrameType | None) -> None:
        raise _Timeout(f"block ran longer than {BLOCK_TIMEOUT_S} s")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(BLOCK_TIMEOUT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _has_gpu() -> bool:
    return os.environ.get("ENERGYCORE_DOCS_GPU") == "1"


def _skip_reason(block: Block, cwd: Path) -> str | None:
    if block.skip:
        return f"{block.id}: {block.skip}"
    for mod in block.requires:
        if importlib.util.find_spec(mod) is None:
            return f"{block.id}: needs the optional dependency {mod!r}"
    for exe in block.requires_command:
        if shutil.which(exe) is None:
            return f"{block.id}: needs the command {exe!r} on PATH"
    for f in block.requires_file:
        if not (cwd / f).exists():
            return f"{block.id}: needs {f} (the public datasets, not present here)"
    return None


def _run_python(block: Block, ns: dict[str, Any]) -> None:
    code = compile(ast.parse(block.code, filename=block.id), block.id, "exec")
    if block.expect and not _has_gpu():
        expected = getattr(energycore, block.expect)
        with pytest.raises(expected):
            exec(code, ns)
    else:
        exec(code, ns)


def _commands(code: str) -> list[list[str]]:
    """The ``energycore ...`` commands of a bash block, as argument lists."""
    out = []
    for line in re.sub(r"\\\n", " ", code).splitlines():
        words = shlex.split(line, comments=True)
        steps: list[list[str]] = [[]]
        for w in words:  # `pip install ... && energycore demo`
            if w == "&&":
                steps.append([])
            else:
                steps[-1].append(w)
        for argv in steps:
            if not argv or argv[:2] == ["pip", "install"] or argv[:3] == PYTEST:
                continue  # the suite runs in the installed environment, and is this run
            if argv[0] != "energycore":
                raise ValueError(f"not an energycore command: {line!r} (mark the block skip)")
            if any(op in argv for op in ("|", "||", ">", ";", "&")):
                raise ValueError(f"shell operators in {line!r}: mark the block skip")
            out.append(argv)
    return out


def _run_bash(block: Block, cwd: Path) -> None:
    env = dict(os.environ)
    pkg = str(Path(energycore.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([pkg, env.get("PYTHONPATH", "")])
    env["COLUMNS"] = "120"
    for argv in _commands(block.code):
        cmd = [sys.executable, "-m", "energycore.app.cli", *argv[1:]]
        r = subprocess.run(
            cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S
        )
        assert r.returncode == 0, (
            f"{block.id}: {' '.join(argv)} exited {r.returncode}\n{r.stdout[-2000:]}\n"
            f"{r.stderr[-2000:]}"
        )


@pytest.mark.parametrize("block", RUN_BLOCKS, ids=[b.id for b in RUN_BLOCKS])
def test_block(block: Block, page_state: PageState, timeout: None) -> None:
    if page_state.failed:
        pytest.fail(f"an earlier block of this page failed: {page_state.failed}")
    reason = _skip_reason(block, page_state.cwd)
    if reason:
        pytest.skip(reason)
    try:
        if block.lang == "python":
            _run_python(block, page_state.namespace)
        else:
            _run_bash(block, page_state.cwd)
    except BaseException:
        page_state.failed = block.id
        raise


def test_cli_reference_covers_the_app() -> None:
    """docs/cli.md is filled from the typer app: every command and option is in it."""
    spec = importlib.util.spec_from_file_location(
        "cli_reference", ROOT / "scripts/cli_reference.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.MARKER in (ROOT / "docs/cli.md").read_text()
    text = mod.on_page_markdown((ROOT / "docs/cli.md").read_text(), None)
    assert mod.MARKER not in text
    for name, cmd in mod.commands().items():
        assert f"## `energycore {name}`" in text
        for p in cmd.params:
            for opt in getattr(p, "opts", []):
                if opt.startswith("-"):
                    assert f"`{opt}`" in text, (name, opt)
    help_out = subprocess.run(
        [sys.executable, "-m", "energycore.app.cli", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        check=True,
    ).stdout
    for name in mod.commands():
        assert name in help_out
