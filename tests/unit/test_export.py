"""`cowbench.export`: files that read back exactly, a card that tells the truth, byte-identical reruns."""

import hashlib
import json
import zipfile

import numpy as np
import pandas as pd
import pytest

import cowbench as cb
from cowbench.data import SPLITS
from cowbench.errors import InputError
from cowbench.export import check_formats, export_dataset

SMALL = {"n_train": 200, "n_val": 50, "n_test": 200}


def read_csv(path):
    # pandas 3 parses floats exactly by default (and deprecates the option); older pandas needs round_trip
    exact = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
    return pd.read_csv(path, **exact)


@pytest.fixture(scope="module")
def scn():
    return cb.make_scenario("cow", **SMALL)


@pytest.fixture(scope="module")
def exported(scn, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "cow"
    card = export_dataset(scn, 3, out)
    return out, card


def files_of(out):
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def test_the_card_describes_the_scenario_and_the_sample(scn, exported):
    out, card = exported
    assert json.loads((out / "card.json").read_text()) == card
    data = scn.sample(3)
    assert card["scenario"] == json.loads(json.dumps(scn.spec))
    assert card["scenario_id"] == scn.id and card["seed"] == 3
    assert card["cowbench_version"] == cb.__version__
    assert card["feature_names"] == list(scn.feature_names)
    assert {v["name"]: v["role"] for v in card["variables"]} == dict(scn.truth.roles)
    assert {v["name"]: v["equation"] for v in card["variables"]} == {v.name: v.text for v in scn.scm.variables}
    assert {v["name"]: v["kind"] for v in card["variables"]} == {v: scn.kind(v) for v in scn.truth.roles}
    assert [e["name"] for e in card["environments"]] == [e.name for e in scn.environments]
    assert [e["params"]["agreement"] for e in card["environments"]] == [0.9, 0.8, 0.1]
    assert [e["deployment"] for e in card["environments"]] == [False, False, True]
    truth = card["truth"]
    assert truth["roles"] == dict(scn.truth.roles)
    assert truth["world_coef"] == dict(scn.truth.world_coef)
    assert truth["identifiable_with"] == scn.truth.identifiable_with == "pooled"  # the collider at cow orients it
    assert truth["world_undefined"] == ""
    assert truth["identifiable_reason"] == scn.truth.identifiable_reason
    assert card["dataset_checksum"] == data.checksum()
    for name in SPLITS:
        assert card["splits"][name]["n"] == len(data.split(name))
        assert card["splits"][name]["checksum"] == data.split(name).checksum()
    assert card["splits"]["train"]["units_per_environment"] == {"train0": 200, "train1": 200}
    assert card["splits"]["test_ood"]["units_per_environment"] == {"deploy": 200}
    assert set(card["files"]) == {f"{s}.{ext}" for s in SPLITS for ext in ("npz", "csv")}
    for fname, digest in card["files"].items():
        assert hashlib.sha256((out / fname).read_bytes()).hexdigest() == digest
    assert set(files_of(out)) == {*card["files"], "card.json", "card.md"}
    md = (out / "card.md").read_text()
    assert scn.id in md and data.checksum() in md and "grass = cow w.p. agreement" in md
    for text in (md, (out / "card.json").read_text()):
        assert "2026" not in text and "date" not in text.lower()  # no timestamps


def test_npz_and_csv_read_back_exactly_the_sampled_arrays(scn, exported):
    out, _ = exported
    data = scn.sample(3)
    for name in SPLITS:
        split = data.split(name)
        with np.load(out / f"{name}.npz", allow_pickle=False) as npz:
            assert sorted(npz.files) == sorted(["x", "y", "env", "group",
                                                *(f"concept_{c}" for c in split.concepts.columns)])
            for key in ("x", "y", "env", "group"):
                assert npz[key].dtype == getattr(split, key).dtype
                np.testing.assert_array_equal(npz[key], getattr(split, key), strict=True)
            for c in split.concepts.columns:
                np.testing.assert_array_equal(npz[f"concept_{c}"], split.concepts[c].to_numpy(), strict=True)

        table = read_csv(out / f"{name}.csv")
        x_cols = [f"x_{f}" for f in scn.feature_names]
        assert list(table.columns) == [*x_cols, "y", "env", "group", *(f"concept_{c}" for c in split.concepts)]
        np.testing.assert_array_equal(table[x_cols].to_numpy(np.float32), split.x, strict=True)
        for key in ("y", "env", "group"):
            np.testing.assert_array_equal(table[key].to_numpy(), getattr(split, key), strict=True)
        for c in split.concepts.columns:
            want = split.concepts[c].to_numpy()
            np.testing.assert_array_equal(table[f"concept_{c}"].to_numpy(want.dtype), want, strict=True)


def test_npz_files_hold_no_timestamp(exported):
    out, _ = exported
    with zipfile.ZipFile(out / "train.npz") as zf:
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_two_exports_are_byte_identical_and_another_seed_differs(scn, exported, tmp_path):
    out, card = exported
    again = export_dataset(scn, 3, tmp_path / "again")
    assert again == card
    assert files_of(tmp_path / "again") == files_of(out)
    # rewriting a previous export of the same scenario and seed is allowed and changes nothing
    export_dataset(scn, 3, tmp_path / "again")
    assert files_of(tmp_path / "again") == files_of(out)

    other = export_dataset(scn, 4, tmp_path / "other")
    assert other["dataset_checksum"] != card["dataset_checksum"]
    for fname in card["files"]:
        assert (tmp_path / "other" / fname).read_bytes() != (out / fname).read_bytes()


def test_a_non_rendered_input_gets_positional_csv_columns(tmp_path):
    scn = cb.make_scenario("cow", rendering="rotation", **SMALL)
    card = export_dataset(scn, 0, tmp_path / "rot", formats=("csv",))
    d = scn.sample(0).train.x.shape[1]
    assert card["columns"]["csv"][:d] == [f"x{j}" for j in range(d)]
    assert set(card["files"]) == {f"{s}.csv" for s in SPLITS}
    table = read_csv(tmp_path / "rot" / "train.csv")
    np.testing.assert_array_equal(table.iloc[:, :d].to_numpy(np.float32), scn.sample(0).train.x)


def test_refuses_a_foreign_non_empty_directory_unless_forced(scn, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="--force"):
        export_dataset(scn, 0, out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    export_dataset(scn, 0, out, force=True)
    assert (out / "card.json").is_file() and (out / "notes.txt").read_text() == "mine"
    with pytest.raises(InputError, match="another scenario or seed"):
        export_dataset(scn, 1, out)
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with pytest.raises(InputError, match="not a directory"):
        export_dataset(scn, 0, not_a_dir)


def test_a_forced_re_export_removes_the_files_the_old_card_listed_and_the_new_one_does_not(scn, tmp_path):
    out = tmp_path / "out"
    export_dataset(scn, 0, out)
    export_dataset(scn, 0, out, formats=("csv",))
    assert {p.name for p in out.iterdir()} == {*(f"{s}.csv" for s in SPLITS), "card.json", "card.md"}


@pytest.mark.parametrize(("seed", "formats", "message"), [
    (-1, ("npz",), "non-negative integer"),
    (1.5, ("npz",), "non-negative integer"),
    (0, ("tsv",), "unknown format 'tsv'"),
    (0, (), "no format"),
])
def test_bad_input_raises_and_writes_nothing(scn, tmp_path, seed, formats, message):
    with pytest.raises(InputError, match=message):
        export_dataset(scn, seed, tmp_path / "out", formats)
    assert not (tmp_path / "out").exists()


def test_parquet_needs_pyarrow(scn, tmp_path):
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        with pytest.raises(InputError, match="pip install pyarrow"):
            check_formats(["parquet"])
        return
    card = export_dataset(scn, 0, tmp_path / "pq", formats=("parquet",))
    assert set(card["files"]) == {f"{s}.parquet" for s in SPLITS}
    table = pd.read_parquet(tmp_path / "pq" / "train.parquet")
    np.testing.assert_array_equal(table[[f"x_{f}" for f in scn.feature_names]].to_numpy(), scn.sample(0).train.x)
    export_dataset(scn, 0, tmp_path / "pq2", formats=("parquet",))
    assert files_of(tmp_path / "pq") == files_of(tmp_path / "pq2")
