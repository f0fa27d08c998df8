"""Process-level numerical settings that make results independent of worker count and (mostly) of the CPU.

Two sources of run-to-run differences exist on CPU:

* Thread counts. BLAS libraries (numpy's OpenBLAS, torch's MKL) and torch's intra-op pool split sums
  across threads, so the rounding of a reduction depends on how many threads ran it. `pinned_threads`
  sets every pool to one thread for the duration of a job or replicate preparation.
* Kernel choice. MKL picks AVX512, AVX2 or SSE code paths from the CPU it finds, and ATen (torch's own
  element-wise and reduction kernels) picks AVX512, AVX2 or scalar ones; their rounding differs, and
  full-batch Adam on an MLP amplifies one-ulp differences into visible metric changes (measured: up to
  1e-3 in ``model_err`` and 5e-3 in ``edit_score`` on the smoke suite, float64 training included).
  `apply_numeric_defaults` therefore sets ``MKL_CBWR=COMPATIBLE`` (MKL's conditional numerical
  reproducibility: one code path on every x86 CPU) and ``ATEN_CPU_CAPABILITY=default`` (ATen's kernels
  compiled for the x86-64 baseline, the same on every CPU; about 25% more CPU time than AVX512 here).
  Both libraries read their variable at their first call, not at ``import torch``, so this runs when
  ``cowbench`` is imported; a variable the user already set is kept (and recorded in the machine
  fingerprint), e.g. ``ATEN_CPU_CAPABILITY=avx2`` for speed at the price of cross-CPU identity.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

NUMERIC_DEFAULTS = {"MKL_CBWR": "COMPATIBLE", "ATEN_CPU_CAPABILITY": "default"}


def apply_numeric_defaults() -> dict[str, str]:
    """Set each variable of `NUMERIC_DEFAULTS` the user has not set; return the values in force.

    Child processes (joblib/loky workers, isolated job processes) inherit them through the environment.
    Without effect on a library that already ran its first call in this process (the fingerprint still
    records the variable, so a report states what was asked for).
    """
    return {name: os.environ.setdefault(name, value) for name, value in NUMERIC_DEFAULTS.items()}


@contextlib.contextmanager
def pinned_threads(n: int = 1) -> Iterator[None]:
    """Run with ``n`` threads in every BLAS/OpenMP pool (threadpoolctl) and in torch, restoring them after.

    Parameters
    ----------
    n : int
        Threads per pool; 1 in the harness, so a result does not depend on how many workers share a machine.
    """
    from cowbench.models import torch_threads

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"thread count must be a positive integer, got {n!r}")
    with _controller().limit(limits=n), torch_threads(n):
        yield


_CONTROLLER: list = []  # [(len(sys.modules) when scanned, ThreadpoolController)]


def _controller():
    """A threadpoolctl controller of the BLAS/OpenMP libraries loaded in this process, scanned again only when
    a module was imported since the last scan (a native library comes with one). A scan walks every loaded
    shared object (4-5 ms with torch loaded) and a job entered this context several times."""
    import sys

    import scipy.linalg  # noqa: F401  load scipy's own OpenBLAS now: threadpoolctl limits only loaded libraries
    from threadpoolctl import ThreadpoolController

    if not _CONTROLLER or _CONTROLLER[0][0] != len(sys.modules):
        controller = ThreadpoolController()
        _CONTROLLER[:] = [(len(sys.modules), controller)]
    return _CONTROLLER[0][1]


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
