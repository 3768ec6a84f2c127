"""Task runner: `nox -s tests`, `nox -s lint`, `nox -s bench`, `nox -s stubs`, `nox -s docs`."""

from __future__ import annotations

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
    """Build the documentation site (mkdocs-material)."""
    session.install("mkdocs-material")
    session.run("mkdocs", "build", "--strict")
