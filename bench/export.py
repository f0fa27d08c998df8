"""`cowbench generate`: export one sample of a scenario to files, with a dataset card.

For each split (train, val, test_id, test_ood, test_bal) the export writes ``<split>.npz`` (arrays ``x``, ``y``,
``env``, ``group`` and one ``concept_<variable>`` per generator variable), ``<split>.csv`` (the same
columns, one row per unit) and, on request, ``<split>.parquet``; then ``card.json`` and ``card.md``
(spec, truth, split sizes, checksums and the sha256 of every data file).

The output holds no timestamps, so the same scenario and seed give byte-identical files on every run:
the ``.npz`` files are uncompressed zip archives with a fixed date, and the CSV floats are written with
enough digits to read back exactly (``%.9g`` for float32, ``%.17g`` for float64; pandas 3 reads them
back exactly by default, older pandas with ``float_precision="round_trip"``). Every file is written
atomically.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cowbench.data import SPLITS, Split
from cowbench.errors import InputError
from cowbench.store import write_bytes_atomic, write_json_atomic
from cowbench.version import __version__

if TYPE_CHECKING:
    from cowbench.generators.scm import Scenario

CARD_VERSION = 1
FORMATS = ("npz", "csv", "parquet")
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip file can hold; fixed so reruns are identical


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"a seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    """The requested formats, deduplicated, in the order of `FORMATS`; unknown ones raise `InputError`."""
    formats = [f.strip().lower() for f in formats]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise InputError(f"unknown format {unknown[0]!r}; allowed: {', '.join(FORMATS)}")
    if not formats:
        raise InputError(f"no format requested; allowed: {', '.join(FORMATS)}")
    if "parquet" in formats and importlib.util.find_spec("pyarrow") is None:
        raise InputError("the parquet format needs pyarrow, which is not installed: pip install pyarrow")
    return tuple(f for f in FORMATS if f in formats)


def _x_columns(scenario: Scenario, d: int) -> list[str]:
    names = list(scenario.feature_names)
    if scenario.input_map is not None and len(names) == d:
        return [f"x_{name}" for name in names]
    return [f"x{j}" for j in range(d)]


def split_columns(scenario: Scenario, split: Split) -> dict[str, np.ndarray]:
    """The flat table of a split: x's columns, y, env, group, then ``concept_<variable>``."""
    columns: dict[str, np.ndarray] = {}
    x = np.asarray(split.x)
    for j, name in enumerate(_x_columns(scenario, x.shape[1])):
        columns[name] = x[:, j]
    columns.update(y=np.asarray(split.y), env=np.asarray(split.env), group=np.asarray(split.group))
    for name in split.concepts.columns:
        columns[f"concept_{name}"] = split.concepts[name].to_numpy()
    return columns


def _npz_arrays(split: Split) -> dict[str, np.ndarray]:
    arrays = {"x": split.x, "y": split.y, "env": split.env, "group": split.group}
    for name in split.concepts.columns:
        arrays[f"concept_{name}"] = split.concepts[name].to_numpy()
    return {k: np.ascontiguousarray(v) for k, v in arrays.items()}


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """An ``.npz`` archive (readable by `numpy.load`) with no timestamp: stored entries, a fixed date."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, arr in arrays.items():
            if arr.dtype.hasobject:
                raise ValueError(f"array {key!r} holds Python objects; only plain dtypes are exported")
            npy = io.BytesIO()
            np.lib.format.write_array(npy, arr, allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=ZIP_DATE)
            info.create_system = 3  # unix, whatever the platform
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_STORED
            zf.writestr(info, npy.getvalue())
    return buf.getvalue()


def _float_format(arr: np.ndarray) -> str:
    kind = arr.dtype.kind
    if kind == "f":
        return "%.9g" if arr.dtype.itemsize <= 4 else "%.17g"
    if kind in "iub":
        return "%d"
    raise ValueError(f"cannot write a column of dtype {arr.dtype} to CSV")


def csv_bytes(columns: Mapping[str, np.ndarray]) -> bytes:
    """CSV with a header line, ``\\n`` line ends and floats that read back exactly."""
    names = list(columns)
    arrays = [np.asarray(columns[c]) for c in names]
    fmt = ",".join(_float_format(a) for a in arrays)
    lines = [",".join(names)]
    lines.extend(fmt % row for row in zip(*(a.tolist() for a in arrays), strict=True))
    return ("\n".join(lines) + "\n").encode()


def parquet_bytes(columns: Mapping[str, np.ndarray]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({k: pa.array(np.asarray(v)) for k, v in columns.items()})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def _previous_card(out_dir: Path) -> dict[str, Any] | None:
    try:
        card = json.loads((out_dir / "card.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) else None


def check_out_dir(out_dir: Path, scenario: Scenario, seed: int, *, force: bool = False) -> dict[str, Any] | None:
    """Refuse a file, or a non-empty directory that is not an export of the same scenario and seed.

    Returns the previous export's card (or None), so that files it listed and the new one does not can go.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {str(out_dir)!r} exists and is not a directory")
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return None
    previous = _previous_card(out_dir)
    same = (previous is not None and previous.get("scenario_id") == scenario.id
            and previous.get("seed") == seed)
    if not same and not force:
        what = ("an export of another scenario or seed" if previous is not None
                else "not empty and holds no cowbench export")
        raise InputError(f"--out {str(out_dir)!r} is {what}; choose another directory or pass --force")
    return previous


