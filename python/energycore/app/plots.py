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


def pareto_plot(path: str | Path, latency_s: FloatArray, energy_j: FloatArray, **kw: Any) -> Path:
    """Energy vs latency of every configuration, the fronts, the pick, the optimum and the
    baselines, written as a PNG; the arguments are those of :func:`pareto_figure`."""
    plt = _pyplot()
    fig = pareto_figure(latency_s, energy_j, **kw)
    try:
        out = Path(path)
        fig.savefig(out, dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return out


def pareto_figure(latency_s: FloatArray, energy_j: FloatArray, **kw: Any) -> Any:
    """The Pareto figure (a matplotlib Figure; the caller closes it).

    Parameters
    ----------
    latency_s, energy_j : arrays
        The reference (e.g. true, simulated) latency and energy of each configuration.
    predicted_latency_s, predicted_energy_j : arrays, optional
        Model predictions for the same configurations; their Pareto front is drawn.
    measured_latency_s, measured_energy_j : arrays, optional
        Measured points (drawn as dots), labelled ``measured_label`` (say which of the
        measurements they are, e.g. "measured at this workload (7 of 50)").
    pick, optimum : int, optional
        Indices of the selected and of the truly optimal configuration.
    baselines : dict of str to int, optional
        Other choices to mark, e.g. ``{"latency-optimal": i, "max throughput": j}``; with a
        pick, the energy the pick saves against each is annotated.
    latency_limit_s : float, optional
        Drawn as a vertical line.
    title : str
        Plot title (say "simulated" when the numbers are).
    energy_label, latency_label : str
        Axis labels.
    reference_label : str
        What the reference points are (e.g. "simulated truth").
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11.0, 5.5))
    try:
        _draw_pareto(ax, latency_s, energy_j, **kw)
    except BaseException:
        plt.close(fig)
        raise
    fig.tight_layout()
    return fig


def _draw_pareto(
    ax: Any,
    latency_s: FloatArray,
    energy_j: FloatArray,
    *,
    predicted_latency_s: FloatArray | None = None,
    predicted_energy_j: FloatArray | None = None,
    measured_latency_s: FloatArray | None = None,
    measured_energy_j: FloatArray | None = None,
    measured_label: str = "measured",
    pick: int | None = None,
    optimum: int | None = None,
    baselines: dict[str, int | None] | None = None,
    latency_limit_s: float | None = None,
    title: str = "Energy vs latency",
    energy_label: str = "energy per request (J)",
    latency_label: str = "batch latency (s)",
    reference_label: str = "reference",
) -> None:
    from matplotlib.ticker import FuncFormatter

    lat, en = np.asarray(latency_s, float), np.asarray(energy_j, float)
    ax.scatter(lat, en, s=12, c="0.75", label=f"configurations ({reference_label})", zorder=1)
    f = pareto_indices(lat, en)
    ax.plot(
        lat[f], en[f], "-", c="0.35", lw=1.2, label=f"Pareto front ({reference_label})", zorder=2
    )
    if predicted_latency_s is not None and predicted_energy_j is not None:
        pl = np.asarray(predicted_latency_s, float)
        pe = np.asarray(predicted_energy_j, float)
        fp = pareto_indices(pl, pe)
        ax.plot(pl[fp], pe[fp], "--", c="tab:blue", lw=1.5, label="predicted Pareto front")
    if measured_latency_s is not None and measured_energy_j is not None:
        ax.scatter(
            measured_latency_s, measured_energy_j, s=22, c="tab:orange",
            edgecolors="k", linewidths=0.4, label=measured_label, zorder=3,
        )  # fmt: skip
    if optimum is not None:
        ax.scatter(
            lat[optimum], en[optimum], s=160, facecolors="none", edgecolors="tab:green",
            linewidths=2, label="true optimum", zorder=4,
        )  # fmt: skip
    markers = iter(("s", "D", "^", "v", "P"))
    notes = []
    for name, i in (baselines or {}).items():
        if i is None:
            continue
        ax.scatter(lat[i], en[i], s=70, marker=next(markers, "o"), facecolors="none",
                   edgecolors="tab:purple", linewidths=1.5, zorder=4,
                   label=f"{name} (= pick)" if i == pick else name)  # fmt: skip
        if pick is not None and en[i] > 0:
            notes.append(f"pick uses {100 * (1 - en[pick] / en[i]):.0f} % less energy than {name}")
    if pick is not None:
        ax.scatter(lat[pick], en[pick], s=120, marker="*", c="tab:red", label="pick", zorder=5)
        if notes:
            ax.annotate(
                "\n".join(notes), xy=(lat[pick], en[pick]), xytext=(0.97, 0.97),
                textcoords="axes fraction", fontsize=8, ha="right", va="top",
                arrowprops={"arrowstyle": "->", "color": "tab:red", "lw": 0.8},
                bbox={"boxstyle": "round", "fc": "white", "ec": "0.7"},
            )  # fmt: skip
    if latency_limit_s is not None:
        ax.axvline(latency_limit_s, c="tab:red", ls=":", lw=1, label="latency limit")
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")  # 3, not 3x10^0
    # minor ticks labelled at 2, 3 and 5 of each decade only, so the labels do not collide
    some = FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "235" else "")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(some)
    ax.tick_params(which="minor", labelsize=7)
    ax.set_xlabel(latency_label)
    ax.set_ylabel(energy_label)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


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
