"""The machine a result was computed on: CPU, SIMD flags, torch and BLAS builds, numerical settings.

Floating-point results depend on which kernels the CPU makes MKL, ATen and OpenBLAS take, so a
published number carries this fingerprint (run records, report headers). Read once per process.
"""

from __future__ import annotations

import copy
import functools
import os
import platform
from typing import Any

SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f")
NUMERIC_ENV = ("MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY", "OPENBLAS_CORETYPE",
               "ONEDNN_MAX_CPU_ISA", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _cpuinfo(path: str = "/proc/cpuinfo") -> tuple[str | None, list[str]]:
    """(model name, the SIMD flags of `SIMD_FLAGS` present) of the first CPU; (None, []) off Linux."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None, []
    model, flags = None, set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    return model, [f for f in SIMD_FLAGS if f in flags]


def _torch_build() -> dict[str, Any]:
    import torch

    config = torch.__config__.show()
    blas = next((line.split(",")[0].split("=", 1)[1] for line in config.splitlines() if "BLAS_INFO=" in line), None)
    for line in config.splitlines():  # e.g. "Intel(R) oneAPI Math Kernel Library Version 2024.2-Product ..."
        if "Math Kernel Library Version" in line:
            blas = line.strip(" -").split(" for ")[0]
            break
    return {"version": torch.__version__, "blas": blas, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "mkldnn": bool(torch.backends.mkldnn.is_available())}


def _numpy_blas() -> list[dict[str, Any]]:
    import scipy.linalg  # noqa: F401  so scipy's BLAS is listed too
    from threadpoolctl import threadpool_info

    found = [{k: info.get(k) for k in ("internal_api", "prefix", "version", "architecture", "threading_layer")}
             for info in threadpool_info() if info.get("user_api") == "blas"]
    # threadpoolctl lists libraries in load order, which differs between processes: sort for one fingerprint
    return sorted(found, key=lambda b: [str(b.get(k)) for k in ("internal_api", "version", "prefix", "architecture")])


@functools.lru_cache(maxsize=1)
def _fingerprint() -> dict[str, Any]:
    model, flags = _cpuinfo()
    return {
        "cpu": model or platform.processor() or None,
        "machine": platform.machine(),
        "simd": flags,
        "logical_cpus": os.cpu_count(),
        "torch": _torch_build(),
        "blas": _numpy_blas(),
        "env": {k: os.environ.get(k) for k in NUMERIC_ENV},
    }


def machine_fingerprint() -> dict[str, Any]:
    """CPU model and SIMD flags, torch build and kernel level, numpy/scipy BLAS, numerical env variables.

    Returns
    -------
    dict
        ``cpu``, ``machine``, ``simd`` (the flags of `SIMD_FLAGS` the CPU has), ``logical_cpus``, ``torch``
        (version, BLAS build, ATen CPU capability, oneDNN), ``blas`` (one entry per loaded OpenBLAS/MKL, as
        threadpoolctl reports it) and ``env`` (the variables of `NUMERIC_ENV`, None when unset). Read once
        per process; each call returns a copy.
    """
    return copy.deepcopy(_fingerprint())


def fingerprint_summary(fp: dict[str, Any] | None = None) -> str:
    """One line for a report header, e.g. ``Intel Xeon · avx2 avx512f fma · torch 2.13.0 (MKL 2024.2, AVX512)``."""
    fp = machine_fingerprint() if fp is None else fp
    torch = fp.get("torch") or {}
    blas = torch.get("blas") or "?"
    blas = blas.replace("Intel(R) oneAPI Math Kernel Library Version", "MKL").split("-Product")[0]
    numpy_blas = ", ".join(sorted(f"{b.get('internal_api')} {b.get('version')} {b.get('architecture') or ''}".strip()
                                  for b in fp.get("blas") or []))
    env = ", ".join(f"{k}={v}" for k, v in (fp.get("env") or {}).items() if v is not None)
    simd = " ".join(fp.get("simd") or []) or "no SIMD flags"
    return (f"{fp.get('cpu') or 'unknown CPU'} ({fp.get('machine')}) · {simd}"
            f" · torch {torch.get('version')} ({blas}, {torch.get('cpu_capability')})"
            f" · numpy/scipy BLAS {numpy_blas or '?'}" + (f" · {env}" if env else ""))
