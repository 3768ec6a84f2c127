"""LLVM new-pass-manager passes, their kinds, and pipeline text for ``opt -passes=``.

A pipeline is an ordered list of pass names. Passes of different kinds cannot sit side by
side in ``-passes=`` text, so :func:`pipeline_text` wraps runs of consecutive passes of one
kind: function passes in ``function(...)``, loop passes in ``function(loop(...))`` (``licm`` in
``loop-mssa``), call-graph passes in ``cgscc(...)``; module passes and the levels
(``default<Oz>``) stand alone.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["LEVELS", "PASSES", "pass_kind", "pipeline_text"]

#: The standard pipelines (flag sets), as opt names them.
LEVELS = {
    "O0": "default<O0>",
    "O1": "default<O1>",
    "O2": "default<O2>",
    "O3": "default<O3>",
    "Os": "default<Os>",
    "Oz": "default<Oz>",
}

_MODULE = [
    "globaldce",
    "globalopt",
    "ipsccp",
    "deadargelim",
    "constmerge",
    "mergefunc",
    "strip-dead-prototypes",
    "elim-avail-extern",
    "called-value-propagation",
    "partial-inliner",
    "hotcoldsplit",
]
_CGSCC = ["inline", "function-attrs", "argpromotion"]
_LOOP = [
    "loop-rotate",
    "loop-deletion",
    "indvars",
    "loop-idiom",
    "loop-instsimplify",
    "simple-loop-unswitch",
    "loop-reduce",
]
_LOOP_MSSA = ["licm"]
_FUNCTION = [
    "sroa",
    "mem2reg",
    "early-cse",
    "early-cse<memssa>",
    "instcombine",
    "aggressive-instcombine",
    "simplifycfg",
    "gvn",
    "newgvn",
    "gvn-hoist",
    "gvn-sink",
    "dce",
    "adce",
    "bdce",
    "dse",
    "sccp",
    "jump-threading",
    "correlated-propagation",
    "reassociate",
    "tailcallelim",
    "loop-simplify",
    "lcssa",
    "memcpyopt",
    "sink",
    "mldst-motion",
    "instsimplify",
    "float2int",
    "div-rem-pairs",
    "loop-unroll",
    "loop-sink",
    "loop-fusion",
    "loop-vectorize",
    "slp-vectorizer",
    "vector-combine",
    "mergeicmps",
    "nary-reassociate",
    "lower-expect",
    "consthoist",
    "loop-load-elim",
    "reg2mem",
    "lower-switch",
]
_KIND = {
    **{p: "module" for p in _MODULE},
    **{p: "cgscc" for p in _CGSCC},
    **{p: "loop" for p in _LOOP},
    **{p: "loop-mssa" for p in _LOOP_MSSA},
    **{p: "function" for p in _FUNCTION},
    **{v: "module" for v in LEVELS.values()},
}

#: The passes searched by default: those that can shrink or speed up code (no reg2mem,
#: lower-switch, which only undo work), ordered as LLVM's own pipelines first use them.
PASSES: tuple[str, ...] = tuple(
    [
        "sroa",
        "early-cse<memssa>",
        "instcombine",
        "simplifycfg",
        "gvn",
        "newgvn",
        "licm",
        "loop-rotate",
        "loop-deletion",
        "indvars",
        "loop-idiom",
        "loop-instsimplify",
        "simple-loop-unswitch",
        "loop-unroll",
        "dce",
        "adce",
        "bdce",
        "dse",
        "sccp",
        "ipsccp",
        "jump-threading",
        "correlated-propagation",
        "reassociate",
        "tailcallelim",
        "memcpyopt",
        "aggressive-instcombine",
        "mldst-motion",
        "gvn-hoist",
        "gvn-sink",
        "sink",
        "instsimplify",
        "inline",
        "function-attrs",
        "argpromotion",
        "globalopt",
        "globaldce",
        "deadargelim",
        "constmerge",
        "mergefunc",
        "mergeicmps",
        "float2int",
        "div-rem-pairs",
        "loop-vectorize",
        "slp-vectorizer",
        "vector-combine",
        "hotcoldsplit",
    ]
)


def pass_kind(name: str) -> str:
    """``"module"``, ``"cgscc"``, ``"function"``, ``"loop"`` or ``"loop-mssa"``;
    ``ValueError`` for a pass this module does not know."""
    try:
        return _KIND[name]
    except KeyError:
        raise ValueError(f"passes: unknown pass {name!r}") from None


def pipeline_text(passes: Sequence[str]) -> str:
    """``opt -passes=`` text of an ordered pass list (empty list: ``"no-op-module"``).

    A level may be given by its short name (``"Oz"``) or as ``"default<Oz>"``.
    """
    if isinstance(passes, str):
        raise ValueError("passes: expected a sequence of pass names, not one string")
    groups: list[tuple[str, list[str]]] = []
    for p in passes:
        p = LEVELS.get(p, p)
        kind = pass_kind(p)
        if groups and groups[-1][0] == kind and kind != "module":
            groups[-1][1].append(p)
        else:
            groups.append((kind, [p]))
    parts = []
    for kind, ps in groups:
        body = ",".join(ps)
        if kind == "function":
            parts.append(f"function({body})")
        elif kind == "loop":
            parts.append(f"function(loop({body}))")
        elif kind == "loop-mssa":
            parts.append(f"function(loop-mssa({body}))")
        elif kind == "cgscc":
            parts.append(f"cgscc({body})")
        else:
            parts.append(body)
    return ",".join(parts) if parts else "no-op-module"
