"""Every retraining method, with the training loops' masked ReLU backward and without it: the same weights?

A measurement, not a test (it trains about 200 models: 5-10 minutes on one core). For each scenario and method
given, the job of replicate 0 of `bench/suites/standard.toml` runs in this process on its own blinded view (as the
harness builds it) twice: once with `cowbench.training.mask_relu_grad` replaced at every name it is imported under
by a no-op (so ``nn.ReLU`` back-propagates through ATen's ``threshold_backward``), once as the code is. It prints
each pair's CPU seconds (the first run also pays one-time imports), whether every tensor of the returned models'
state is equal bit for bit, and whether the returned model holds only plain ``nn.ReLU`` modules.
Run from a checkout with cowbench installed::

    python docs/scripts/masked_relu_identity.py --cache /tmp/cowbench-cache
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

import torch

import cowbench.methods._edits as edits
import cowbench.methods._robust as robust
import cowbench.training as training
from cowbench.access import Task
from cowbench.blinding import blind_inputs, blind_seed
from cowbench.determinism import deterministic
from cowbench.registries import METHODS
from cowbench.replicate import prepare
from cowbench.suite import load_suite

SCENARIOS = ("cow", "colored_digits", "iut_example2", "linear_sem", "four_groups")
METHODS_TRAINING = ("erm_retrain", "irm_mlp", "vrex_mlp", "coral", "group_dro", "group_reweight", "group_subsample",
                    "jtt", "george", "eiil", "rrr", "cf_logit_pairing", "cf_augment", "afr", "dfr", "das",
                    "sae_ablation")
MASKED = training.mask_relu_grad


def _use_mask(on: bool) -> None:
    swap = MASKED if on else contextlib.nullcontext
    for module in (training, robust, edits):
        module.mask_relu_grad = swap


def _state(model: torch.nn.Module | None) -> list[torch.Tensor]:
    return [] if model is None else [t.detach().clone() for t in model.state_dict().values()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="replicate cache folder (reused across calls)")
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS_TRAINING))
    args = parser.parse_args()
    jobs = load_suite("standard").plan(())
    differ = 0
    for scenario in args.scenarios:
        for method in args.methods:
            job = next((j for j in jobs if j.method == method and j.replicate.replicate == 0
                        and j.replicate.scenario["generator"] == scenario), None)
            if job is None:
                continue
            rep = prepare(job.replicate, args.cache)
            cls = METHODS.get(method)
            runs = {}
            for on in (False, True):
                _use_mask(on)
                inputs, _ = blind_inputs(rep, frozenset(cls.access), seed=blind_seed(rep.data.seed))
                start = time.process_time()
                with deterministic(1):
                    out = cls(**job.hparams).clone(random_state=job.fit_seed).run(Task(inputs))
                modules = [] if out.edited is None else [type(m) for m in out.edited.modules()]
                runs[on] = (time.process_time() - start, _state(out.edited), modules)
            _use_mask(True)
            same = len(runs[False][1]) == len(runs[True][1]) and all(
                torch.equal(a, b) for a, b in zip(runs[False][1], runs[True][1], strict=True))
            plain = all(m is not training._MaskReLUModule for m in runs[True][2])
            differ += not (same and plain)
            print(f"{scenario:16s} {method:18s} threshold_backward {runs[False][0]:6.2f} CPU-s, masked "
                  f"{runs[True][0]:6.2f} CPU-s, identical={same}, plain ReLU modules={plain}", flush=True)
    print(f"pairs that differ: {differ}")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
