"""Task runner: `nox -s tests`, `nox -s lint`, `nox -s bench`, `nox -s stubs`, `nox -s docs`,
and for the C++ core `nox -s werror` (warnings as errors) and `nox -s asan` (sanitizers)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]


@nox.session
def tests(session: nox.Session) -> None:
    """Install as a user would (README command 2) and run the test suite."""
    session.install(".[test,ray]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (check + format) and mypy over the package."""
    session.install("ruff", "mypy", "numpy")
    session.run("ruff", "check", "python", "tests", "bench")
    session.run("ruff", "format", "--check", "python", "tests", "bench")
    session.run("mypy", "python/energycore")


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmark scripts whose figures docs/benchmarks.md records."""
    session.install(".[bench]")
    for script in (
        "bench_fit.py",
        "bench_space.py",
        "bench_gbdt.py",
        "bench_measure.py",
        "eval_selection.py",
    ):
        session.run("python", f"bench/{script}")


@nox.session
def stubs(session: nox.Session) -> None:
    """Regenerate python/energycore/_core.pyi from the built module."""
    session.install(".", "pybind11-stubgen")
    session.run("bash", "scripts/gen-stubs", external=True)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site (mkdocs-material, mkdocstrings) with warnings as errors."""
    session.install(".[docs]")
    session.run("mkdocs", "build", "--strict", "-d", "build/site")


_TEST_DEPS = ["numpy", "typer", "rich", "pytest", "hypothesis", "scipy", "pandas", "scikit-learn"]


def _cmake_build(session: nox.Session, build_dir: str, build_type: str, *defs: str) -> Path:
    """Configures and builds the extension into `build_dir` by hand (no pip); returns the .so."""
    session.install("pybind11", "cmeel-eigen", "cmake", "ninja")
    python = session.run("python", "-c", "import sys; print(sys.executable)", silent=True)
    cmakedir = session.run("python", "-m", "pybind11", "--cmakedir", silent=True)
    session.run(
        "cmake", "-S", ".", "-B", build_dir, "-G", "Ninja", f"-DCMAKE_BUILD_TYPE={build_type}",
        f"-Dpybind11_DIR={str(cmakedir).strip()}", f"-DPython_EXECUTABLE={str(python).strip()}",
        *defs,
    )  # fmt: skip
    session.run("cmake", "--build", build_dir, "-j", os.environ.get("JOBS", "2"))
    return next(Path(build_dir).glob("_core*.so"))


@nox.session
def werror(session: nox.Session) -> None:
    """Builds the C++ core and bindings with -Werror (CMake option ENERGYCORE_WERROR)."""
    _cmake_build(session, "build/werror", "Release", "-DENERGYCORE_WERROR=ON")


@nox.session
def asan(session: nox.Session) -> None:
    """Debug build (assertions on) with AddressSanitizer and UBSan, then the test suite on it.

    `nox -s asan -- tests/test_core_edges.py` runs only the given tests. Python is not
    instrumented, so the sanitizer runtime is preloaded; leak detection is off (the interpreter
    keeps memory until exit).
    """
    so = _cmake_build(
        session, "build/asan", "Debug", "-DENERGYCORE_SANITIZE=address,undefined",
        "-DENERGYCORE_WERROR=ON",
    )  # fmt: skip
    session.install(*_TEST_DEPS)
    pkg = Path("build/asan/pkg")
    shutil.rmtree(pkg, ignore_errors=True)
    shutil.copytree(
        "python/energycore", pkg / "energycore", ignore=shutil.ignore_patterns("_core*.so")
    )
    shutil.copy(so, pkg / "energycore" / so.name)
    cc = shutil.which(os.environ.get("CXX", "c++")) or "c++"
    # libstdc++ too: without it ASan's __cxa_throw interceptor finds no real __cxa_throw (Python
    # does not link libstdc++) and the first C++ exception aborts.
    preload = [
        str(session.run(cc, f"-print-file-name={lib}", silent=True, external=True)).strip()
        for lib in ("libasan.so", "libstdc++.so")
    ]
    env = {
        "PYTHONPATH": str(pkg.resolve()),
        "LD_PRELOAD": " ".join(preload),
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
    }
    args = session.posargs or ["tests"]
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, env=env)
