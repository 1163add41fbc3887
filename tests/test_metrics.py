import torch
from sklearn.metrics import accuracy_score, recall_score

from common.evaluation import pick_misclassified
from common.metrics import per_class_accuracy


def test_per_class_accuracy_matches_sklearn_recall():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (500,), generator=g)
    preds = torch.where(torch.rand(500, generator=g) < 0.7, labels, torch.randint(0, 5, (500,), generator=g))
    ours = per_class_accuracy(preds, labels, [f"c{i}" for i in range(5)])
    theirs = recall_score(labels.numpy(), preds.numpy(), average=None)
    assert list(ours.values()) == list(map(float, torch.tensor(theirs, dtype=torch.float32)))
    assert abs(sum(ours[f"c{i}"] * (labels == i).sum().item() for i in range(5)) / 500
               - accuracy_score(labels.numpy(), preds.numpy())) < 1e-6


def test_pick_misclassified_is_random_seeded_and_only_wrong():
    labels = torch.arange(1000) % 10
    preds = labels.clone()
    preds[::3] = (preds[::3] + 1) % 10  # every third is wrong
    a = pick_misclassified(preds, labels, 20, seed=0)
    assert len(a) == 20 and torch.equal(a, pick_misclassified(preds, labels, 20, seed=0))
    assert (preds[a] != labels[a]).all()
    assert not torch.equal(a, torch.arange(0, 60, 3))  # not simply the first 20
    assert not torch.equal(a, pick_misclassified(preds, labels, 20, seed=1))
    assert len(pick_misclassified(labels, labels, 20, seed=0)) == 0
