"""Selection rules on constructed job-level frames, and the leave-one-environment-out refit on a real replicate."""

import math

import numpy as np
import pandas as pd
import pytest

import cowbench as cb
from cowbench.errors import InputError
from cowbench.method import Method, MethodOutput
from cowbench.registries import METHODS
from cowbench.selection import (
    UPPER_BOUND_MARK,
    apply_rules,
    loeo_accuracy,
    loeo_applies,
    selections,
    without_env,
)

NAN = math.nan


COLS = ["scenario", "replicate", "method", "hparams", "trial", "access", "told", "val_acc", "val_wga", "loeo_acc",
        "acc_bal"]


def _frame(rows):
    return pd.DataFrame([dict(zip(COLS, r, strict=True)) for r in rows], columns=COLS)


def _set(row, **values):
    """``row`` with some columns replaced."""
    return tuple(values.get(c, v) for c, v in zip(COLS, row, strict=True))


# one replicate, three settings; each rule's metric has a different winner
ROWS = [
    ("s", 0, "m", "", 0, "pooled", "", 0.70, 0.40, 0.60, 0.55),
    ("s", 0, "m", "C=1", 1, "pooled", "", 0.90, 0.30, 0.65, 0.60),
    ("s", 0, "m", "C=2", 2, "pooled", "", 0.80, 0.50, 0.70, 0.75),
]


def _picked(out, rule):
    return out[out.selection == rule]["selected_hparams"].tolist()


def test_each_rule_picks_the_setting_with_the_highest_value_of_its_metric():
    out = apply_rules(_frame(ROWS), ["defaults", "train_val", "worst_group_val", "loeo", "oracle"])
    assert _picked(out, "defaults") == [""]
    assert _picked(out, "train_val") == ["C=1"]
    assert _picked(out, "worst_group_val") == ["C=2"]
    assert _picked(out, "loeo") == ["C=2"]
    assert _picked(out, "oracle") == ["C=2"]


def test_a_reversed_metric_reverses_the_choice():
    # not a constant answer: swap the val accuracies and train_val follows them
    rows = [_set(r, val_acc=1.6 - r[7]) for r in ROWS]  # 0.9, 0.7, 0.8
    out = apply_rules(_frame(rows), ["train_val"])
    assert _picked(out, "train_val") == [""]


def test_ties_go_to_the_lowest_draw_index():
    rows = [_set(r, val_acc=0.8) for r in ROWS]
    rows = [rows[2], rows[1], rows[0]]  # the frame's order must not matter
    out = apply_rules(_frame(rows), ["train_val"])
    assert out["trial"].tolist() == [0]
    rows = [_set(ROWS[0], val_acc=0.5), _set(ROWS[1], val_acc=0.8), _set(ROWS[2], val_acc=0.8)]
    assert apply_rules(_frame(rows), ["train_val"])["trial"].tolist() == [1]


def test_missing_values_are_not_candidates_and_no_candidate_gives_no_row_with_a_reason():
    rows = [_set(ROWS[0], val_acc=NAN), _set(ROWS[1], val_acc=NAN), ROWS[2]]
    assert _picked(apply_rules(_frame(rows), ["train_val"]), "train_val") == ["C=2"]
    # a method without an edited model
    none = [_set(r, val_acc=NAN, val_wga=NAN, loeo_acc=NAN, acc_bal=NAN) for r in ROWS]
    skipped = []
    out = apply_rules(_frame(none), ["defaults", "train_val", "oracle"], skipped=skipped)
    assert out.selection.tolist() == ["defaults"]
    assert {s["selection"] for s in skipped} == {"train_val", "oracle"}
    assert all("no setting has" in s["reason"] for s in skipped)


def test_a_single_setting_is_kept_by_every_rule_but_loeo_without_its_metric():
    one = _frame([("s", 0, "ols", "", 0, "pooled", "", NAN, NAN, NAN, NAN)])
    skipped = []
    out = apply_rules(one, ["defaults", "train_val", "worst_group_val", "loeo", "oracle"], skipped=skipped)
    assert sorted(out.selection) == ["defaults", "oracle", "train_val", "worst_group_val"]
    assert out.loc[out.selection == "worst_group_val", "access"].item() == "pooled"  # nothing was read
    assert [s["selection"] for s in skipped] == ["loeo"]


def test_loeo_gives_no_rows_where_no_setting_has_loeo_acc():
    rows = [_set(r, loeo_acc=NAN) for r in ROWS]  # a scenario with fewer than 3 training environments
    skipped = []
    out = apply_rules(_frame(rows), ["loeo", "train_val"], skipped=skipped)
    assert out.selection.tolist() == ["train_val"]
    assert "at least 3" in skipped[0]["reason"]


