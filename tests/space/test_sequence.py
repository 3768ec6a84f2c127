"""Sequence axes and spaces: counts against brute force, constraints, sampling, moves, features."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from energycore import SequenceAxis, SequenceSpace, Tuner
from energycore.space import SequenceConstraint

CHOICES = ("a", "b", "c", "d")


def brute(choices, lo, hi, repeat):
    """Every sequence by filtering all products (independent of the axis' own enumeration)."""
    out = []
    for n in range(lo, hi + 1):
        for t in itertools.product(choices, repeat=n):
            if repeat or len(set(t)) == n:
                out.append(t)
    return out


@pytest.mark.parametrize(
    ("lo", "hi", "repeat"),
    [(0, 3, True), (1, 4, False), (2, 2, True), (0, 0, False), (3, 4, False)],
)
def test_count_and_enumeration_match_brute_force(lo, hi, repeat) -> None:
    ax = SequenceAxis("p", CHOICES, lo, hi, repeat=repeat)
    ref = brute(CHOICES, lo, hi, repeat)
    assert ax.count() == len(ref)
    got = list(ax)
    assert len(got) == len(set(got)) == len(ref)
    assert set(got) == set(ref)


def test_permutations_default_to_full_length() -> None:
    ax = SequenceAxis("p", CHOICES, repeat=False)
    assert ax.max_len == 4
    assert ax.count() == sum(len(list(itertools.permutations(CHOICES, n))) for n in range(5))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"choices": []}, "choices"),
        ({"choices": ["a", "a"]}, "choices"),
        ({"choices": ["a"], "repeat": True}, "max_len"),
        ({"choices": ["a", "b"], "min_len": 3, "max_len": 2}, "min_len"),
        ({"choices": ["a", "b"], "max_len": 3, "repeat": False}, "max_len"),
        ({"choices": ["a"], "max_len": -1}, "max_len"),
        ({"choices": [1.5], "max_len": 1}, "choices"),
    ],
)
def test_bad_axis_names_the_field(kwargs, field) -> None:
    with pytest.raises(ValueError, match=field):
        SequenceAxis("p", **kwargs)


def test_constrained_count_matches_brute_force() -> None:
    cons = [
        "'a' in p",
        "before(p, 'a', 'b')",
        "count(p, 'c') <= 1",
        "opt != 'O1' or len(p) <= 2",
    ]
    sp = SequenceSpace(
        [SequenceAxis("p", CHOICES, 1, 4)], axes={"opt": ["O1", "O2"]}, constraints=cons
    )
    ref = 0
    for t in brute(CHOICES, 1, 4, True):
        for opt in ("O1", "O2"):
            pa = [i for i, x in enumerate(t) if x == "a"]
            pb = [i for i, x in enumerate(t) if x == "b"]
            ok = "a" in t and (not pb or max(pa) < min(pb)) and t.count("c") <= 1
            ok = ok and (opt != "O1" or len(t) <= 2)
            ref += ok
    assert sp.size() == 2 * SequenceAxis("p", CHOICES, 1, 4).count()
    assert sp.count() == ref
    assert all(sp.satisfies(c) for c in sp)


@pytest.mark.parametrize(
    ("expr", "seq", "want"),
    [
        ("'a' in p", ("b", "a"), True),
        ("'a' not in p", ("b", "a"), False),
        ("p.index('a') < p.index('b')", ("a", "b"), True),
        ("p.index('a') < p.index('b')", ("b", "a"), False),
        ("index(p, 'a') < index(p, 'b')", ("a",), False),  # absent: false
        ("before(p, 'a', 'b')", ("a", "c"), True),  # vacuous
        ("before(p, 'a', 'b')", ("a", "b", "a"), False),
        ("adjacent(p, 'a', 'b')", ("c", "a", "b"), True),
        ("adjacent(p, 'a', 'b')", ("a", "c", "b"), False),
        ("p[0] == 'c'", ("c", "a"), True),
        ("p[-1] == 'a'", ("c", "a"), True),
        ("p[5] == 'a'", ("c", "a"), False),  # out of range: false
        ("unique(p) and len(p) + 1 >= 3", ("c", "a"), True),
        ("p.count('a') * 2 == 4", ("a", "b", "a"), True),
        ("not ('a' in p or 'b' in p)", ("c",), True),
        ("1 <= len(p) < 3", ("c", "a", "b"), False),
        ("p[0] in ('a', 'b')", ("b",), True),
    ],
)
def test_constraint_language(expr, seq, want) -> None:
    assert SequenceConstraint(expr, ["p"])({"p": seq}) is want


