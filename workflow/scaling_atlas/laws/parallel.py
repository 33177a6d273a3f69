"""Process pools for fits: one BLAS thread per worker.

Parallel fits here run in processes (bootstrap resamples, backtest families, Multi-Power-Law
refits). NumPy's OpenBLAS starts as many threads as the machine has cores, and Snakemake sets
``OPENBLAS_NUM_THREADS`` to the job's threads, so k workers with k BLAS threads each put k²
threads on k cores. Their spin-waits made a Chinchilla fit 3× slower in a pair of processes
on 2 cores, and far slower beside other jobs (``benchmarks/bench_blas_threads.py``). Workers of
``worker_pool`` limit every BLAS library they load to one thread (threadpoolctl, as
scikit-learn does), so the processes are the only parallelism.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor


def one_blas_thread() -> None:
    """Limit every BLAS/OpenMP library loaded in this process to one thread (for the rest of
    the process's life)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def worker_pool(max_workers: int) -> ProcessPoolExecutor:
    """A ``ProcessPoolExecutor`` of ``max_workers`` processes, each with one BLAS thread."""
    return ProcessPoolExecutor(max_workers=max_workers, initializer=one_blas_thread)