def _variables(scenario: Scenario) -> list[dict[str, Any]]:
    return [{"name": v.name, "role": v.role, "kind": v.kind, "parents": list(v.parents), "noise": v.noise,
             "equation": v.text} for v in scenario.scm.variables]


def _environments(scenario: Scenario) -> list[dict[str, Any]]:
    defaults = {k: float(v) for k, v in scenario.scm.params.items()}
    return [{"index": i, "name": e.name, "deployment": bool(e.deployment),
             "overrides": {k: float(v) for k, v in e.params.items()},
             "params": {**defaults, **{k: float(v) for k, v in e.params.items()}}}
            for i, e in enumerate(scenario.environments)]


def build_card(scenario: Scenario, data: Any, columns: Mapping[str, list[str]], files: Mapping[str, str],
               formats: tuple[str, ...]) -> dict[str, Any]:
    """The dataset card (JSON-able, no timestamps); ``files`` maps file names to their sha256."""
    truth = scenario.truth
    splits = {}
    for name in SPLITS:
        split = data.split(name)
        env_names = [e.name for e in scenario.environments]
        counts = np.bincount(split.env, minlength=len(env_names))
        splits[name] = {"n": len(split), "checksum": split.checksum(),
                        "units_per_environment": {env_names[i]: int(c) for i, c in enumerate(counts) if c}}
    notes = []
    if "parquet" not in formats:
        notes.append("Parquet files not written (ask with --format npz,csv,parquet; needs pyarrow).")
    return {
        "card_version": CARD_VERSION,
        "cowbench_version": __version__,
        "scenario": scenario.spec,
        "scenario_id": scenario.id,
        "seed": int(data.seed),
        "rendering": scenario.rendering,
        "feature_names": list(scenario.feature_names),
        "input_map": dict(scenario.input_map) if scenario.input_map is not None else None,
        "variables": _variables(scenario),
        "parameters": {k: float(v) for k, v in scenario.scm.params.items()},
        "environments": _environments(scenario),
        "truth": {
            "roles": dict(truth.roles),
            "world_coef": {k: float(v) for k, v in truth.world_coef.items()},
            "world_undefined": truth.world_undefined,
            "link": truth.link,
            "identifiable_with": truth.identifiable_with,
            "identifiable_reason": truth.identifiable_reason,
        },
        "splits": splits,
        "dataset_checksum": data.checksum(),
        "formats": list(formats),
        "columns": {k: list(v) for k, v in columns.items()},
        "files": dict(sorted(files.items())),
        "notes": notes,
    }


