"""Plots: Pareto fronts of energy vs latency and fit residuals (matplotlib, optional).

matplotlib is imported only inside the functions (``pip install "energycore[plot]"``); without it
they raise :class:`PlotUnavailable`, which the CLI reports as a skipped plot. Figures are written
with the non-interactive Agg backend and closed, so nothing stays open.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from energycore._util.select import pareto_indices

FloatArray = npt.NDArray[np.float64]


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed, so no plot could be drawn."""


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailable(
            "matplotlib is not installed (pip install 'energycore[plot]')"
        ) from None
    return plt


def pareto_plot(
    path: str | Path,
    latency_s: FloatArray,
    energy_j: FloatArray,
    *,
    predicted_latency_s: FloatArray | None = None,
    predicted_energy_j: FloatArray | None = None,
    measured_latency_s: FloatArray | None = None,
    measured_energy_j: FloatArray | None = None,
    pick: int | None = None,
    optimum: int | None = None,
    latency_limit_s: float | None = None,
    title: str = "Energy vs latency",
    energy_label: str = "energy per request (J)",
    reference_label: str = "reference",
) -> Path:
    """Energy vs latency of every configuration, the fronts, the pick and the optimum (PNG).

    Parameters
    ----------
    path : str or Path
        Where to write the PNG.
    latency_s, energy_j : arrays
        The reference (e.g. true, simulated) latency and energy of each configuration.
    predicted_latency_s, predicted_energy_j : arrays, optional
        Model predictions for the same configurations; their Pareto front is drawn.
    measured_latency_s, measured_energy_j : arrays, optional
        Measured points (drawn as dots).
    pick, optimum : int, optional
        Indices of the selected and of the truly optimal configuration.
    latency_limit_s : float, optional
        Drawn as a vertical line.
    title : str
        Plot title (say "simulated" when the numbers are).
    energy_label : str
        Label of the energy axis.
    reference_label : str
        What the reference points are (e.g. "simulated truth").

    Returns
    -------
    Path
        The file written.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5.0))
    try:
        lat, en = np.asarray(latency_s, float), np.asarray(energy_j, float)
        ax.scatter(lat, en, s=12, c="0.75", label=f"configurations ({reference_label})", zorder=1)
        f = pareto_indices(lat, en)
        ax.plot(
            lat[f],
            en[f],
            "-",
            c="0.35",
            lw=1.2,
            label=f"Pareto front ({reference_label})",
            zorder=2,
        )
        if predicted_latency_s is not None and predicted_energy_j is not None:
            pl = np.asarray(predicted_latency_s, float)
            pe = np.asarray(predicted_energy_j, float)
            fp = pareto_indices(pl, pe)
            ax.plot(pl[fp], pe[fp], "--", c="tab:blue", lw=1.5, label="predicted Pareto front")
        if measured_latency_s is not None and measured_energy_j is not None:
            ax.scatter(
                measured_latency_s, measured_energy_j, s=22, c="tab:orange",
                edgecolors="k", linewidths=0.4, label="measured", zorder=3,
            )  # fmt: skip
        if optimum is not None:
            ax.scatter(
                lat[optimum], en[optimum], s=160, facecolors="none", edgecolors="tab:green",
                linewidths=2, label="true optimum", zorder=4,
            )  # fmt: skip
        if pick is not None:
            ax.scatter(lat[pick], en[pick], s=120, marker="*", c="tab:red", label="pick", zorder=5)
        if latency_limit_s is not None:
            ax.axvline(latency_limit_s, c="tab:red", ls=":", lw=1, label="latency limit")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("latency (s)")
        ax.set_ylabel(energy_label)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        out = Path(path)
        fig.savefig(out, dpi=110)
    finally:
        plt.close(fig)
    return out


def residual_plot(
    path: str | Path,
    measured: FloatArray,
    predicted: FloatArray,
    *,
    title: str = "Fit residuals",
    quantity: str = "energy (J)",
) -> Path:
    """Predicted vs measured (log-log, with the identity line) and log-ratio residuals (PNG)."""
    plt = _pyplot()
    m = np.asarray(measured, float)
    p = np.asarray(predicted, float)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.2))
    try:
        a1.scatter(m, p, s=14, c="tab:blue")
        lo = float(np.nanmin([m.min(), p.min()]))
        hi = float(np.nanmax([m.max(), p.max()]))
        a1.plot([lo, hi], [lo, hi], "k--", lw=1)
        a1.set_xscale("log")
        a1.set_yscale("log")
        a1.set_xlabel(f"measured {quantity}")
        a1.set_ylabel(f"predicted {quantity}")
        a1.grid(True, which="both", alpha=0.3)
        r = np.log(p / m)
        a2.scatter(m, 100 * (np.exp(r) - 1), s=14, c="tab:blue")
        a2.axhline(0, c="k", lw=1)
        a2.set_xscale("log")
        a2.set_xlabel(f"measured {quantity}")
        a2.set_ylabel("prediction error (%)")
        a2.grid(True, which="both", alpha=0.3)
        fig.suptitle(title)
        fig.tight_layout()
        out = Path(path)
        fig.savefig(out, dpi=110)
    finally:
        plt.close(fig)
    return out
