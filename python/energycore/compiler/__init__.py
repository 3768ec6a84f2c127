"""Compiler optimisation selection and phase ordering on real programs (Embench-IoT).

- :func:`find_toolchain` / :class:`Toolchain`: clang, opt, llc of one LLVM version (19 first);
- :class:`Build`: one program compiled to IR once; :meth:`Build.evaluate` applies an
  ``opt -passes=`` pipeline and measures IR instructions, ``.text`` bytes and run time, with the
  program's own ``verify_benchmark`` as the validity check;
- :func:`pipeline_space`: a :class:`~energycore.SequenceSpace` of pipelines (a level and a pass
  sequence) that the :class:`~energycore.Tuner` searches;
- :data:`PASSES`, :data:`LEVELS`, :func:`pipeline_text`: the pass vocabulary.
"""

from __future__ import annotations

from energycore.compiler.embench import (
    EMBENCH_PROGRAMS,
    Build,
    count_ir_instructions,
    embench_programs,
)
from energycore.compiler.passes import LEVELS, PASSES, pass_kind, pipeline_text
from energycore.compiler.search import config_passes, pipeline_space, search
from energycore.compiler.toolchain import DEFAULT_VERSION, Toolchain, find_toolchain

__all__ = [
    "DEFAULT_VERSION",
    "EMBENCH_PROGRAMS",
    "LEVELS",
    "PASSES",
    "Build",
    "Toolchain",
    "config_passes",
    "count_ir_instructions",
    "embench_programs",
    "find_toolchain",
    "pass_kind",
    "pipeline_space",
    "pipeline_text",
    "search",
]