def test_worst_group_val_rows_carry_group_val_access_and_are_told():
    out = apply_rules(_frame(ROWS), ["train_val", "worst_group_val"])
    wgv = out[out.selection == "worst_group_val"].iloc[0]
    assert wgv["access"] == "pooled+group_val" and wgv["told"] == "group_val"
    assert out[out.selection == "train_val"].iloc[0]["access"] == "pooled"
    # a method that already reads every group label keeps its level
    rows = [_set(r, access="pooled+env+group", told="group") for r in ROWS]
    wgv = apply_rules(_frame(rows), ["worst_group_val"]).iloc[0]
    assert wgv["access"] == "pooled+env+group" and wgv["told"] == "group"


def test_selection_is_per_replicate_and_per_method():
    rows = [*ROWS, ("s", 1, "m", "C=1", 1, "pooled", "", 0.1, 0.9, 0.1, 0.1),
            ("s", 1, "m", "", 0, "pooled", "", 0.2, 0.1, 0.2, 0.2),
            ("s", 0, "k", "", 0, "pooled", "", 0.0, 0.0, 0.0, 0.0)]
    out = apply_rules(_frame(rows), ["train_val"])
    got = {(r.replicate, r.method): r.selected_hparams for r in out.itertuples()}
    assert got == {(0, "m"): "C=1", (1, "m"): "", (0, "k"): ""}
    assert {(d["replicate"], d["method"], d["selection"]) for d in selections(out)} == set(
        (k[0], k[1], "train_val") for k in got)


def test_defaults_keeps_every_draw_zero_setting_and_the_oracle_is_marked():
    rows = [*ROWS, ("s", 0, "m", "C=9", 0, "pooled", "", 0.1, 0.1, 0.1, 0.1)]  # listed twice, both draw 0
    frame = _frame(rows).assign(entry="m")
    out = apply_rules(frame, ["defaults", "oracle"])
    assert sorted(_picked(out, "defaults")) == ["", "C=9"]
    assert out.loc[out.selection == "oracle", "entry"].item() == "m" + UPPER_BOUND_MARK


def test_unknown_rules_are_refused_by_name():
    with pytest.raises(InputError, match=r"best.*allowed: defaults"):
        apply_rules(_frame(ROWS), ["best"])


# -- leave-one-environment-out on a real replicate -------------------------------------------------------


class _Constant(Method):
    """Predicts class 1 everywhere, and records what it was given.

    References
    ----------
    None: a test double.
    """

    name = "test_constant_edit"
    family = "robust_training"
    access = frozenset({"pooled", "env"})
    outputs = frozenset({"edit"})
    seen: list = []

    def __init__(self, *, random_state=None):
        self.random_state = random_state

    def run(self, task):
        import torch

        type(self).seen.append((np.unique(task.train.env).tolist(), np.unique(task.val.env).tolist(),
                                len(task.train)))
        layer = torch.nn.Linear(task.train.x.shape[1], 1)
        with torch.no_grad():
            layer.weight.zero_()
            layer.bias.fill_(1.0)
        return MethodOutput(edited=torch.nn.Sequential(layer, torch.nn.Flatten(0)))


@pytest.fixture(scope="module")
def three_env_replicate():
    from cowbench.jobs import ReplicateSpec, prepare
    from cowbench.subject import SubjectConfig

    scn = cb.make_scenario("cow", n_train=300, n_val=150, n_test=300, agreement_train=(0.95, 0.8, 0.6))
    cfg = SubjectConfig(arch="linear", epochs=20).to_dict()
    return prepare(ReplicateSpec(scn.spec, 0, 0, cfg))


def test_loeo_accuracy_of_a_constant_model_is_the_mean_share_of_positives_per_environment(three_env_replicate):
    from cowbench.blind_run import INPROCESS_MODE, run_method_instance
    from cowbench.job_run import blind_refit
    from cowbench.job_spec import method_info

    rep = three_env_replicate
    _Constant.seen = []
    folds = blind_refit(_Constant.name, {}, method_info(_Constant),
                        lambda call: run_method_instance(_Constant(random_state=call.fit_seed), call.inputs), [],
                        run_mode=INPROCESS_MODE)
    got = loeo_accuracy(rep, folds, fit_seed=1)
    train = rep.data.train
    expected = np.mean([np.mean(train.y[train.env == e] == 1) for e in np.unique(train.env)])
    assert got == pytest.approx(expected, abs=1e-12)
    # each fold saw every environment but the held-out one, in train and in val
    envs = sorted(np.unique(train.env).tolist())
    # (environment ids are the blinded view's: relabelled, so only their number is compared)
    assert [len(s[0]) for s in _Constant.seen] == [len(envs) - 1] * len(envs)
    assert [len(s[1]) for s in _Constant.seen] == [len(envs) - 1] * len(envs)
    assert [s[2] for s in _Constant.seen] == [int(np.sum(train.env != held)) for held in envs]


def test_without_env_removes_the_units_of_one_environment_only(three_env_replicate):
    data = three_env_replicate.data
    cut = without_env(data, 0)
    keep = data.train.env != 0
    np.testing.assert_array_equal(cut.train.x, data.train.x[keep])
    np.testing.assert_array_equal(cut.train.y, data.train.y[keep])
    assert len(cut.train.concepts) == int(keep.sum()) and len(cut.val) == int(np.sum(data.val.env != 0))
    assert cut.test_bal is data.test_bal


