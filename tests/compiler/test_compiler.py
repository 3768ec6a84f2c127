"""energycore.compiler: pass pipelines on Embench-IoT programs with clang/opt (skipped without)."""

from __future__ import annotations

import dataclasses
import math
import os

import pytest

from energycore.compiler import (
    LEVELS,
    PASSES,
    Build,
    Toolchain,
    config_passes,
    count_ir_instructions,
    embench_programs,
    find_toolchain,
    pass_kind,
    pipeline_space,
    pipeline_text,
    search,
)

IR = """; ModuleID = 'x'
@g = global i32 0

define i32 @f(i32 %0) {
entry:
  %1 = add i32 %0, 1 ; a comment
  br label %"odd.label"

"odd.label":                          ; preds = %entry
  ; a whole-line comment
  ret i32 %1
}

declare i32 @h(i32)

define void @e() {
  ret void
}
"""


def test_count_ir_instructions_counts_only_body_instructions() -> None:
    assert count_ir_instructions(IR) == 4  # add, br, ret, ret void
    assert count_ir_instructions("declare void @x()\n") == 0


def test_pipeline_text_wraps_runs_of_one_kind() -> None:
    text = pipeline_text(["Oz", "instcombine", "gvn", "licm", "loop-rotate", "indvars", "inline",
                          "globaldce", "mergefunc", "sroa"])  # fmt: skip
    assert text == (
        "default<Oz>,function(instcombine,gvn),function(loop-mssa(licm)),"
        "function(loop(loop-rotate,indvars)),cgscc(inline),globaldce,mergefunc,function(sroa)"
    )
    assert pipeline_text([]) == "no-op-module"
    with pytest.raises(ValueError, match="unknown pass 'nope'"):
        pipeline_text(["nope"])
    with pytest.raises(ValueError, match="passes"):
        pipeline_text("instcombine")
    assert all(pass_kind(p) for p in PASSES)
    assert pass_kind(LEVELS["O3"]) == "module"


def test_pipeline_space_and_config_passes() -> None:
    sp = pipeline_space(["instcombine", "gvn", "licm"], max_len=2, levels=("none", "Oz"),
                        constraints=["'licm' not in passes or 'gvn' in passes"])  # fmt: skip
    assert sp.size() == (1 + 3 + 9) * 2 * 2
    for c in sp:
        assert "licm" not in c["passes"] or "gvn" in c["passes"]
    assert config_passes({"passes": ("gvn",), "level": "Oz", "place": "after"}) == ["Oz", "gvn"]
    assert config_passes({"passes": ("gvn",), "level": "Oz", "place": "before"}) == ["gvn", "Oz"]
    assert config_passes({"passes": ("gvn",), "level": "none", "place": "before"}) == ["gvn"]
    with pytest.raises(ValueError, match="unknown pass"):
        pipeline_space(["instcombine", "frobnicate"])
    with pytest.raises(ValueError, match="levels"):
        pipeline_space(levels=("O7",))
    with pytest.raises(ValueError, match="place"):
        pipeline_space(place=("middle",))


def test_toolchain_of_a_missing_version_is_refused(monkeypatch) -> None:
    with pytest.raises(ValueError, match="version"):
        Toolchain.at(999)
    monkeypatch.setenv("ENERGYCORE_LLVM_VERSION", "999")
    assert find_toolchain() is None
    monkeypatch.setenv("ENERGYCORE_LLVM_VERSION", "nineteen")
    with pytest.raises(ValueError, match="ENERGYCORE_LLVM_VERSION"):
        find_toolchain()


# ---- with clang and opt ------------------------------------------------------------------


@pytest.fixture(scope="module")
def toolchain() -> Toolchain:
    tc = find_toolchain()
    if tc is None:
        pytest.skip("no LLVM toolchain (clang-19/opt-19: apt-get install clang-19 llvm-19)")
    return tc


@pytest.fixture(scope="module")
def embench(shared_data):
    root = shared_data / "embench-iot"
    if not root.is_dir():
        pytest.skip(f"Embench-IoT not found at {root}")
    return root


@pytest.fixture(scope="module", params=["crc32", "matmult-int"])
def build(request, toolchain, embench):
    with Build(request.param, embench, toolchain=toolchain) as b:
        yield b


