"""The one thread pool of the C++ core: thread counts capped at the machine, and a thread that
cannot be created (address-space limit) never aborts the process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import energycore
from energycore import EnergyModel, GradientBoosting
from tests.helpers import noisy_problem

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc/self/status are Linux's"
)
#: A sanitizer runtime reserves terabytes of address space: no RLIMIT_AS under it.
UNDER_ASAN = "asan" in os.environ.get("LD_PRELOAD", "")

#: The folder holding the energycore package under test (the child imports the same one).
PYTHON_DIR = str(Path(energycore.__file__).resolve().parents[1])

# The child warms up at full memory, then caps its address space a few MiB above what it uses,
# so that not even one 8 MiB thread stack can be mapped, and asks for a thousand threads.
CHILD = """
import resource, sys, warnings
import numpy as np, pandas as pd
from energycore import EnergyModel, GradientBoosting
warnings.simplefilter("ignore")
which, slack_mib = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
if which == "bootstrap":
    n = 60
    X = pd.DataFrame({"tp": rng.choice([1, 2, 4, 8], n), "pp": np.ones(n),
                      "batch": rng.integers(1, 64, n), "input_len": rng.integers(64, 2048, n),
                      "output_len": rng.integers(16, 512, n)}).astype(float)
    y = (X["batch"] * X["output_len"] * 0.01 + X["input_len"] * 0.001 + 5).to_numpy()
    model = EnergyModel(n_threads=1000).fit(X, y)
else:
    X = rng.normal(size=(30000, 10))
    y = X[:, 0] + rng.normal(size=30000)
    GradientBoosting(n_estimators=2, n_jobs=1).fit(X[:100], y[:100])
vm = [int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmSize")]
resource.setrlimit(resource.RLIMIT_AS, (vm[0] * 1024 + slack_mib * 2**20, resource.RLIM_INFINITY))
try:
    if which == "bootstrap":
        result = model.bootstrap(X, y, n=1000)
        print("result", result.samples.shape)
    else:
        gb = GradientBoosting(n_estimators=3, n_jobs=2000).fit(X, y)
        print("result", gb.predict(X[:3]).shape)
except (RuntimeError, MemoryError) as e:
    print("error", type(e).__name__, e)
"""


@pytest.mark.skipif(UNDER_ASAN, reason="an address-space cap and a sanitizer runtime do not mix")
@pytest.mark.parametrize("which", ["bootstrap", "gbdt"])
@pytest.mark.parametrize("slack_mib", [4, 64])
def test_thread_creation_failure_does_not_abort(which: str, slack_mib: int) -> None:
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, which, str(slack_mib)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert proc.stdout.startswith(("result", "error RuntimeError", "error MemoryError")), (
        proc.stdout,
        proc.stderr[-2000:],
    )


def test_more_threads_than_cores_gives_the_serial_answer() -> None:
    X, y, _ = noisy_problem(11, n=120, noise=0.05)
    one = EnergyModel(n_threads=1).fit(X, y)
    many = EnergyModel(n_threads=4096).fit(X, y)
    np.testing.assert_array_equal(one.coef_, many.coef_)
    b1 = one.bootstrap(X, y, n=40, seed=3)
    bn = many.bootstrap(X, y, n=40, seed=3)
    assert b1.samples.shape[0] > 30
    np.testing.assert_array_equal(b1.samples, bn.samples)


def test_gbdt_any_thread_count_same_model() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(25000, 10))
    y = X[:, 0] - 2 * X[:, 1] + rng.normal(size=25000)
    a = GradientBoosting(n_estimators=5, n_jobs=1).fit(X, y).predict(X[:50])
    b = GradientBoosting(n_estimators=5, n_jobs=999).fit(X, y).predict(X[:50])
    np.testing.assert_array_equal(a, b)
