"""Pipelines as a search space, and search with the Tuner (or at random) on one program.

A configuration of :func:`pipeline_space` has three parts:

- ``level``: a standard pipeline, the *flag set* (``"none"``, ``"O1"`` ... ``"Oz"``);
- ``passes``: an ordered pass sequence, the *phase ordering* (repeats allowed);
- ``place``: whether the sequence runs ``"after"`` or ``"before"`` the level;
- optional *option axes* (``options=``): named ``opt_*`` or ``llc_*``, each a list of
  command-line switches for ``opt`` or ``llc`` (``""``: the default), e.g. the switches that
  edit what ``default<Oz>`` runs (:data:`SIZE_OPTIONS`) or tune ``default<O3>``
  (:data:`SPEED_OPTIONS`).

:func:`config_passes` turns a configuration into the pass list that :meth:`Build.evaluate`
applies, :func:`config_options` into its ``opt_args`` and ``llc_args``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from energycore.compiler.embench import Build
from energycore.compiler.passes import LEVELS, PASSES, pass_kind
from energycore.learn.tuner import Tuner
from energycore.space.sequence import SequenceAxis, SequenceSpace

__all__ = [
    "SIZE_OPTIONS",
    "SPEED_OPTIONS",
    "config_options",
    "config_passes",
    "pipeline_space",
    "search",
]

#: Option axes that edit the standard pipelines for code size: ``-disable-loop-unrolling``
#: deletes the (full) unrolling that ``default<Oz>`` still runs, ``-enable-gvn-hoist`` /
#: ``-enable-gvn-sink`` insert code hoisting / sinking, ``-enable-merge-functions`` inserts
#: ``mergefunc``, and the inliner threshold moves.
SIZE_OPTIONS: dict[str, tuple[str, ...]] = {
    "opt_unroll": ("", "-disable-loop-unrolling"),
    "opt_hoist": ("", "-enable-gvn-hoist", "-enable-gvn-sink",
                  "-enable-gvn-hoist -enable-gvn-sink"),
    "opt_merge": ("", "-enable-merge-functions"),
    "opt_inline": ("", "-inline-threshold=-50", "-inline-threshold=0", "-inline-threshold=25",
                   "-inline-threshold=100"),
}  # fmt: skip

#: Option axes around ``default<O3>`` for run time: the inliner and unroller thresholds,
#: DFA jump threading, loop interchange and GVN hoisting.
SPEED_OPTIONS: dict[str, tuple[str, ...]] = {
    "opt_inline": ("", "-inline-threshold=500", "-inline-threshold=1000",
                   "-inline-threshold=3000"),
    "opt_unroll": ("", "-unroll-threshold=600"),
    "opt_dfa": ("", "-enable-dfa-jump-thread"),
    "opt_loops": ("", "-enable-loopinterchange", "-enable-gvn-hoist"),
}  # fmt: skip


def pipeline_space(
    passes: Sequence[str] = PASSES,
    *,
    min_len: int = 0,
    max_len: int = 6,
    levels: Sequence[str] = ("none", "O1", "O2", "O3", "Os", "Oz"),
    place: Sequence[str] = ("after", "before"),
    constraints: Sequence[str] = (),
    pool: int = 2000,
    options: Mapping[str, Sequence[str]] | None = None,
) -> SequenceSpace:
    """A :class:`~energycore.SequenceSpace` of pipelines (module documentation).

    ``constraints`` are sequence constraints over ``passes``, ``level``, ``place`` and the
    option axes (e.g. ``"'licm' in passes"``, ``"before(passes, 'sroa', 'gvn')"``).
    ``options`` maps axis names starting with ``opt_`` or ``llc_`` to the switches each
    may take (``""``: none; several switches separated by spaces), e.g. :data:`SIZE_OPTIONS`.
    """
    opt_axes: dict[str, tuple[str, ...]] = {}
    for name, vals in dict(options or {}).items():
        if not (isinstance(name, str) and name.startswith(("opt_", "llc_"))):
            raise ValueError(f"options: axis names start with 'opt_' or 'llc_', got {name!r}")
        if isinstance(vals, str) or not vals:
            raise ValueError(f"options: axis {name!r} needs a non-empty list of switch strings")
        for v in vals:
            if not isinstance(v, str) or any(not a.startswith("-") for a in v.split()):
                raise ValueError(
                    f"options: axis {name!r}: expected '' or switches starting with '-', got {v!r}"
                )
        opt_axes[name] = tuple(vals)
    for p in passes:
        pass_kind(p)  # ValueError for an unknown pass
    for lv in levels:
        if lv != "none" and lv not in LEVELS:
            raise ValueError(f"levels: {lv!r} is not 'none' or one of {sorted(LEVELS)}")
    for pl in place:
        if pl not in ("after", "before"):
            raise ValueError(f"place: expected 'after' or 'before', got {pl!r}")
    return SequenceSpace(
        [SequenceAxis("passes", tuple(passes), min_len, max_len, repeat=True)],
        axes={"level": tuple(levels), "place": tuple(place), **opt_axes},
        constraints=constraints,
        pool=pool,
    )


def config_passes(config: Mapping[str, Any]) -> list[str]:
    """The pass list of a :func:`pipeline_space` configuration."""
    seq = list(config.get("passes", ()))
    level = config.get("level", "none")
    if level == "none":
        return seq
    return [level, *seq] if config.get("place", "after") == "after" else [*seq, level]


def config_options(config: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """``(opt_args, llc_args)`` of a configuration: the switches of its ``opt_*`` and
    ``llc_*`` axes, in name order."""
    opt: list[str] = []
    llc: list[str] = []
    for name in sorted(config):
        if name.startswith("opt_"):
            opt += str(config[name]).split()
        elif name.startswith("llc_"):
            llc += str(config[name]).split()
    return opt, llc


def _key(c: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in c.items()))


def _climb(
    space: SequenceSpace,
    records: list[tuple[dict[str, Any], dict[str, Any]]],
    measure: Any,
    objective: str,
    budget: int,
    rng: np.random.Generator,
) -> None:
    """Hill climbing: mutate one of the three best configurations so far (never one already
    evaluated) until ``budget`` evaluations are spent."""
    seen = {_key(c) for c, _ in records}
    stale = 0
    while len(records) < budget and stale < 200:
        ok = [(float(r[objective]), i) for i, (_, r) in enumerate(records)
              if r["status"] == "ok" and r.get(objective) is not None]  # fmt: skip
        if not ok:
            c = space.sample(1, seed=rng)[0]
        else:
            ok.sort()
            top = ok[: min(3, len(ok))]
            base = records[top[int(rng.integers(len(top)))][1]][0]
            c = space.mutate(base, rng)
        if _key(c) in seen:
            stale += 1
            continue
        stale = 0
        seen.add(_key(c))
        measure(c)


def search(
    build: Build,
    space: SequenceSpace,
    *,
    objective: str = "ir_instructions",
    strategy: str = "tuner",
    budget: int = 100,
    batch: int = 10,
    seed: int = 0,
    repeats: int = 0,
    timer: str = "wall",
    **tuner_options: Any,
) -> dict[str, Any]:
    """Search ``space`` for the pipeline minimising ``objective`` on one program.

    Parameters
    ----------
    build : Build
    space : SequenceSpace
        From :func:`pipeline_space`.
    objective : {"ir_instructions", "text_bytes", "run_s"}
        ``"run_s"`` needs ``repeats >= 1`` (timed runs per evaluation).
    strategy : {"tuner", "random", "local", "tuner+local"}
        ``"tuner"``: the :class:`~energycore.Tuner` (validity model + pairwise ranker) over the
        space's candidate pool; ``"random"``: a uniform sample of the same pool; ``"local"``:
        a quarter of the budget sampled from the pool, then hill climbing with the space's
        neighbourhood moves (:meth:`SequenceSpace.mutate`) from one of the three best so far;
        ``"tuner+local"``: the tuner for half the budget, then the moves. Every strategy
        spends the same number of evaluations.
    budget, batch, seed
        Evaluations in all (failures count), per round, and the seed.
    repeats, timer
        Timed runs per evaluation and the clock (:meth:`Build.evaluate`).
    tuner_options
        Passed on to :class:`~energycore.Tuner`.

    Returns
    -------
    dict
        ``best`` (configuration), ``best_passes``, ``best_options`` (opt and llc switches),
        ``best_value``, ``evaluations``, ``failed``
        (failed evaluations: opt crashes, miscompiles ...), ``failures`` (their stages),
        ``trace`` (best value after each evaluation) and ``records`` (config, result).
    """
    if objective not in ("ir_instructions", "text_bytes", "run_s"):
        raise ValueError(
            f"objective: expected ir_instructions, text_bytes or run_s, got {objective!r}"
        )
    if objective == "run_s" and repeats < 1:
        raise ValueError("repeats: the objective run_s needs repeats >= 1")
    if strategy not in ("tuner", "random", "local", "tuner+local"):
        raise ValueError(
            f"strategy: expected 'tuner', 'random', 'local' or 'tuner+local', got {strategy!r}"
        )
    records: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def measure(c: dict[str, Any]) -> dict[str, Any]:
        opt_args, llc_args = config_options(c)
        r = build.evaluate(config_passes(c), repeats=repeats, opt_args=opt_args,
                           llc_args=llc_args, timer=timer)  # fmt: skip
        records.append((c, r))
        return r

    rng = np.random.default_rng([seed, 7])
    if strategy in ("tuner", "tuner+local"):
        n = budget if strategy == "tuner" else max(budget // 2, 1)
        tuner = Tuner(space, objective=objective, budget=n, batch=batch, seed=seed,
                      **tuner_options)  # fmt: skip
        tuner.run(measure)
    if strategy in ("random", "local"):
        pool = space.tuner_pool(seed)
        n = budget if strategy == "random" else max(budget // 4, 1)
        for j in rng.permutation(len(pool))[:n]:
            measure(pool[int(j)])
    if strategy in ("local", "tuner+local"):
        _climb(space, records, measure, objective, budget, rng)
    best: dict[str, Any] | None = None
    best_v, trace, failures = float("inf"), [], []
    for c, r in records:
        if r["status"] == "ok" and r.get(objective) is not None and r[objective] < best_v:
            best, best_v = c, float(r[objective])
        if r["status"] != "ok":
            failures.append(r.get("stage"))
        trace.append(best_v)
    return {
        "best": best,
        "best_passes": None if best is None else config_passes(best),
        "best_options": None if best is None else config_options(best),
        "best_value": best_v,
        "evaluations": len(records),
        "failed": len(failures),
        "failures": failures,
        "trace": trace,
        "records": records,
    }
