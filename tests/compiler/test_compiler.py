"""energycore.compiler: pass pipelines on Embench-IoT programs with clang/opt (skipped without)."""

from __future__ import annotations

import dataclasses
import math
import os

import pytest

from energycore.compiler import (
    LEVELS,
    PASSES,
    SIZE_OPTIONS,
    SPEED_OPTIONS,
    Build,
    Toolchain,
    config_options,
    config_passes,
    count_ir_instructions,
    embench_programs,
    find_toolchain,
    ir_features,
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


def test_ir_features_count_opcodes_blocks_and_functions() -> None:
    f = ir_features(IR)
    assert f["functions"] == 2 and f["blocks"] == 3  # f: entry + odd.label; e: entry
    assert f["instructions"] == count_ir_instructions(IR) == 4
    assert (f["op:add"], f["op:br"], f["op:ret"]) == (1, 1, 2)
    assert sum(v for k, v in f.items() if k.startswith("op:")) == f["instructions"]
    call = "define void @c() {\n  %1 = tail call i32 @h(i32 1)\n  call void @e()\n  ret void\n}\n"
    assert ir_features(call)["op:call"] == 2


def test_option_axes_of_the_pipeline_space() -> None:
    opts = {"opt_unroll": ("", "-disable-loop-unrolling"), "llc_cpu": ("", "-mcpu=native")}
    sp = pipeline_space(["gvn"], max_len=1, levels=("Oz",), place=("after",), options=opts)
    assert sp.size() == 2 * 2 * 2
    cfgs = list(sp)
    got = {tuple(map(tuple, config_options(c))) for c in cfgs}
    assert got == {((), ()), (("-disable-loop-unrolling",), ()), ((), ("-mcpu=native",)),
                   (("-disable-loop-unrolling",), ("-mcpu=native",))}  # fmt: skip
    assert config_options({"opt_a": "-x -y", "level": "Oz", "llc_b": ""}) == (["-x", "-y"], [])
    for name, vals in [*SIZE_OPTIONS.items(), *SPEED_OPTIONS.items()]:
        assert name.startswith("opt_") and vals[0] == ""
    with pytest.raises(ValueError, match="options"):
        pipeline_space(options={"unroll": ("", "-x")})
    with pytest.raises(ValueError, match="options"):
        pipeline_space(options={"opt_unroll": ("", "disable")})
    with pytest.raises(ValueError, match="options"):
        pipeline_space(options={"opt_unroll": ()})


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


def test_opt_and_llc_switches_are_applied_and_checked(build) -> None:
    oz = build.evaluate(["Oz"])
    nu = build.evaluate(["Oz"], opt_args=["-disable-loop-unrolling"])
    assert nu["status"] == "ok" and nu["verified"] and nu["opt_args"] == ["-disable-loop-unrolling"]
    assert nu["ir_instructions"] <= oz["ir_instructions"]
    if build.program == "matmult-int":  # Oz fully unrolls its small constant loops
        assert nu["ir_instructions"] < 0.8 * oz["ir_instructions"]
    bad = build.evaluate(["Oz"], opt_args=["-no-such-switch"])
    assert bad["status"] == "failed" and bad["stage"] == "opt"
    bad = build.evaluate(["O2"], llc_args=["-mcpu=no-such-cpu-xyz", "-no-such-switch"])
    assert bad["status"] == "failed" and bad["stage"] == "codegen"
    for wrong in ("-O2", ["O2"], ["-o", "x"], ["-passes=gvn"]):
        with pytest.raises(ValueError, match="opt_args"):
            build.evaluate(["O2"], opt_args=wrong)
    with pytest.raises(ValueError, match="timer"):
        build.evaluate(["O2"], timer="gpu")
    f = build.features(["Oz"])
    assert f["instructions"] == oz["ir_instructions"] and f["functions"] >= 2
    with pytest.raises(ValueError, match="passes"):
        build.features("function(no-such-pass)")


def test_compare_times_pipelines_interleaved(toolchain, embench) -> None:
    with Build("crc32", embench, toolchain=toolchain) as b:
        specs = [{"passes": ["O3"]}, {"passes": "internalize,globaldce"},
                 {"passes": ["O2"], "opt_args": ["-inline-threshold=500"]}, {"passes": ["O3"]}]  # fmt: skip
        out = b.compare(specs, repeats=3, timer="cpu")
        assert [o["status"] for o in out] == ["ok", "failed", "ok", "ok"]
        assert out[1]["stage"] == "link" and math.isnan(out[1]["run_s"])
        for o in (out[0], out[2], out[3]):
            assert o["verified"] and 0 < o["run_s"] < 60
        assert out[0]["ir_instructions"] == out[3]["ir_instructions"]
        assert out[2]["opt_args"] == ["-inline-threshold=500"]
        wall = b.compare(specs[:1], repeats=1, timer="wall")
        assert wall[0]["run_s"] > 0
        with pytest.raises(ValueError, match="repeats"):
            b.compare(specs, repeats=0)
        with pytest.raises(ValueError, match="pipelines"):
            b.compare([])
        with pytest.raises(ValueError, match="pipelines"):
            b.compare([{"opt_args": []}])
        with pytest.raises(ValueError, match="timer"):
            b.compare(specs, timer="gpu")
        r = b.evaluate(["O2"], repeats=2, timer="cpu")
        assert r["status"] == "ok" and 0 < r["run_s"] < 60


def test_search_over_option_axes(build) -> None:
    sp = pipeline_space(["instcombine", "simplifycfg"], max_len=1, levels=("Oz",),
                        place=("after",), options={"opt_unroll": SIZE_OPTIONS["opt_unroll"]})  # fmt: skip
    out = search(build, sp, strategy="random", budget=6, seed=0)
    assert out["evaluations"] == 6 and out["failed"] == 0
    opts = {tuple(r.get("opt_args", ())) for _, r in out["records"]}
    assert opts == {(), ("-disable-loop-unrolling",)}  # the pool is the whole space (6)
    assert out["best_options"] == config_options(out["best"])
    best = next(r for c, r in out["records"] if c == out["best"])
    assert best["ir_instructions"] == out["best_value"]
