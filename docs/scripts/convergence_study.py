"""Which of the 300 full-batch Adam steps still change predictions, and which fits repeat one another.

A measurement, not a method: it runs the real training code unchanged (the subject and oracle through
`cowbench.replicate.build_replicate`, each retraining method through its own ``run``) and watches it from
outside. Three hooks, removed at exit:

- `torch.optim.Adam` is replaced by a subclass whose ``step`` counts steps and, every ``--every`` steps, evaluates
  the model being trained on ``test_bal`` (float64, ``torch.no_grad``: no parameter, optimiser state or random
  stream is touched, so the fit is the one the suite makes);
- `torch.Tensor.backward` records the value of the scalar it is called on (the objective of the step);
- the training loops (`cowbench.training.fit_logit_model`, `cowbench.methods._robust.train_objective`,
  `cowbench.methods._edits.finetune`, at every name they are imported under) are wrapped to say which model is
  being trained and to fingerprint the fit (initial weights, data, weights, settings).

For each fit it reports, against the same fit's last step ``E``: the share of ``test_bal`` predictions whose sign
differs, ``max |logit_k - logit_E|``, ``acc_bal(k) - acc_bal(E)`` and the objective's relative change over 10 steps;
and the first step from which every later snapshot has at most 0.1% flips and ``|acc diff| <= 1 SE`` (``k_se``), or at
most `cowbench.verify`'s 3 flipped units (``k_verify``). Run from a worktree with cowbench installed::

    nice -n 10 python docs/scripts/convergence_study.py --out /tmp/convergence
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

SCENARIOS = ("cow", "cow_confounded", "four_groups", "iut_example2", "colored_digits", "cow_image", "planted_poly")
METHODS = ("erm_retrain", "group_reweight", "group_subsample", "group_dro", "jtt", "george", "eiil", "afr",
           "irm_mlp", "vrex_mlp", "coral", "rrr", "cf_augment", "cf_logit_pairing")
FLIP_SHARE = 0.001  # the brief's 0.1%
VERIFY_UNITS = 3  # cowbench.verify.DEFAULT_UNITS: flipped units an accuracy may move by


class Probe:
    """The fit being watched (one at a time: the loops do not nest) and every finished fit's record."""

    def __init__(self, every: int):
        self.every = every
        self.fit: dict[str, Any] | None = None
        self.fits: list[dict[str, Any]] = []
        self.job = ""
        self.x_bal: np.ndarray | None = None
        self.z_bal: np.ndarray | None = None  # the subject's penultimate features of test_bal (AFR trains a head)

    def logits(self, model: nn.Module) -> np.ndarray:
        x = self.z_bal if isinstance(model, nn.Linear) else self.x_bal
        dtype = next(model.parameters()).dtype
        with torch.no_grad():
            return model(torch.tensor(x, dtype=dtype)).reshape(len(x)).double().numpy()

    def start(self, loop: str, model: nn.Module, epochs: int, key: dict[str, Any]) -> None:
        if self.fit is not None:
            raise RuntimeError(f"nested fit inside {self.fit['name']}")
        h = hashlib.sha256()
        for name, value in sorted(key.items()):
            if name.endswith("_arr"):
                continue
            h.update(name.encode())
            h.update(value if isinstance(value, bytes) else repr(value).encode())
        setting = None
        if key:  # everything but the initialisation and the order of rows and columns (a blinded job shuffles them)
            g = hashlib.sha256(repr(sorted((k, v) for k, v in key.items()
                                                 if not isinstance(v, bytes) and not k.endswith("_arr"))).encode())
            g.update(canonical_rows(key["x_arr"], key["y_arr"], key["w_arr"]))
            setting = g.hexdigest()[:16]
        for tensor in model.state_dict().values():
            h.update(tensor.detach().double().numpy().tobytes())
        index = sum(f["job"] == self.job for f in self.fits) + 1
        self.fit = {"job": self.job, "name": f"{self.job}#{index}", "loop": loop, "epochs": int(epochs),
                    "model": model, "step": 0, "snap": {0: self.logits(model)}, "loss": {},
                    "fingerprint": h.hexdigest()[:16] if key else None,
                    "setting": setting, "cpu": time.process_time()}

    def after_step(self) -> None:
        fit = self.fit
        if fit is None:
            return
        fit["loss"][fit["step"]] = fit.pop("pending", math.nan)
        fit["step"] += 1
        if fit["step"] % self.every == 0 or fit["step"] == fit["epochs"]:
            fit["snap"][fit["step"]] = self.logits(fit["model"])

    def end(self, returned: nn.Module) -> None:
        fit, self.fit = self.fit, None
        fit["cpu"] = time.process_time() - fit["cpu"]
        fit["returned"] = self.logits(returned)  # float32, as the suite scores it
        del fit["model"]
        self.fits.append(fit)


