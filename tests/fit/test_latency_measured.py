"""Selection that judges the measured configurations by their measurements (issue 11).

docs/model.md ("How far a fitted TPOT can be trusted") shows the recipe: a space over the
candidate rows (``ConfigSpace.from_rows``) with a column of the measured time per output token
(-1 where not measured) and a ``where=`` that takes the measurement where there is one and the
model's upper bound at ``confidence=`` elsewhere. These tests hold the recipe to the numpy
reference of ``bench/eval_real.py``'s "measured where measured" rows.
"""

from __future__ import annotations

import numpy as np
import pytest

from energycore import ConfigSpace, EnergyModel, TpotModel
from energycore.fit.latency import NeighbourResiduals
from energycore.space.uncertainty import upper_bound

FEATURES = ("tp", "pp", "batch", "input_len", "output_len")


def _deployment(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    batch = np.tile(2.0 ** np.arange(3, 10), 2)
    tp = np.repeat([1.0, 2.0], 7)
    n = len(batch)
    tpot = (0.012 + 4e-5 * batch) / tp**0.7 * np.exp(0.04 * rng.standard_normal(n))
    out_len = np.full(n, 400.0)
    energy = (350.0 * tp * tpot * out_len + 0.3 * batch * out_len) * np.exp(
        0.03 * rng.standard_normal(n)
    )
    return {
        "tp": tp, "pp": np.ones(n), "batch": batch, "input_len": np.zeros(n),
        "output_len": out_len, "tpot_s": tpot, "energy_j": energy,
    }  # fmt: skip


def _recipe(
    g: dict[str, np.ndarray], measured: np.ndarray, limit: float, confidence: float
) -> tuple[int, int]:
    fit = {k: v[measured] for k, v in g.items()}
    em = EnergyModel().fit(fit, "energy_j")
    tm = TpotModel().fit(fit, "tpot_s")
    rows = {k: g[k] for k in FEATURES}
    rows["measured_tpot_s"] = np.where(measured, g["tpot_s"], -1.0)
    sel = ConfigSpace.from_rows(rows).argmin(
        "j_per_token",
        models=[em, tm],
        scorers={"j_per_token": lambda c: c["energy_j"] / (c["batch"] * c["output_len"])},
        where=f"(measured_tpot_s >= 0 and measured_tpot_s <= {limit})"
        f" or (measured_tpot_s < 0 and tpot_upper_s <= {limit})",
        confidence=confidence,
    )
    # the reference: measured latency where measured, the bound elsewhere
    lat = np.where(measured, g["tpot_s"], upper_bound(tm, g, confidence))
    e = em.predict(g) / (g["batch"] * g["output_len"])
    feas = np.flatnonzero(lat <= limit)
    ref = int(feas[np.argmin(e[feas])]) if len(feas) else -1
    return int(sel.index), ref


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("q", [25, 50, 75])
@pytest.mark.parametrize("confidence", [0.6, 0.9])
def test_measured_where_measured_recipe_matches_the_reference(
    seed: int, q: int, confidence: float
) -> None:
    g = _deployment(seed)
    measured = np.random.default_rng(100 + seed).permutation(len(g["batch"])) < 7
    limit = float(np.percentile(g["tpot_s"], q))
    got, ref = _recipe(g, measured, limit, confidence)
    assert got == ref


def test_a_measured_configuration_at_the_limit_stays_a_candidate() -> None:
    g = _deployment(3)
    measured = np.arange(len(g["batch"])) % 2 == 0
    k = 6  # measured (even index); the limit exactly on its measurement
    limit = float(g["tpot_s"][k])
    fit = {key: v[measured] for key, v in g.items()}
    models = [EnergyModel().fit(fit, "energy_j"), TpotModel().fit(fit, "tpot_s")]
    rows = {key: g[key] for key in FEATURES}
    rows["measured_tpot_s"] = np.where(measured, g["tpot_s"], -1.0)
    space = ConfigSpace.from_rows(rows)

    def kept(where: str) -> set[int]:
        f = space.to_frame(where=where, models=models, confidence=0.99, as_frame=False)
        return set(np.asarray(f["index"]).tolist())

    by_bound = kept(f"tpot_upper_s <= {limit}")
    recipe = kept(
        f"(measured_tpot_s >= 0 and measured_tpot_s <= {limit})"
        f" or (measured_tpot_s < 0 and tpot_upper_s <= {limit})"
    )
    assert k not in by_bound  # at 0.99 the bound of a point at the limit is above it
    assert k in recipe
    # every measured point meeting the limit is in, every measured one above it out
    for i in np.flatnonzero(measured):
        assert (i in recipe) == (g["tpot_s"][i] <= limit)
    # unmeasured points are judged by the bound as before
    assert {i for i in recipe if not measured[i]} == {i for i in by_bound if not measured[i]}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("q", [25, 50, 75])
def test_recipe_with_neighbour_residuals_matches_the_reference(seed: int, q: int) -> None:
    """Scorers carry both models' residuals; the latency limit is a ``subject_to`` on a scorer
    column (the measurement where there is one, the carried bound elsewhere): eval_real's
    "neighbour residuals on energy and latency, measured where measured" row."""
    g = _deployment(seed)
    measured = np.random.default_rng(200 + seed).permutation(len(g["batch"])) < 7
    limit, c = float(np.percentile(g["tpot_s"], q)), 0.75
    fit = {k: v[measured] for k, v in g.items()}
    em = EnergyModel().fit(fit, "energy_j")
    tm = TpotModel().fit(fit, "tpot_s")
    carry_e = NeighbourResiduals().fit(fit, fit["energy_j"], em.predict(fit))
    carry_t = NeighbourResiduals().fit(fit, fit["tpot_s"], tm.predict(fit))
    rows = {k: g[k] for k in FEATURES}
    rows["measured_tpot_s"] = np.where(measured, g["tpot_s"], -1.0)

    def judged(col: dict[str, np.ndarray]) -> np.ndarray:
        m = col["measured_tpot_s"]
        return np.where(m >= 0, m, col["tpot_upper_s"] * carry_t.factor(col))

    sel = ConfigSpace.from_rows(rows).argmin(
        "j_per_token",
        models=[em, tm],
        scorers={
            "j_per_token": lambda col: (
                carry_e.factor(col) * col["energy_j"] / (col["batch"] * col["output_len"])
            ),
            "tpot_judged_s": judged,
        },
        subject_to={"tpot_judged_s": ("<=", limit)},
        confidence=c,
    )
    e = carry_e.factor(g) * em.predict(g) / (g["batch"] * g["output_len"])
    lat = np.where(measured, g["tpot_s"], upper_bound(tm, g, c) * carry_t.factor(g))
    feas = np.flatnonzero(lat <= limit)
    assert len(feas)
    assert int(sel.index) == int(feas[np.argmin(e[feas])])
