"""Canonical JSON, stable hashes and the three derived seeds of DESIGN.md.

Python's ``hash()`` is salted per process, so every id and seed here goes through sha256 of a canonical
JSON text instead: the same spec gives the same id on every machine and in every worker.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _canonical(obj: Any) -> Any:
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        value = float(obj)
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"cannot put a non-finite float ({value}) in a spec")
        return value  # json writes floats by repr, which round-trips exactly
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in obj.items()}
    if isinstance(obj, Sequence):
        return [_canonical(v) for v in obj]
    raise TypeError(f"cannot put a {type(obj).__name__} in a spec")


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace, floats by ``repr``; NaN and infinities are rejected."""
    return json.dumps(_canonical(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def stable_hash(obj: Any) -> str:
    """sha256 hex digest of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


def stable_int(obj: Any) -> int:
    """A 64-bit integer from :func:`stable_hash`, for seeding."""
    return int(stable_hash(obj)[:16], 16)


def derive_seed(root: int, *parts: Any) -> int:
    """A 32-bit seed from a root seed and a path of names, via ``numpy.random.SeedSequence``.

    ``derive_seed(root, "data", scenario_id, replicate)`` is the data seed of DESIGN.md; the fit and
    hyperparameter seeds are built the same way from their own parts.
    """
    if isinstance(root, bool) or not isinstance(root, int | np.integer) or root < 0:
        raise ValueError(f"a root seed must be a non-negative integer, got {root!r}")
    key = tuple(stable_int(p) & 0xFFFFFFFF for p in parts)
    return int(np.random.SeedSequence(entropy=int(root), spawn_key=key).generate_state(1)[0])