PROBE = Probe(10)
_Adam = torch.optim.Adam
_backward = torch.Tensor.backward


class ProbedAdam(_Adam):
    def step(self, closure=None):
        out = super().step(closure)
        PROBE.after_step()
        return out


def _probed_backward(self, *args, **kwargs):
    if PROBE.fit is not None and self.ndim == 0:
        PROBE.fit["pending"] = float(self.detach())
    return _backward(self, *args, **kwargs)


def _arr(a: Any) -> bytes:
    return b"" if a is None else np.ascontiguousarray(np.asarray(a, dtype=np.float64)).tobytes()


def canonical_rows(x: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> bytes:
    """``[x, y, w]`` with x's columns ordered by their sorted values and the rows sorted: the same bytes for any
    order of the rows and of x's columns, other bytes for other data (e.g. a spurious column permuted alone)."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    cols = sorted(range(x.shape[1]), key=lambda j: np.sort(x[:, j]).tobytes())
    w = np.full(len(x), 1.0 / len(x)) if w is None else np.asarray(w, dtype=np.float64) / np.sum(w)
    m = np.column_stack([x[:, cols], np.asarray(y, dtype=np.float64), w])
    return np.ascontiguousarray(m[np.lexsort(m.T[::-1])]).tobytes()


def _wrap_fit_logit(orig):
    def fit_logit_model(model, x, y, *, weights=None, epochs=300, lr=0.02, weight_decay=0.0, loss="logistic"):
        key = {"loop": "fit_logit_model", "x": _arr(x), "y": _arr(y), "w": _arr(weights), "epochs": epochs,
               "lr": lr, "wd": weight_decay, "loss": loss, "x_arr": x, "y_arr": y, "w_arr": weights}
        PROBE.start("erm", model, epochs, key)
        out = orig(model, x, y, weights=weights, epochs=epochs, lr=lr, weight_decay=weight_decay, loss=loss)
        PROBE.end(out)
        return out
    return fit_logit_model


def _wrap_objective(orig):
    def train_objective(model, objective, *, epochs, **kwargs):
        PROBE.start("objective", model, epochs, {})  # a closure: no content key
        out = orig(model, objective, epochs=epochs, **kwargs)
        PROBE.end(out)
        return out
    return train_objective


def _wrap_finetune(orig):
    def finetune(model, x, y, *, epochs, **kwargs):
        PROBE.start("finetune", model, epochs, {})
        out = orig(model, x, y, epochs=epochs, **kwargs)
        PROBE.end(out)
        return out
    return finetune


def install() -> list[tuple[Any, str, Any]]:
    """Patch the loops at every module attribute that names them; returns what to restore."""
    import importlib

    import cowbench.methods._edits as edits
    import cowbench.methods._robust as robust
    import cowbench.training as training

    saved = [(torch.optim, "Adam", _Adam), (torch.Tensor, "backward", _backward)]
    torch.optim.Adam = ProbedAdam
    torch.Tensor.backward = _probed_backward
    targets = {training.fit_logit_model: _wrap_fit_logit, robust.train_objective: _wrap_objective,
               edits.finetune: _wrap_finetune}
    for module_name in ["cowbench.training", "cowbench.subject", "cowbench.methods._robust",
                        "cowbench.methods._edits", *(f"cowbench.methods.{m}" for m in METHODS)]:
        module = importlib.import_module(module_name)
        for attr, value in list(vars(module).items()):
            if callable(value) and value in targets:
                saved.append((module, attr, value))
                setattr(module, attr, targets[value](value))
    return saved


def summarize(fit: dict[str, Any], y: np.ndarray, scenario: str) -> dict[str, Any]:
    steps = sorted(fit["snap"])
    last = steps[-1]
    final = fit["snap"][last]
    n = len(y)
    acc = {k: float(np.mean((fit["snap"][k] > 0) == (y == 1))) for k in steps}
    p = acc[last]
    se = math.sqrt(p * (1 - p) / n)
    flips = {k: int(np.sum((fit["snap"][k] > 0) != (final > 0))) for k in steps}
    dlogit = {k: float(np.max(np.abs(fit["snap"][k] - final))) for k in steps}
    dprob = {k: float(np.mean(np.abs(1 / (1 + np.exp(-fit["snap"][k])) - 1 / (1 + np.exp(-final))))) for k in steps}

    def first_from(ok) -> int:
        """The first snapshot step from which every later snapshot satisfies ``ok``."""
        first = last
        for k in reversed(steps):
            if not ok(k):
                break
            first = k
        return first

    k_se = first_from(lambda k: flips[k] <= FLIP_SHARE * n and abs(acc[k] - p) <= se)
    k_first = next(k for k in steps if flips[k] <= FLIP_SHARE * n and abs(acc[k] - p) <= se)
    k_verify = first_from(lambda k: flips[k] <= VERIFY_UNITS)
    loss = fit["loss"]
    ls = sorted(loss)
    rel10 = {k: abs(loss[k - 10] - loss[k]) / max(abs(loss[k]), 1e-300) for k in ls if k - 10 in loss}
    prev = steps[-2] if len(steps) > 1 else last
    return {"scenario": scenario, "fit": fit["name"], "loop": fit["loop"], "epochs": fit["epochs"], "n_bal": n,
            "acc_bal": p, "se": se, "k_se": k_se, "k_se_first": k_first, "k_verify": k_verify,
            "flips_prev": flips[prev], "prev": prev, "dlogit_prev": dlogit[prev], "dprob_prev": dprob[prev],
            "flips": flips, "dlogit": dlogit, "dacc": {k: acc[k] - p for k in steps}, "dprob": dprob,
            "rel10_last": rel10[ls[-1]] if ls and ls[-1] in rel10 else math.nan,
            "rel10": {k: v for k, v in rel10.items() if k % 10 == 9},
            "returned_vs_last_flips": int(np.sum((fit["returned"] > 0) != (final > 0))),
            "returned_vs_last_dlogit": float(np.max(np.abs(fit["returned"] - final))),
            "fingerprint": fit["fingerprint"], "setting": fit["setting"], "cpu": fit["cpu"]}


def plan_repeats(suite_name: str) -> dict[str, Any]:
    """Replicate 0 of ``suite_name``'s plan: the retraining jobs' fits, their seeds, and the stage-1 ERM fits
    (GEORGE's reference model, JTT's identifier when ``id_epochs`` is set) that differ only by their seed.

    A fit is a function of (data, architecture, objective, weights, settings, initial weights); the initial weights
    are a function of the seed. The subject's seed is ``subject_seed``; a method's is ``fit_seed``, derived from
    (data seed, method name, hyperparameter hash), so two jobs share a fit only if they share all of these.
    """
    from cowbench.suite import load_suite

    jobs = [j for j in load_suite(suite_name, replicates=1).plan() if j.method in METHODS]
    by_seed: dict[tuple[str, int], list[str]] = {}
    stage1: dict[tuple[str, Any], list[int]] = {}
    for j in jobs:
        by_seed.setdefault((j.replicate.id, j.fit_seed), []).append(f"{j.method}{dict(j.hparams)}")
        if j.method == "george":
            stage1.setdefault((j.replicate.id, ("erm", j.hparams.get("epochs"))), []).append(j.fit_seed)
        if j.method == "jtt" and j.hparams.get("id_epochs") is not None:
            stage1.setdefault((j.replicate.id, ("erm", j.hparams["id_epochs"])), []).append(j.fit_seed)
    subject_seeds = {j.replicate.id: j.replicate.subject_seed for j in jobs}
    clash = sum(seed in {j.fit_seed for j in jobs if j.replicate.id == rid} for rid, seed in subject_seeds.items())
    return {"suite": suite_name, "retraining_jobs": len(jobs), "distinct_replicate_seed": len(by_seed),
            "shared_seed_groups": [v for v in by_seed.values() if len(v) > 1], "subject_seed_reused": clash,
            "stage1_fits": sum(len(v) for v in stage1.values()), "stage1_settings": len(stage1),
            "stage1_distinct_seeds": sum(len(set(v)) for v in stage1.values())}


def at_step(fits: list[dict[str, Any]], frac: float) -> str:
    """One summary line: flips and accuracy change at step ``frac * E`` (rounded to a snapshot) against step E."""
    share, dacc, beyond = [], [], 0
    for r in fits:
        k = 10 * round(frac * r["epochs"] / 10)
        flips = {int(key): v for key, v in r["flips"].items()}[k]
        share.append(flips / r["n_bal"])
        if r["se"] > 0:  # acc_bal(E) of exactly 0 or 1 has no SE: left out of the ratio
            dacc.append(abs({int(key): v for key, v in r["dacc"].items()}[k]) / r["se"])
        beyond += flips > VERIFY_UNITS
    share, dacc = np.array(share), np.array(dacc)
    return (f"- stopping at {frac:.2f} E: flips against step E median {100 * np.median(share):.2f}%, max "
            f"{100 * share.max():.2f}%; |acc diff| / SE median {np.median(dacc):.2f}, max {dacc.max():.2f}, "
            f"> 1 SE in {int(np.sum(dacc > 1))} of {len(dacc)} fits with SE > 0; more than {VERIFY_UNITS} flips in "
            f"{beyond}")


def markdown(record: dict[str, Any]) -> str:
    """The tables of ``docs/cost.md`` from a ``fits.json`` record."""
    def pct(count: int, n: int) -> str:
        return f"{count} ({100 * count / n:.2f}%)"

    lines = ["| scenario | fit | steps E | n_bal | acc_bal(E) | SE | flips k=E/3 | flips k=2E/3 | "
             "flips k=E-10 | max abs dlogit k=E-10 | acc(E-10)-acc(E) | rel. loss change, last 10 steps | "
             "k_se (first) | k_se | k_verify |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in record["fits"]:
        e, n = r["epochs"], r["n_bal"]
        at = {int(k): v for k, v in r["flips"].items()}
        third, two = 10 * round(e / 30), 10 * round(2 * e / 30)
        dacc = {int(k): v for k, v in r["dacc"].items()}
        lines.append(f"| {r['scenario']} | {r['fit']} | {e} | {n} | {r['acc_bal']:.4f} | {r['se']:.4f} | "
                     f"{pct(at[third], n)} | {pct(at[two], n)} | {pct(r['flips_prev'], n)} | {r['dlogit_prev']:.3g} | "
                     f"{dacc[r['prev']]:+.4f} | {r['rel10_last']:.1e} | {r['k_se_first']} | {r['k_se']} | "
                     f"{r['k_verify']} |")
    fits = record["fits"]
    still = [r for r in fits if r["k_verify"] == r["epochs"]]
    se_last = [r for r in fits if r["k_se"] == r["epochs"]]
    share = np.array([r["flips_prev"] / r["n_bal"] for r in fits])
    dacc = np.array([abs({int(k): v for k, v in r["dacc"].items()}[r["prev"]]) / r["se"] for r in fits if r["se"] > 0])
    early = [f"{r['scenario']}:{r['fit']} ({r['k_verify']})" for r in fits if r["k_verify"] < r["epochs"]]
    summary = [f"- fits watched: {len(fits)}",
               f"- more than {VERIFY_UNITS} test_bal predictions still flip between step E-10 and E: {len(still)} of "
               f"{len(fits)}; the others (first step from which at most {VERIFY_UNITS} flip): {', '.join(early)}",
               f"- k_se = E (0.1%-flips-and-1-SE not yet met from step E-10 on): {len(se_last)} of {len(fits)}",
               f"- share of test_bal flipping between E-10 and E: median {100 * np.median(share):.2f}%, "
               f"max {100 * share.max():.2f}%; |acc(E-10) - acc(E)| / SE: median {np.median(dacc):.2f}, "
               f"max {dacc.max():.2f}",
               *(at_step(fits, frac) for frac in (1 / 3, 2 / 3)),
               f"- mean |sigmoid(logit_E-10) - sigmoid(logit_E)| on test_bal: median "
               f"{np.median([r['dprob_prev'] for r in fits]):.1e}, min {min(r['dprob_prev'] for r in fits):.1e} "
               f"(verify's tolerance for continuous metrics, which are means of such quantities: 1e-4)",
               f"- returned float32 model vs the float64 weights at step E: "
               f"{sum(r['returned_vs_last_flips'] for r in fits)} sign differences in all"]
    out = ["\n".join(summary), "\n".join(lines)]
    if record.get("long"):
        rows = ["| scenario | steps | acc_bal(300) - acc_bal(end) | flips 300 vs end | max abs dlogit 300 vs end | "
                "k_se | k_verify | rel. loss change, last 10 steps |", "|---|---|---|---|---|---|---|---|"]
        for r in record["long"]:
            rows.append(f"| {r['scenario']} | {r['epochs']} | {r['dacc_300']:+.4f} | "
                        f"{pct(r['flips_300'], r['n_bal'])} | {r['dlogit_300']:.3g} | {r['k_se']} | {r['k_verify']} | "
                        f"{r['rel10_last']:.1e} |")
        out.append("\n".join(rows))
    if record.get("alike"):
        rows = ["| scenario | fit a | fit b | identical | sign disagreements on test_bal | acc_bal(a) - acc_bal(b) |",
                "|---|---|---|---|---|---|"]
        for r in record["alike"]:
            rows.append(f"| {r['scenario']} | {r['a']} | {r['b']} | {r['identical']} | "
                        f"{pct(r['sign_disagree'], r['n_bal'])} | {r['dacc']:+.4f} |")
        out.append("\n".join(rows))
    return "\n\n".join(out)


def check_results(record: dict[str, Any], results: Path) -> tuple[int, int, list[str]]:
    """Compare each job's last watched fit with the job file stored under ``results`` (its ``acc_bal``).

    Returns (jobs compared, jobs equal to 1e-12, descriptions of the others). Plans the standard suite only.
    """
    from cowbench.suite import load_suite

    last: dict[tuple[str, str], dict[str, Any]] = {}
    for fit in record["fits"]:
        last[(fit["scenario"], fit["fit"].split("#")[0])] = fit
    compared, equal, other = 0, 0, []
    for job in load_suite("standard", replicates=1).plan():
        fit = last.get((job.replicate.scenario.get("generator"), job.method))
        path = results / "jobs" / job.id[:2] / f"{job.id}.json"
        if fit is None or not path.exists():
            continue
        stored = json.loads(path.read_text()).get("metrics", {}).get("acc_bal")
        compared += 1
        if stored is not None and abs(stored - fit["acc_bal"]) < 1e-12:
            equal += 1
        else:
            other.append(f"{fit['scenario']} {job.method}: stored {stored}, watched {fit['acc_bal']}")
    return compared, equal, other


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--long", type=int, default=1200,
                        help="also train the subject's fit this many steps (0: skip): is step 300 on a plateau?")
    parser.add_argument("--plans", nargs="*", default=["standard", "paper"],
                        help="suites whose replicate-0 plan is searched for repeated fits (no training)")
    parser.add_argument("--out", type=Path, nargs="+", required=True,
                        help="folder for fits.json (per-fit curves); with --markdown or --check-results, several "
                             "folders are read as one run (scenarios run in parallel processes)")
    parser.add_argument("--check-results", type=Path, metavar="DIR",
                        help="compare a finished run's fits.json with the job files of DIR (e.g. results/standard)")
    parser.add_argument("--markdown", action="store_true", help="print the tables of a finished run's fits.json")
    args = parser.parse_args(argv)
    if args.markdown or args.check_results:
        record: dict[str, Any] = {}
        for folder in args.out:
            for key, value in json.loads((folder / "fits.json").read_text()).items():
                record.setdefault(key, []).extend(value)
    if args.markdown:
        print(markdown(record))
        return 0
    if args.check_results:
        compared, equal, other = check_results(record, args.check_results)
        print(f"# acc_bal of the job's last watched fit equals the stored job's: {equal} of {compared}")
        print("\n".join(other))
        return 0
    PROBE.every = args.every

    from cowbench.access import Task
    from cowbench.blinding import blind_inputs, blind_seed
    from cowbench.methods._robust import penultimate
    from cowbench.models import torch_threads
    from cowbench.registries import METHODS as REGISTRY
    from cowbench.replicate import build_replicate
    from cowbench.seeds import stable_hash
    from cowbench.suite import load_suite

    torch.set_num_threads(1)
    suite = load_suite("standard", replicates=1)
    jobs = suite.plan()
    saved = install()
    rows: list[dict[str, Any]] = []
    seeds: list[dict[str, Any]] = []
    pairs: list[dict[str, Any]] = []
    longs: list[dict[str, Any]] = []
    try:
        for name in args.scenarios:
            mine = [j for j in jobs if j.replicate.scenario.get("generator") == name]
            specs = {stable_hash(dict(j.replicate.scenario)) for j in mine}
            if len(specs) != 1:
                raise SystemExit(f"scenario {name!r}: {len(specs)} entries in the standard suite (need exactly 1)")
            rspec = mine[0].replicate
            PROBE.job, PROBE.fits = "prepare", []
            start = time.process_time()
            with torch_threads(1):
                # the subject and the oracle: the harness's own path, without its cache (so they train here)
                PROBE.x_bal = None
                scenario = dict(rspec.scenario)
                from cowbench.replicate import scenario_from_spec

                PROBE.x_bal = scenario_from_spec(scenario).sample(rspec.data_seed).test_bal.x
                rep = build_replicate(scenario, rspec.subject, rspec.data_seed, rspec.subject_seed)
            y = np.asarray(rep.data.test_bal.y)
            assert np.array_equal(PROBE.x_bal, rep.data.test_bal.x)
            x_bal = rep.data.test_bal.x
            seeds.append({"scenario": name, "fit": "subject", "seed": rspec.subject_seed})
            if rspec.subject.get("arch") != "planted":  # the hooks must not change the fit: retrain unwatched
                from cowbench.models import build_model
                from cowbench.subject import SubjectConfig, loss_for

                cfg = SubjectConfig.from_mapping({k: v for k, v in rspec.subject.items() if k != "version"})
                original = next(v for o, a, v in saved if a == "fit_logit_model")
                torch.optim.Adam, torch.Tensor.backward = _Adam, _backward
                try:
                    model = build_model(cfg.arch, rep.data.train.x.shape[1], hidden=cfg.hidden, seed=rspec.subject_seed)
                    plain = original(model, rep.data.train.x, rep.data.train.y, epochs=cfg.epochs, lr=cfg.lr,
                                     weight_decay=cfg.weight_decay, loss=loss_for(rep.scenario))
                finally:
                    torch.optim.Adam, torch.Tensor.backward = ProbedAdam, _probed_backward
                same = all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(),
                                                              rep.subject.state_dict().values(), strict=True))
                print(f"# {name}: watched subject == unwatched subject, bit for bit: {same}", flush=True)
                if not same:
                    raise SystemExit("the hooks changed the fit")
            for job in mine:
                if job.method not in args.methods:
                    continue
                cls = REGISTRY.get(job.method)
                method = cls(**job.hparams)
                if method.random_state is None:
                    method = method.clone(random_state=job.fit_seed)
                seeds.append({"scenario": name, "fit": job.method, "seed": job.fit_seed})
                PROBE.job = job.method
                # the job's own view: blinded (shuffled rows, permuted columns and group ids), as `blind_step`
                # builds it; the probe feeds test_bal in the shown column order
                inputs, unblinder = blind_inputs(rep, frozenset(cls.access), seed=blind_seed(rep.data.seed))
                columns = unblinder.shown.columns
                PROBE.x_bal = x_bal if columns is None else x_bal[:, columns]
                PROBE.z_bal = penultimate(Task(inputs).model, PROBE.x_bal) if "internals" in cls.access else None
                task = Task(inputs)
                try:
                    method.run(task)
                except Exception as exc:  # a method that fails here fails alone, as in the suite
                    PROBE.fit = None
                    print(f"{name} {job.method}: {type(exc).__name__}: {exc}", file=sys.stderr)
            names = {"prepare#1": "subject", "prepare#2": "oracle"}
            for fit in PROBE.fits:
                fit["name"] = names.get(fit["name"], fit["name"])
                row = summarize(fit, y, name)
                rows.append(row)
                print(f"{name:15s} {row['fit']:22s} E={row['epochs']:3d} acc_bal={row['acc_bal']:.4f} "
                      f"k_se={row['k_se']:3d} k_verify={row['k_verify']:3d} flips@{row['prev']}={row['flips_prev']} "
                      f"dlogit@{row['prev']}={row['dlogit_prev']:.2e} rel10={row['rel10_last']:.1e} "
                      f"ret={row['returned_vs_last_flips']}", flush=True)
            if args.long and rspec.subject.get("arch") != "planted":
                # Adam's steps do not depend on the step budget: steps 1..300 of this fit are the subject's
                PROBE.job, PROBE.x_bal = "subject_long", x_bal  # the subject's own columns
                model = build_model(cfg.arch, rep.data.train.x.shape[1], hidden=cfg.hidden, seed=rspec.subject_seed)
                from cowbench.training import fit_logit_model

                fit_logit_model(model, rep.data.train.x, rep.data.train.y, epochs=args.long, lr=cfg.lr,
                                weight_decay=cfg.weight_decay, loss=loss_for(rep.scenario))
                fit = PROBE.fits.pop()
                assert np.array_equal(fit["snap"][cfg.epochs], PROBE.fits[0]["snap"][cfg.epochs])  # the subject's
                row = summarize(fit, y, name)
                row["flips_300"] = row["flips"][cfg.epochs]
                row["dacc_300"] = row["dacc"][cfg.epochs]
                row["dlogit_300"] = row["dlogit"][cfg.epochs]
                longs.append(row)
                print(f"# long {name}: {args.long} steps: acc_bal {row['acc_bal']:.4f}; step {cfg.epochs} vs "
                      f"{args.long}: {row['flips_300']} flips, acc diff {row['dacc_300']:+.4f}, max dlogit "
                      f"{row['dlogit_300']:.3f}; k_se {row['k_se']}, k_verify {row['k_verify']}, "
                      f"rel10 {row['rel10_last']:.1e}", flush=True)
            alike: dict[str, list[dict[str, Any]]] = {}
            for fit in PROBE.fits:
                if fit["setting"]:
                    alike.setdefault(fit["setting"], []).append(fit)
            for group in alike.values():  # same data, weights, loss and settings; initialisation may differ
                for i, a in enumerate(group):
                    for b in group[i + 1:]:
                        fa, fb = a["snap"][max(a["snap"])], b["snap"][max(b["snap"])]
                        pair = {"scenario": name, "a": a["name"], "b": b["name"], "identical": a["fingerprint"] ==
                                b["fingerprint"], "sign_disagree": int(np.sum((fa > 0) != (fb > 0))), "n_bal": len(y),
                                "dacc": float(np.mean((fa > 0) == (y == 1)) - np.mean((fb > 0) == (y == 1)))}
                        pairs.append(pair)
                        print(f"# alike {name}: {pair}", flush=True)
            print(f"# {name}: {time.process_time() - start:.1f} CPU-s", flush=True)
    finally:
        for owner, attr, value in saved:
            setattr(owner, attr, value)
    args.out[0].mkdir(parents=True, exist_ok=True)
    plans = [plan_repeats(s) for s in args.plans]
    for plan in plans:
        print(f"# plan {plan}", flush=True)
    record = {"plans": plans, "fits": rows, "seeds": seeds, "alike": pairs, "long": longs}
    (args.out[0] / "fits.json").write_text(json.dumps(record, indent=1, default=float))
    by_key: dict[str, list[str]] = {}
    for row in rows:
        if row["fingerprint"]:
            by_key.setdefault(row["fingerprint"], []).append(f"{row['scenario']}:{row['fit']}")
    repeats = [v for v in by_key.values() if len(v) > 1]
    print(f"# ERM-loop fits: {sum(map(len, by_key.values()))}, distinct contents {len(by_key)}, repeated: {repeats}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
