"""A physics-based simulator of one LLM inference node, standing where a GPU would.

Every number it produces is labelled ``source = "simulated"``. See ``docs/simulator.md`` for
the physics, the catalogues and their sources, and the calibration against measurements.
"""

from __future__ import annotations

from energycore.simulate.catalog import (
    GPU,
    ModelSpec,
    get_gpu,
    get_model,
    gpus,
    models,
    register_gpu,
    register_model,
)
from energycore.simulate.node import OUTPUT_COLUMNS, Efficiency
from energycore.simulate.simulator import CALIBRATED, SOURCE, Node
from energycore.simulate.workload import Workload

__all__ = [
    "CALIBRATED",
    "GPU",
    "OUTPUT_COLUMNS",
    "SOURCE",
    "Efficiency",
    "ModelSpec",
    "Node",
    "Workload",
    "get_gpu",
    "get_model",
    "gpus",
    "models",
    "register_gpu",
    "register_model",
]
