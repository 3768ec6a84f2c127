"""Compiler optimisation selection and phase ordering on real programs (Embench-IoT).

- :func:`find_toolchain` / :class:`Toolchain`: clang, opt, llc of one LLVM version (19 first);
- :class:`Build`: one program compiled to IR once; :meth:`Build.evaluate` applies an
  ``opt -passes=`` pipeline and measures IR instructions, ``.text`` bytes and run time, with the
  program's own ``verify_benchmark`` as the validity check;
- :func:`pipeline_space`: a :class:`~energycore.SequenceSpace` of pipelines (a level and a pass
  sequence) that the :class:`~energycore.Tuner` searches;
- :data:`PASSES`, :data:`LEVELS`, :func:`pipeline_text`: the pass vocabulary;
  :data:`SIZE_OPTIONS`, :data:`SPEED_OPTIONS`: option axes (``opt``/``llc`` switches);
- :func:`ir_features`: opcode counts of a module, for policies that pick per program.
"""

from __future__ import annotations

from energycore.compiler.embench import (
    EMBENCH_PROGRAMS,
    Build,
    count_ir_instructions,
    embench_programs,
    ir_features,
)
from energycore.compiler.passes import LEVELS, PASSES, pass_kind, pipeline_text
from energycore.compiler.search import (
    SIZE_OPTIONS,
    SPEED_OPTIONS,
    config_options,
    config_passes,
    pipeline_space,
    search,
)
from energycore.compiler.toolchain import DEFAULT_VERSION, Toolchain, find_toolchain

__all__ = [
    "DEFAULT_VERSION",
    "EMBENCH_PROGRAMS",
    "LEVELS",
    "PASSES",
    "SIZE_OPTIONS",
    "SPEED_OPTIONS",
    "Build",
    "Toolchain",
    "config_options",
    "config_passes",
    "count_ir_instructions",
    "embench_programs",
    "find_toolchain",
    "ir_features",
    "pass_kind",
    "pipeline_space",
    "pipeline_text",
    "search",
]