def card_markdown(card: Mapping[str, Any]) -> str:
    """The card for people: the same facts as ``card.json``."""
    spec = card["scenario"]
    truth = card["truth"]
    knobs = ", ".join(f"{k}={json.dumps(v)}" for k, v in spec["knobs"].items())
    lines = [
        f"# Dataset card: {spec['generator']} (seed {card['seed']})",
        "",
        f"- generator: `{spec['generator']}` version {spec['version']}",
        f"- knobs: {knobs}",
        f"- scenario id: `{card['scenario_id']}`",
        f"- seed: {card['seed']}",
        f"- cowbench version: {card['cowbench_version']}",
        f"- rendering: {card['rendering']}; {len(card['feature_names'])} input feature(s)",
        f"- dataset checksum: `{card['dataset_checksum']}`",
        "",
        "## Variables",
        "",
        "| variable | role | kind | parents | equation |",
        "|---|---|---|---|---|",
    ]
    for v in card["variables"]:
        eq = v["equation"].replace("|", "\\|")
        lines.append(f"| {v['name']} | {v['role']} | {v['kind']} | {', '.join(v['parents']) or '-'} | {eq} |")
    lines += ["", "## Environments", "", "| # | environment | deployment | parameters |", "|---|---|---|---|"]
    for e in card["environments"]:
        params = ", ".join(f"{k}={v!r}" for k, v in e["params"].items())
        lines.append(f"| {e['index']} | {e['name']} | {'yes' if e['deployment'] else 'no'} | {params} |")
    coef = ", ".join(f"{k}={v!r}" for k, v in truth["world_coef"].items())
    lines += [
        "",
        "## Truth",
        "",
        f"- link: {truth['link']}",
        f"- world coefficients: {coef}",
        f"- identifiable with: {truth['identifiable_with']} ({truth['identifiable_reason']})",
        "",
        "## Splits",
        "",
        "| split | units | per environment | checksum |",
        "|---|---|---|---|",
    ]
    for name, s in card["splits"].items():
        per_env = ", ".join(f"{k}: {v}" for k, v in s["units_per_environment"].items())
        lines.append(f"| {name} | {s['n']} | {per_env} | `{s['checksum'][:16]}` |")
    lines += [
        "",
        "## Files",
        "",
        "`x` holds the rendered inputs (float32), `y` the label, `env` the environment index (table above),",
        "`group` is 2*y + s with s the binarised first spurious variable, and `concept_<variable>` every",
        "generator variable, hidden ones and the label included.",
        "",
        "```python",
        "np.load(\"train.npz\")     # x, y, env, group, concept_*",
        "pd.read_csv(\"train.csv\")  # exact floats (pandas < 3: float_precision=\"round_trip\")",
        "```",
        "",
        "CSV columns: " + ", ".join(card["columns"]["csv"]),
        "",
        "| file | sha256 |",
        "|---|---|",
    ]
    lines += [f"| {name} | `{digest}` |" for name, digest in card["files"].items()]
    if card["notes"]:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in card["notes"]]
    return "\n".join(lines) + "\n"


def export_dataset(scenario: Scenario, seed: int, out_dir: str | Path,
                   formats: Iterable[str] = ("npz", "csv"), *, force: bool = False) -> dict[str, Any]:
    """Sample ``scenario`` with ``seed`` and write its splits and a dataset card to ``out_dir``.

    Everything is checked (seed, formats, the output directory) and sampled before the first write, so bad
    input writes nothing. ``out_dir`` must be missing, empty or a previous export of the same scenario and
    seed (which is overwritten with identical bytes), unless ``force``. Returns the card.
    """
    seed = _check_seed(seed)
    formats = check_formats(formats)
    out_dir = Path(out_dir)
    previous = check_out_dir(out_dir, scenario, seed, force=force)
    data = scenario.sample(seed)

    payloads: dict[str, bytes] = {}
    csv_columns: list[str] = []
    for name in SPLITS:
        split = data.split(name)
        columns = split_columns(scenario, split)
        csv_columns = list(columns)
        if "npz" in formats:
            payloads[f"{name}.npz"] = npz_bytes(_npz_arrays(split))
        if "csv" in formats:
            payloads[f"{name}.csv"] = csv_bytes(columns)
        if "parquet" in formats:
            payloads[f"{name}.parquet"] = parquet_bytes(columns)
    npz_keys = list(_npz_arrays(data.train))
    files = {fname: hashlib.sha256(blob).hexdigest() for fname, blob in payloads.items()}
    card = build_card(scenario, data, {"npz": npz_keys, "csv": csv_columns}, files, formats)
    card = json.loads(json.dumps(card, allow_nan=False))  # what card.json holds (tuples become lists)

    out_dir.mkdir(parents=True, exist_ok=True)
    for fname, blob in payloads.items():
        write_bytes_atomic(out_dir / fname, blob)
    if previous is not None:  # a previous export's files that this one does not write would mislead
        for fname in previous.get("files", {}):
            stale = out_dir / str(fname)
            if fname not in payloads and stale.parent == out_dir and stale.is_file():
                stale.unlink()
    write_bytes_atomic(out_dir / "card.md", card_markdown(card).encode())
    write_json_atomic(out_dir / "card.json", card)  # last: its presence means the export is complete
    return card
