"""Fit worker pools run one BLAS thread per process (the processes are the parallelism)."""

from concurrent.futures import ProcessPoolExecutor

import pytest
from threadpoolctl import threadpool_info

from scaling_atlas.laws.parallel import worker_pool


def blas_threads(_=None) -> int:
    return max(info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas")


def test_worker_pool_workers_use_one_blas_thread():
    import numpy  # noqa: F401  (loads OpenBLAS)

    with ProcessPoolExecutor(2) as plain:
        default = list(plain.map(blas_threads, range(2)))
    if max(default) == 1:
        pytest.skip("this machine's BLAS starts one thread anyway (one core)")
    with worker_pool(2) as pool:
        assert list(pool.map(blas_threads, range(4))) == [1, 1, 1, 1]
    # the parent process keeps its own setting
    assert blas_threads() == max(default)


def test_bootstrap_gives_the_same_draws_in_one_process_and_in_a_pool():
    import numpy as np
    import pandas as pd

    from scaling_atlas.laws import LawFit

    rng = np.random.default_rng(0)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e9), 60))
    D = np.exp(rng.uniform(np.log(1e9), np.log(1e11), 60))
    data = pd.DataFrame({"N": N, "D": D})
    loss = (1.7 + 400 / N**0.34 + 400 / D**0.28) * np.exp(rng.normal(0, 0.01, 60))
    fit = LawFit("chinchilla").fit(data, loss)
    serial = fit.bootstrap(60, seed=3, n_jobs=1).draws_theta_.copy()
    pooled = fit.bootstrap(60, seed=3, n_jobs=2).draws_theta_
    np.testing.assert_allclose(serial, pooled, rtol=1e-10)