def test_embench_programs_and_bad_arguments(embench, toolchain, tmp_path) -> None:
    progs = embench_programs(embench)
    assert len(progs) == 19 and "crc32" in progs
    with pytest.raises(ValueError, match="program"):
        Build("no-such-program", embench, toolchain=toolchain)
    with pytest.raises(ValueError, match="scale"):
        Build("crc32", embench, toolchain=toolchain, scale=0)
    with pytest.raises(ValueError, match="root"):
        Build("crc32", tmp_path, toolchain=toolchain)


def test_levels_verify_and_shrink_the_ir(build) -> None:
    o0, o2, o3, oz = (build.evaluate([lv]) for lv in ("O0", "O2", "O3", "Oz"))
    for r in (o0, o2, o3, oz):
        assert r["status"] == "ok" and r["verified"], r
        assert r["ir_instructions"] > 0 and r["text_bytes"] > 0
        assert math.isnan(r["run_s"])
    assert oz["ir_instructions"] <= o3["ir_instructions"]  # O3 unrolls and inlines more
    assert oz["ir_instructions"] <= o2["ir_instructions"] * 1.05
    assert build.evaluate([])["ir_instructions"] == o0["ir_instructions"]  # O0: no changes
    # the same pipeline as text and as a list measures the same
    same = build.evaluate("default<Oz>")
    assert same["ir_instructions"] == oz["ir_instructions"]


def test_a_pipeline_that_crashes_opt_or_breaks_the_program_is_a_failure(build) -> None:
    bad = build.evaluate("function(no-such-pass)")
    assert bad["status"] == "failed" and bad["stage"] == "opt" and "no-such-pass" in bad["error"]
    # internalize + globaldce deletes main: the program no longer links
    gone = build.evaluate("internalize,globaldce")
    assert gone["status"] == "failed" and gone["stage"] == "link"


def test_a_miscompile_is_caught_by_verify_benchmark(build, tmp_path) -> None:
    """A fake opt that runs the real one, then makes verify_benchmark return 0 (wrong)."""
    script = tmp_path / "opt"
    script.write_text(
        "#!/bin/sh\n"
        'out=""; prev=""\n'
        'for a in "$@"; do [ "$prev" = "-o" ] && out="$a"; prev="$a"; done\n'
        f'"{build.tc.opt}" "$@" || exit $?\n'
        "sed -i '/@verify_benchmark(/,/^}/s/ret i32 .*/ret i32 0/' \"$out\"\n"
    )
    os.chmod(script, 0o755)
    fake = dataclasses.replace(build.tc, opt=script)
    with Build(build.program, build.root, toolchain=fake) as b:
        r = b.evaluate(["O2"])
    assert r["status"] == "failed" and r["stage"] == "verify", r
    assert not r["verified"]


def test_timed_runs_and_calibration(toolchain, embench) -> None:
    with Build("crc32", embench, toolchain=toolchain) as b:
        r = b.evaluate(["O2"], repeats=2)
        assert r["status"] == "ok" and r["run_s"] > 0
        s = b.calibrate(target_s=0.05)
        assert s >= 1
    with Build("crc32", embench, toolchain=toolchain, scale=2) as b2:
        assert b2.evaluate(["O2"])["verified"]


def test_search_with_the_tuner_and_at_random(build) -> None:
    sp = pipeline_space(["instcombine", "simplifycfg", "gvn", "licm", "sroa"], max_len=3,
                        levels=("none", "Oz"), pool=200)  # fmt: skip
    for strategy in ("tuner", "random", "local", "tuner+local"):
        out = search(build, sp, strategy=strategy, budget=12, batch=6, seed=0)
        assert out["evaluations"] == 12
        assert out["best"] in sp
        rec = [r for _, r in out["records"] if r["status"] == "ok"]
        assert out["best_value"] == min(r["ir_instructions"] for r in rec)
        assert out["trace"][-1] == out["best_value"]
        assert out["trace"] == sorted(out["trace"], reverse=True)
    with pytest.raises(ValueError, match="repeats"):
        search(build, sp, objective="run_s", budget=2)


def test_search_refuses_bad_arguments(build) -> None:
    sp = pipeline_space(["instcombine"], max_len=1)
    with pytest.raises(ValueError, match="strategy"):
        search(build, sp, strategy="annealing", budget=2)
    with pytest.raises(ValueError, match="objective"):
        search(build, sp, objective="speed", budget=2)
