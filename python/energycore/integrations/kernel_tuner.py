"""energycore's :class:`~energycore.Tuner` as a Kernel Tuner strategy.

Kernel Tuner (``pip install kernel_tuner``) accepts as ``strategy=`` any object with a callable
``tune(searchspace, runner, tuning_options)``. :func:`strategy` returns one::

    from energycore.integrations.kernel_tuner import strategy
    results, env = kernel_tuner.tune_kernel(..., strategy=strategy(batch=16, seed=0),
                                            strategy_options={"max_fevals": 200})

It works with Kernel Tuner's real runners and with its simulation mode (``simulation_mode=True``
replays a cache file). The candidates are Kernel Tuner's search space after its restrictions;
each round the tuner asks a batch, Kernel Tuner's cost function measures it (its budget, cache
and time limits apply) and the results, failures included, are told back. The objective and its
direction come from ``tune_kernel(objective=..., objective_higher_is_better=...)``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EnergycoreStrategy", "strategy"]


class EnergycoreStrategy:
    """A Kernel Tuner strategy object wrapping :class:`~energycore.Tuner`.

    Parameters
    ----------
    batch : int
        Configurations measured per round.
    seed : int
        The tuner's seed.
    budget : int, optional
        Measurements; default Kernel Tuner's ``max_fevals`` (or the space size).
    **tuner_options
        Further :class:`~energycore.Tuner` arguments (``validity``, ``performance``,
        ``explore``, ``diversity``, ``journal``, ...).

    After ``tune``, ``tuner_`` is the Tuner that ran.
    """

    def __init__(
        self, *, batch: int = 16, seed: int = 0, budget: int | None = None, **tuner_options: Any
    ) -> None:
        for bad in ("space", "objective", "direction"):
            if bad in tuner_options:
                raise ValueError(f"{bad}: set by Kernel Tuner (tune_kernel's arguments), not here")
        self.batch, self.seed, self.budget = batch, seed, budget
        self.tuner_options = tuner_options
        self.tuner_: Any = None

    def __repr__(self) -> str:
        return f"EnergycoreStrategy(batch={self.batch}, seed={self.seed}, budget={self.budget})"

    @staticmethod
    def _objective(tuning_options: Any) -> tuple[str, bool]:
        obj = tuning_options.objective
        hib = tuning_options.objective_higher_is_better
        if isinstance(obj, list | tuple):
            if len(obj) != 1:
                raise ValueError("objective: the energycore strategy optimises one objective")
            obj = obj[0]
            hib = hib[0] if isinstance(hib, list | tuple) else hib
        return str(obj), bool(hib)

    def _budget(self, searchspace: Any, tuning_options: Any) -> int:
        if self.budget is not None:
            return int(self.budget)
        b = tuning_options.get("budget") if hasattr(tuning_options, "get") else None
        fevals = getattr(b, "max_fevals", None) if b is not None else None
        if fevals is None and hasattr(tuning_options, "get"):
            fevals = tuning_options.get("max_fevals")
        return int(min(fevals or searchspace.size, searchspace.size))

    def tune(self, searchspace: Any, runner: Any, tuning_options: Any) -> list[dict[str, Any]]:
        """Kernel Tuner's strategy hook: tune and return Kernel Tuner's result list."""
        from kernel_tuner.strategies.common import CostFunc
        from kernel_tuner.util import StopCriterionReached

        from energycore.learn.tuner import Tuner

        names = list(searchspace.tune_params.keys())
        rows = [dict(zip(names, cfg)) for cfg in searchspace.list]
        objective, higher = self._objective(tuning_options)
        tuner = Tuner(
            rows,
            objective=objective,
            direction="maximize" if higher else "minimize",
            budget=self._budget(searchspace, tuning_options),
            batch=self.batch,
            seed=self.seed,
            **self.tuner_options,
        )
        self.tuner_ = tuner
        cost = CostFunc(searchspace, tuning_options, runner, snap=False)
        try:
            while not tuner.done:
                configs = tuner.ask(self.batch)
                if not configs:
                    break
                start = len(cost.results)
                stop = False
                try:
                    cost.eval_all(
                        [[c[k] for k in names] for c in configs], check_restrictions=False
                    )
                except StopCriterionReached:
                    stop = True
                done = cost.results[start:]
                told = configs[: len(done)]
                tuner.tell(told, [self._result(r, objective) for r in done])
                if stop:
                    break
        finally:
            tuner.close()
        return cost.results

    @staticmethod
    def _result(r: dict[str, Any], objective: str) -> dict[str, Any]:
        """A Kernel Tuner result as a Tuner result (its ``__error__`` marks a failure)."""
        out = {k: v for k, v in r.items() if k != "__error__"}
        if "__error__" in r:
            out["status"] = str(r["__error__"])
        elif not isinstance(r.get(objective), int | float):
            out["status"] = str(r.get(objective))
        return out


def strategy(*, batch: int = 16, seed: int = 0, **tuner_options: Any) -> EnergycoreStrategy:
    """A strategy object for ``kernel_tuner.tune_kernel(strategy=...)`` (see the module)."""
    return EnergycoreStrategy(batch=batch, seed=seed, **tuner_options)
