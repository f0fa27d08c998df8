"""GEORGE: per-class clustering finds planted subclasses, no group labels are read, the groups on cow and
four_groups are recovered better than chance."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

import cowbench as cb
from cowbench.access import Task
from cowbench.methods.george import GEORGE, cluster_class

SMALL_CONFIG = {"arch": "mlp", "hidden": 8, "epochs": 60, "lr": 0.02, "weight_decay": 0.0}


def test_cluster_class_finds_separated_subclasses_and_their_number():
    # three well-separated Gaussian blobs in 5 dimensions: the silhouette picks k = 3 and the labels are exact
    rng = np.random.default_rng(0)
    centres = np.array([[0.0] * 5, [8.0] + [0.0] * 4, [0.0, 8.0, 0.0, 0.0, 0.0]])
    truth = np.repeat([0, 1, 2], [300, 150, 50])
    feats = centres[truth] + rng.standard_normal((500, 5))
    labels, k = cluster_class(feats, n_components=2, max_clusters=5, seed=0)
    assert k == 3
    assert adjusted_rand_score(truth, labels) > 0.99


def test_cluster_class_degenerate_inputs_give_one_cluster():
    labels, k = cluster_class(np.ones((50, 3)), n_components=2, max_clusters=4, seed=0)
    assert k == 1 and (labels == 0).all()


def test_george_reads_no_group_labels():
    scn = cb.make_scenario("four_groups", n_train=400, n_val=200, n_test=200)
    data = scn.sample(0)
    subject = cb.train_subject(scn, data, **SMALL_CONFIG)
    task = Task(scn, data, subject, frozenset({"pooled"}), subject_config={**SMALL_CONFIG, "version": "2"})
    out = GEORGE(random_state=0).run(task)
    assert task.told == [] and "group" not in GEORGE.access
    assert sum(out.details["inferred_group_sizes"].values()) == len(data.train.y)


def _george_groups(scenario):
    scn = cb.make_scenario(scenario)
    data = scn.sample(0)
    task = Task(scn, data, cb.train_subject(scn, data, arch="mlp", seed=0), frozenset({"pooled"}),
                subject_config={"arch": "mlp"})
    groups, _ = GEORGE(random_state=0).infer_groups(task)
    truth, y = np.asarray(data.train.group), np.asarray(data.train.y)
    return groups, truth, [adjusted_rand_score(truth[y == c], groups[y == c]) for c in (0, 1)]


def test_george_finds_the_spurious_subclass_on_four_groups():
    # four_groups' grass is bimodal (+-1 with sd 0.5) and the ERM features carry it: measured ARI 0.66 overall,
    # within the classes 0.10 and 0.69 (seed 0; seed 1: 0.54, 0.07 and -0.01). Groups independent of the truth
    # have ARI 0 +- ~0.005 within a class of 2000 units
    groups, truth, within = _george_groups("four_groups")
    assert adjusted_rand_score(truth, groups) > 0.2
    assert max(within) > 0.05


def test_george_does_not_find_cows_grass_subclass():
    # expected failure: cow's grass is binary with measurement noise of sd 1, as large as its effect, and the
    # within-class variance of the ERM features follows the causes; the clusters split each class along them.
    # Measured (seed 0): ARI 0.44 overall, all of it the class split; within the classes -0.003 and -0.014
    groups, truth, within = _george_groups("cow")
    assert adjusted_rand_score(truth, groups) > 0.2  # the class split alone
    assert max(abs(a) for a in within) < 0.05


@pytest.mark.slow
def test_george_does_not_beat_erms_worst_group_accuracy_on_cow():
    # the consequence of the failure above: GroupDRO on clusters unrelated to grass. Measured worst-group accuracy
    # (seeds 0-2): 0.26, 0.49, 0.00 against ERM's 0.21, 0.23, 0.24; seed 0 is within 4 standard errors of ERM
    scn = cb.make_scenario("cow")
    george = cb.evaluate(scn, GEORGE(random_state=0), seed=0)["wga"]
    erm = cb.evaluate(scn, cb.get_method("erm_retrain")(random_state=0), seed=0)["wga"]
    smallest = np.bincount(np.unique(scn.sample(0).test_ood.group, return_inverse=True)[1]).min()
    assert george - erm < 4 * np.sqrt(2 * 0.25 / smallest)
