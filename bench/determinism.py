"""Process-level numerical settings that make results independent of worker count and (mostly) of the CPU.

Two sources of run-to-run differences exist on CPU:

* Thread counts. BLAS libraries (numpy's OpenBLAS, torch's MKL) and torch's intra-op pool split sums
  across threads, so the rounding of a reduction depends on how many threads ran it. `pinned_threads`
  sets every pool to one thread for the duration of a job or replicate preparation.
* Kernel choice. MKL picks AVX512, AVX2 or SSE code paths from the CPU it finds, and their float32
  rounding differs. ``MKL_CBWR=COMPATIBLE`` (MKL's conditional numerical reproducibility) makes MKL take
  the same code path on every x86 CPU. MKL reads the variable at its first call, not at ``import
  torch``, so `apply_mkl_cbwr` runs when ``cowbench`` is imported, before any cowbench code calls into
  MKL; a user who already set ``MKL_CBWR`` keeps their value. ATen's own vectorised kernels (selected by
  ``ATEN_CPU_CAPABILITY``) are not pinned: AVX2 and AVX512 gave identical subject weights here, and
  forcing the scalar ``default`` path would slow every element-wise op.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

MKL_CBWR_DEFAULT = "COMPATIBLE"


def apply_mkl_cbwr() -> str:
    """Set ``MKL_CBWR`` to `MKL_CBWR_DEFAULT` unless the user set it; return the value in force.

    Child processes (joblib/loky workers) inherit it through the environment.
    """
    return os.environ.setdefault("MKL_CBWR", MKL_CBWR_DEFAULT)


@contextlib.contextmanager
def pinned_threads(n: int = 1) -> Iterator[None]:
    """Run with ``n`` threads in every BLAS/OpenMP pool (threadpoolctl) and in torch, restoring them after.

    Parameters
    ----------
    n : int
        Threads per pool; 1 in the harness, so a result does not depend on how many workers share a machine.
    """
    import scipy.linalg  # noqa: F401  load scipy's own OpenBLAS now: threadpoolctl limits only loaded libraries
    from threadpoolctl import threadpool_limits

    from cowbench.models import torch_threads

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"thread count must be a positive integer, got {n!r}")
    with threadpool_limits(limits=n), torch_threads(n):
        yield


@contextlib.contextmanager
def deterministic(n_threads: int = 1) -> Iterator[None]:
    """`pinned_threads` plus torch's deterministic algorithms: the context every job runs in."""
    import torch

    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        with pinned_threads(n_threads):
            yield
    finally:
        torch.use_deterministic_algorithms(previous)