@pytest.mark.parametrize(
    "expr",
    [
        "__import__('os').system('true')",
        "p.__class__",
        "open('x')",
        "q == 1",
        "[x for x in p]",
        "lambda: 1",
        "p[len(p)]",
        "p ** 2",
        "len(p, p)",
        "",
        "'a' in",
    ],
)
def test_constraint_language_rejects_unsafe_or_bad_code(expr) -> None:
    with pytest.raises(ValueError, match="constraints"):
        SequenceConstraint(expr, ["p"])


def test_validate_and_contains_name_the_field() -> None:
    sp = SequenceSpace(
        [SequenceAxis("p", CHOICES, 1, 2, repeat=False)],
        axes={"opt": ["O1", "O2"]},
        constraints=["'a' in p"],
    )
    assert sp.validate({"p": ["a", "b"], "opt": "O1"}) == {"p": ("a", "b"), "opt": "O1"}
    assert {"p": ("a",), "opt": "O2"} in sp
    assert {"p": ("b",), "opt": "O2"} not in sp
    for bad, field in [
        ({"p": ("a", "a"), "opt": "O1"}, "repeat"),
        ({"p": ("a", "z"), "opt": "O1"}, "unknown item"),
        ({"p": (), "opt": "O1"}, "length"),
        ({"p": ("a",), "opt": "O9"}, "opt"),
        ({"p": ("b",), "opt": "O1"}, "constraint"),
        ({"p": ("a",)}, "missing"),
        ({"p": ("a",), "opt": "O1", "x": 1}, "unknown parameter"),
    ]:
        with pytest.raises(ValueError, match=field):
            sp.validate(bad)


def test_space_rejects_duplicate_names_and_unknown_constraint_names() -> None:
    ax = SequenceAxis("p", CHOICES, 0, 1)
    with pytest.raises(ValueError, match="names"):
        SequenceSpace([ax], axes={"p": [1]})
    with pytest.raises(ValueError, match="unknown name"):
        SequenceSpace([ax], constraints=["q > 1"])
    with pytest.raises(ValueError, match="sequences"):
        SequenceSpace([])


def test_sampling_respects_constraints_bounds_and_seed() -> None:
    sp = SequenceSpace(
        [SequenceAxis("p", CHOICES, 2, 4, repeat=False)],
        axes={"k": [1, 2, 3]},
        fixed={"limit": 3},
        constraints=["before(p, 'a', 'd')", "len(p) <= limit or k == 1"],
    )
    s1 = sp.sample(50, seed=3)
    assert len(s1) == 50
    assert s1 == sp.sample(50, seed=3)
    assert s1 != sp.sample(50, seed=4)
    keys = {(c["p"], c["k"]) for c in s1}
    assert len(keys) == 50
    for c in s1:
        assert c in sp
    assert {len(c["p"]) for c in s1} == {2, 3, 4}
    # a space with fewer points than asked gives them all, once each
    small = SequenceSpace([SequenceAxis("p", ("a", "b"), 1, 1)])
    assert sorted(c["p"] for c in small.sample(10, seed=0)) == [("a",), ("b",)]


def test_neighbourhood_moves_are_one_edit_away() -> None:
    ax = SequenceAxis("p", CHOICES, 1, 3, repeat=False)
    seq = ("a", "b")
    nb = ax.neighbours(seq)
    seqs = [t for _, t in nb]
    assert len(seqs) == len(set(seqs)) and seq not in seqs
    moves = dict((t, m) for m, t in nb)
    assert moves[("b", "a")] == "swap"
    assert moves[("a", "c", "b")] == "insert"
    assert moves[("a",)] == "delete"
    assert moves[("a", "d")] == "replace"

    # brute force: every valid sequence at edit distance 1 (or a transposition) is there
    def one_edit(t):
        if len(t) == len(seq):
            diff = [i for i in range(len(t)) if t[i] != seq[i]]
            return len(diff) == 1 or (len(diff) == 2 and sorted(t) == sorted(seq))
        short, long_ = (t, seq) if len(t) < len(seq) else (seq, t)
        return len(long_) - len(short) == 1 and any(
            long_[:i] + long_[i + 1 :] == short for i in range(len(long_))
        )

    ref = {t for t in ax if t != seq and one_edit(t)}
    assert set(seqs) == ref
    assert all(len(set(t)) == len(t) for t in seqs)  # no repeats
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert ax.mutate(seq, rng) in ref


