"""common.metrics against scikit-learn: accuracy, precision/recall/F1 (weighted and macro), confusion matrix."""
import pytest
import torch
from sklearn.metrics import accuracy_score, precision_recall_fscore_support
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from common.metrics import classification_metrics, confusion_matrix


def sklearn_metrics(preds: torch.Tensor, labels: torch.Tensor, k: int) -> dict:
    y, p = labels.numpy(), preds.numpy()
    out = {"acc": accuracy_score(y, p)}
    for how in ("weighted", "macro"):
        precision, recall, f1, _ = precision_recall_fscore_support(y, p, labels=list(range(k)), average=how,
                                                                   zero_division=0)
        out |= {f"precision_{how}": precision, f"recall_{how}": recall, f"f1_{how}": f1}
    out["confusion_matrix"] = sk_confusion_matrix(y, p, labels=list(range(k))).tolist()
    return out


def assert_same(ours: dict, theirs: dict) -> None:
    assert ours.keys() == theirs.keys()
    assert ours["confusion_matrix"] == theirs["confusion_matrix"]
    for key in theirs:
        if key != "confusion_matrix":
            assert ours[key] == pytest.approx(theirs[key], abs=1e-12), key


@pytest.mark.parametrize("k, n, seed", [(2, 28, 0), (2, 500, 1), (5, 300, 2), (10, 1000, 3)])
def test_random_predictions_match_sklearn(k, n, seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, k, (n,), generator=g)
    preds = torch.where(torch.rand(n, generator=g) < 0.6, labels, torch.randint(0, k, (n,), generator=g))
    assert_same(classification_metrics(preds, labels, k), sklearn_metrics(preds, labels, k))


@pytest.mark.parametrize("case", ["one class predicted", "a class never seen", "all right", "all wrong"])
def test_degenerate_predictions_match_sklearn_with_zero_division_0(case):
    labels = torch.tensor([0] * 14 + [1] * 14)
    preds = {"one class predicted": torch.ones(28, dtype=torch.long),  # cat's precision is 0/0
             "a class never seen": torch.tensor([0] * 10 + [2] * 4 + [1] * 14),
             "all right": labels.clone(),
             "all wrong": 1 - labels}[case]
    k = 3 if case == "a class never seen" else 2
    assert_same(classification_metrics(preds, labels, k), sklearn_metrics(preds, labels, k))


@pytest.mark.parametrize("cm, figures", [
    ([[1, 13], [2, 12]], (0.4643, 0.4067, 0.4643, 0.3665)),  # the original's plain model
    ([[3, 11], [3, 11]], (0.5000, 0.5000, 0.5000, 0.4556)),  # the original's augmented model
])
def test_the_originals_figures_come_from_a_14_plus_14_confusion_matrix(cm, figures):
    """The original printed accuracy, weighted precision, recall and F1 on 14 cats and 14 dogs. These confusion
    matrices (or their mirror images) are the only ones that give all four figures: the check that "weighted"
    means what the original's scikit-learn call meant."""
    labels = torch.tensor([0] * 14 + [1] * 14)
    preds = torch.tensor([0] * cm[0][0] + [1] * cm[0][1] + [0] * cm[1][0] + [1] * cm[1][1])
    m = classification_metrics(preds, labels, 2)
    assert m["confusion_matrix"] == cm
    assert tuple(round(m[k], 4) for k in ("acc", "precision_weighted", "recall_weighted", "f1_weighted")) == figures


def test_confusion_matrix_layout_and_bad_indices():
    cm = confusion_matrix(torch.tensor([1, 1, 0]), torch.tensor([0, 1, 1]), 2)
    assert cm.tolist() == [[0, 1], [1, 1]]  # row: true class, column: predicted
    with pytest.raises(ValueError):
        confusion_matrix(torch.tensor([2]), torch.tensor([0]), 2)
    with pytest.raises(ValueError):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0]), 2)
