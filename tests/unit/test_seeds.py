import hashlib
import math

import pytest

from cowbench.seeds import canonical_json, derive_seed, stable_hash


def test_canonical_json_sorts_keys_and_is_whitespace_free():
    assert canonical_json({"b": 1, "a": [1.5, "x"]}) == '{"a":[1.5,"x"],"b":1}'


def test_canonical_json_keeps_floats_exact_and_distinct_from_ints():
    assert canonical_json(0.1) == "0.1"
    assert canonical_json(1.0) != canonical_json(1)
    assert float(canonical_json(1 / 3)) == 1 / 3


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_rejected(bad):
    with pytest.raises(ValueError, match="non-finite"):
        canonical_json({"x": bad})


def test_stable_hash_is_sha256_of_the_canonical_text():
    # unlike Python's salted hash(), this is the same in every process and on every machine
    assert stable_hash({"b": [1], "a": 0.5}) == hashlib.sha256(b'{"a":0.5,"b":[1]}').hexdigest()


def test_derive_seed_depends_on_every_part():
    base = derive_seed(0, "data", "abc", 0)
    assert base == derive_seed(0, "data", "abc", 0)
    assert len({base, derive_seed(1, "data", "abc", 0), derive_seed(0, "data", "abd", 0),
                derive_seed(0, "data", "abc", 1), derive_seed(0, "fit", "abc", 0)}) == 5


def test_derive_seed_rejects_bad_roots():
    with pytest.raises(ValueError, match="root seed"):
        derive_seed(-1, "x")