def test_loeo_applies_only_with_three_environments_a_binary_label_and_an_edit(three_env_replicate):
    edit, world = METHODS.get("group_reweight"), METHODS.get("logistic")
    assert loeo_applies(three_env_replicate.scenario, edit) is None
    assert "no edited model" in loeo_applies(three_env_replicate.scenario, world)
    assert "at least 3" in loeo_applies(cb.make_scenario("cow"), edit)
    assert "binary" in loeo_applies(cb.make_scenario("linear_sem"), edit)


def test_selection_metrics_come_from_the_harness_not_the_method(three_env_replicate):
    # a method cannot pick its own val accuracy: claims in its details are not what the rule reads
    from cowbench.jobs import execute

    class Boasts(_Constant):
        def run(self, task):
            out = super().run(task)
            out.details = {"val_acc": 1.0, "val_wga": 1.0}
            return out

    _, metrics, _ = execute(three_env_replicate, Boasts(random_state=0), fit_seed=0)
    val = three_env_replicate.data.val
    assert metrics["val_acc"] == pytest.approx(float(np.mean(val.y == 1)), abs=1e-12)
    worst = min(np.mean(val.y[val.group == g] == 1) for g in np.unique(val.group))
    assert metrics["val_wga"] == pytest.approx(worst, abs=1e-12)
    assert metrics["loeo_acc"] is None  # only jobs of a loeo suite refit


def test_a_fold_that_raises_leaves_loeo_acc_missing_with_the_reason_and_the_job_ok(three_env_replicate):
    from cowbench.jobs import execute

    class NeedsEveryEnv(_Constant):
        def run(self, task):
            if len(np.unique(task.train.env)) != task.n_environments:
                raise ValueError("an environment is missing")
            return super().run(task)

    _, metrics, resources = execute(three_env_replicate, NeedsEveryEnv(random_state=0), fit_seed=0, loeo=True)
    assert metrics["loeo_acc"] is None and "an environment is missing" in metrics.missing["loeo_acc"]
    assert metrics["val_acc"] is not None and resources["loeo_wall_s"] >= 0
    _, ok, _ = execute(three_env_replicate, _Constant(random_state=0), fit_seed=0, loeo=True)
    assert 0 <= ok["loeo_acc"] <= 1


def test_the_rules_agree_with_a_plain_loop_on_a_random_frame_with_ties_and_gaps():
    rng = np.random.default_rng(0)
    rows = []
    for s in range(5):
        for rep in range(4):
            for m in range(3):
                for t in range(rng.integers(1, 6)):
                    val = rng.choice([0.5, 0.6, 0.7, NAN])  # coarse values: many ties; NaN: missing
                    rows.append((f"s{s}", rep, f"m{m}", f"C={t}" if t else "", t, "pooled", "", val, 0.0, 0.0, 0.0))
    frame = _frame(rows)
    out = apply_rules(frame, ["train_val"])
    got = {(r.scenario, r.replicate, r.method): r.trial for r in out.itertuples()}
    want = {}
    for key, group in frame.groupby(["scenario", "replicate", "method"]):
        have = group.dropna(subset=["val_acc"])
        if len(have):
            want[key] = int(have.loc[have.val_acc == have.val_acc.max(), "trial"].min())
        elif group.hparams.nunique() == 1:
            want[key] = int(group.trial.min())
    assert got == want


def test_fold_subjects_are_kept_in_the_replicate_cache_and_read_back_bit_for_bit(three_env_replicate, tmp_path,
                                                                                 monkeypatch):
    import torch

    import cowbench.loeo as loeo
    import cowbench.subject as subject

    rep = three_env_replicate
    loeo._FOLDS.clear()
    trained = [loeo.fold_replicate(rep, e, tmp_path).subject for e in np.unique(rep.data.train.env)]
    files = sorted(p.name for p in tmp_path.glob("loeo-subject-*.pt"))
    assert files == [f"loeo-subject-{int(e)}-{rep.fingerprint[:16]}.pt" for e in np.unique(rep.data.train.env)]
    loeo._FOLDS.clear()  # another worker: nothing in its memory, the files on disk

    def no_training(*args, **kwargs):
        raise AssertionError("a cached fold subject was trained again")

    monkeypatch.setattr(subject, "fit_fresh", no_training)
    loaded = [loeo.fold_replicate(rep, e, tmp_path).subject for e in np.unique(rep.data.train.env)]
    for a, b in zip(trained, loaded, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    loeo._FOLDS.clear()
    with pytest.raises(AssertionError, match="trained again"):  # the check can fail: without the files it trains
        loeo.fold_replicate(rep, int(np.unique(rep.data.train.env)[0]), tmp_path / "empty")
    loeo._FOLDS.clear()