def test_space_neighbours_keep_constraints() -> None:
    sp = SequenceSpace(
        [SequenceAxis("p", CHOICES, 1, 3)], axes={"opt": ["O1", "O2"]}, constraints=["'a' in p"]
    )
    base = {"p": ("a", "b"), "opt": "O1"}
    nb = sp.neighbours(base)
    assert nb and all(c in sp for c in nb)
    assert {"p": ("a", "b"), "opt": "O2"} in nb
    assert {"p": ("b",), "opt": "O1"} not in nb  # deleting 'a' breaks the constraint
    rng = np.random.default_rng(1)
    for _ in range(10):
        assert sp.mutate(base, rng) in nb


def test_features_counts_positions_pairs() -> None:
    sp = SequenceSpace([SequenceAxis("p", ("a", "b", "c"), 0, 4)], axes={"opt": ["O2", "Oz"]})
    names = sp.feature_names()
    X = sp.encode([{"p": ("b", "a", "b"), "opt": "Oz"}, {"p": (), "opt": "O2"}])
    assert X.shape == (2, len(names))
    row = dict(zip(names, X[0]))
    assert row["p:len"] == 3
    assert (row["p:count[a]"], row["p:count[b]"], row["p:count[c]"]) == (1, 2, 0)
    assert (row["p:pos[a]"], row["p:pos[b]"], row["p:pos[c]"]) == (0.5, 0.25, 0.0)
    assert row["p:pair[a<b]"] == -1  # the first b precedes the first a
    assert row["p:pair[a<c]"] == 0 and row["p:pair[b<c]"] == 0
    assert row["opt"] == 1
    assert not X[1, :-1].any()
    few = SequenceSpace([SequenceAxis("p", ("a", "b", "c"), 0, 4)], max_pairs=2)
    assert not any("pair" in n for n in few.feature_names())
    assert few.encode([{"p": ("a",)}]).shape == (1, len(few.feature_names()))


def test_tuner_accepts_a_sequence_space_and_finds_a_good_order() -> None:
    ax = SequenceAxis("p", CHOICES, 1, 4, repeat=False)
    sp = SequenceSpace([ax], axes={"opt": ["O1", "O2"]}, constraints=["'a' in p"], pool=300)

    def cost(c):
        p = c["p"]
        if "d" in p and "b" in p and p.index("d") < p.index("b"):
            return None  # an invalid ordering
        return 10.0 - 2 * len(p) + (c["opt"] == "O1") + 3 * (p[0] != "a")

    tuner = Tuner(sp, objective="cost", budget=60, batch=10, seed=0)
    assert tuner.n_configs == sp.count() == 98  # 128 before constraints: all enumerated
    assert all(isinstance(tuner.config(i)["p"], tuple) for i in range(3))
    tuner.run(lambda c: cost(c))
    best = tuner.best_config_
    assert best is not None and best in sp
    assert tuner.best_value_ <= 3.0  # the optimum is 2 (a first, four passes, O2)
    assert tuner.n_failed > 0


def test_tuner_journal_resumes_sequence_configs(tmp_path) -> None:
    sp = SequenceSpace([SequenceAxis("p", CHOICES, 0, 2)])
    path = tmp_path / "t.jsonl"
    with Tuner(sp, objective="x", budget=10, batch=5, seed=1, journal=path) as t:
        cs = t.ask()
        t.tell(cs, [float(len(c["p"])) for c in cs])
    with Tuner(sp, objective="x", budget=10, batch=5, seed=1, journal=path) as t2:
        assert t2.n_measured == 5
        assert {c["p"] for c in cs}.isdisjoint({c["p"] for c in t2.ask()})


def test_repr() -> None:
    sp = SequenceSpace([SequenceAxis("p", CHOICES, 1, 2, repeat=False)], constraints=["'a' in p"])
    assert repr(sp) == "SequenceSpace(p[1..2] of 4 (no repeats), 1 constraints, size 16)"


def test_tuner_pool_samples_a_large_space() -> None:
    sp = SequenceSpace([SequenceAxis("p", CHOICES, 0, 6)], constraints=["'a' in p"], pool=200)
    t = Tuner(sp, objective="x", budget=5, seed=2)
    assert t.n_configs == 200
    assert t.features_.shape == (200, len(sp.feature_names()))
    assert all(t.config(i) in sp for i in range(200))
