"""task_inaturalist part B: the four fine-tuning strategies of ResNet-50 (what is trainable, frozen BatchNorms
kept in eval mode), ImageNet weights from TORCH_HOME or one clear error offline, per-group LRs, and
common.finetune, which task_cifar_transfer shares."""
import copy

import pytest
import torch
import torch.nn as nn
import torchvision

from common.errors import UserError
from common.finetune import KeepsFrozenInEval, first_children
from common.gradcam import resnet50_gradcam_layer
from common.models import count_parameters
from common.training import TrainConfig, make_optimizer
from common.weights import weights_file
from task_inaturalist.finetune import (
    CHILDREN,
    IMAGENET_MEAN,
    IMAGENET_STD,
    STRATEGIES,
    WEIGHTS,
    build_finetune_model,
    describe,
    frozen_modules,
    lr_scales,
)

# torchvision resnet50 with a 10-class fc: 23,528,522 parameters. conv1 9,408, bn1 128, layer1 215,808,
# layer2 1,219,584, fc 2048 * 10 + 10 = 20,490.
TOTAL = 23_528_522
EXPECTED_TRAINABLE = {
    "head": 20_490,
    "freeze12": TOTAL - 215_808 - 1_219_584,  # 22,093,130
    "freeze_k": TOTAL - 9_408 - 128 - 215_808 - 1_219_584,  # k = 6: 22,083,594
    "full": TOTAL,
}


@pytest.fixture(scope="module")
def all_names():
    return [name for name, _ in torchvision.models.resnet50(num_classes=10).named_parameters()]




def trainable(model: nn.Module) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


# ----------------------------------------------------------------------------- what each strategy trains
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_trainable_parameters_per_strategy(strategy, all_names):
    model = build_finetune_model(strategy, 10, freeze_k=6, load_pretrained=False)
    assert [name for name, _ in model.named_parameters()] == all_names  # torchvision's names, in order
    assert model.fc.out_features == 10 and model.fc.in_features == 2048
    expected = {
        "head": {"fc.weight", "fc.bias"},
        # the original's rule, verbatim: requires_grad = not any(x in name for x in ['layer1', 'layer2'])
        "freeze12": {n for n in all_names if not any(x in n for x in ["layer1", "layer2"])},
        "freeze_k": {n for n in all_names if not n.startswith(("conv1.", "bn1.", "layer1.", "layer2."))},
        "full": set(all_names),
    }[strategy]
    assert trainable(model) == expected
    assert count_parameters(model, trainable_only=True) == EXPECTED_TRAINABLE[strategy]
    assert count_parameters(model) == TOTAL
    if strategy == "freeze12":
        assert {"conv1.weight", "bn1.weight", "bn1.bias"} <= trainable(model)  # the stem stays trainable


def test_freeze_k_counts_children():
    assert CHILDREN == tuple(name for name, _ in torchvision.models.resnet50().named_children())
    assert frozen_modules("freeze_k", 0) == [] and frozen_modules("freeze_k", 4) == ["conv1", "bn1", "relu", "maxpool"]
    model = build_finetune_model("freeze_k", freeze_k=9, load_pretrained=False)
    assert trainable(model) == {"fc.weight", "fc.bias"}  # k = 9: all but fc, the same as "head"
    assert model.frozen == tuple(first_children(model, 9))
    model = build_finetune_model("freeze_k", freeze_k=7, load_pretrained=False)
    assert {n.split(".")[0] for n in trainable(model)} == {"layer4", "fc"}
    for k in (-1, 10):
        with pytest.raises(ValueError, match="freeze_k"):
            build_finetune_model("freeze_k", freeze_k=k, load_pretrained=False)
    with pytest.raises(ValueError, match="strategy"):
        build_finetune_model("layer3", load_pretrained=False)


def test_describe_gives_one_line_per_strategy():
    lines = [describe(s, 6) for s in STRATEGIES]
    assert len(set(lines)) == len(STRATEGIES) and all("\n" not in line for line in lines)
    assert describe("head", 6) == "head only (fc)"
    assert describe("freeze12", 6) == "layer1, layer2 frozen (the original's code)"
    assert describe("freeze_k", 6) == "first 6 children frozen (conv1 ... layer2)"
    assert describe("freeze_k", 1) == "first 1 children frozen (conv1)"
    assert describe("full", 6, backbone_lr_scale=0.1) == "all layers, backbone LR x0.1"
    assert describe("freeze_k", 7) != describe("freeze_k", 6)


# ----------------------------------------------------------------------------- frozen BatchNorms
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_frozen_batchnorms_keep_their_statistics(strategy):
    torch.manual_seed(0)
    model = build_finetune_model(strategy, 10, freeze_k=6, load_pretrained=False)
    frozen = tuple(frozen_modules(strategy, 6))
    is_frozen = lambda name: any(name == f or name.startswith(f + ".") for f in frozen)  # noqa: E731
    bns = {name: m for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    assert len(bns) == 53
    before = {k: v.clone() for k, v in model.state_dict().items()}

    model.eval().train()  # what fit() does each epoch after evaluating
    model(torch.randn(2, 3, 64, 64)).sum().backward()

    after = model.state_dict()
    for name, bn in bns.items():
        assert bn.training == (not is_frozen(name)), name
        for stat in ("running_mean", "running_var", "num_batches_tracked"):
            key = f"{name}.{stat}"
            assert torch.equal(after[key], before[key]) == is_frozen(name), key
    for name, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, name  # no gradient reaches a frozen parameter
    assert model.fc.training


def test_frozen_modules_stay_in_eval_through_copies_and_wrappers():
    model = build_finetune_model("freeze12", load_pretrained=False)
    for wrapped in (copy.deepcopy(model), nn.Sequential(model)):
        wrapped.train()
        module = wrapped if isinstance(wrapped, KeepsFrozenInEval) else wrapped[0]
        assert not module.layer1.training and not module.layer2[3].bn3.training
        assert module.layer3.training and module.bn1.training
    assert set(model.state_dict()) == set(torchvision.models.resnet50(num_classes=10).state_dict())


def test_freeze_takes_dotted_names_and_first_children_checks_k():
    class Tiny(KeepsFrozenInEval, nn.Sequential):
        pass

    model = Tiny(nn.Conv2d(3, 4, 3), nn.Sequential(nn.BatchNorm2d(4), nn.BatchNorm2d(4)), nn.Linear(4, 2))
    assert model.freeze(["1.0"]) == ["1.0"] and model.freeze(first_children(model, 1)) == ["0"]
    assert model.frozen == ("1.0", "0")
    model.train()
    assert not model[1][0].training and model[1][1].training and model[1].training
    assert not model[0].weight.requires_grad and model[1][1].weight.requires_grad
    assert first_children(model, 3) == ["0", "1", "2"] and first_children(model, 0) == []
    for k in (-1, 4):
        with pytest.raises(ValueError, match="0..3"):
            first_children(model, k)


# ----------------------------------------------------------------------------- ImageNet weights
def test_pretrained_weights_load_from_your_own_weights_dir(own_weights_dir, torch_home, no_network):
    torch.manual_seed(123)
    state = torchvision.models.resnet50().state_dict()  # a stand-in, NOT ImageNet: only the path is tested
    assert weights_file(WEIGHTS) == torch_home / "hub" / "checkpoints" / "resnet50-11ad3fa6.pth"
    torch.save(state, own_weights_dir / "resnet50-11ad3fa6.pth")
    model = build_finetune_model("freeze12", 10)
    loaded = model.state_dict()
    assert set(loaded) == set(state)
    for name, value in loaded.items():
        if not name.startswith("fc."):  # the 1000-class fc is replaced by a fresh 10-class one
            assert torch.equal(value, state[name]), name
    assert model.fc.weight.shape == (10, 2048)
    assert IMAGENET_MEAN == pytest.approx((0.485, 0.456, 0.406))
    assert IMAGENET_STD == pytest.approx((0.229, 0.224, 0.225))


def test_missing_weights_offline_is_one_clear_error(torch_home, no_network):
    with pytest.raises(UserError) as info:
        build_finetune_model("head", 10)
    message = str(info.value)
    assert "\n" not in message and message.startswith("pretrained weights resnet50-11ad3fa6.pth not in ")
    assert str(torch_home / "hub" / "checkpoints") in message and f"download {WEIGHTS.url}" in message


# ----------------------------------------------------------------------------- learning rates, Grad-CAM
def test_full_fine_tuning_trains_the_backbone_at_a_lower_lr():
    model = build_finetune_model("full", load_pretrained=False)
    cfg = TrainConfig(lr=0.1, optimizer="adam", lr_scales=lr_scales("full", 0.1))
    optimizer = make_optimizer(model, cfg)
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    for name, p in model.named_parameters():
        assert lr_of[id(p)] == pytest.approx(0.1 if name.startswith("fc.") else 0.01), name
    assert {g["lr_scale"] for g in optimizer.param_groups} == {0.1, 1.0}
    for strategy in ("head", "freeze12", "freeze_k"):
        assert lr_scales(strategy, 0.1) == {}
    with pytest.raises(ValueError, match="backbone_lr_scale"):
        lr_scales("full", 0.0)


def test_head_strategy_optimises_the_head_alone():
    model = build_finetune_model("head", load_pretrained=False)
    optimizer = make_optimizer(model, TrainConfig(lr=0.01, lr_scales=lr_scales("head", 0.1)))
    params = [p for group in optimizer.param_groups for p in group["params"]]
    assert sorted(p.numel() for p in params) == [10, 20_480]
    assert all(group["lr"] == 0.01 for group in optimizer.param_groups)


def test_gradcam_layer_exists_and_keeps_a_7x7_map_at_224px():
    model = build_finetune_model("head", load_pretrained=False).eval()
    layer = model.get_submodule(resnet50_gradcam_layer(224))
    maps = []
    handle = layer.register_forward_hook(lambda m, i, o: maps.append(o))
    with torch.no_grad():
        model(torch.randn(1, 3, 224, 224))
    handle.remove()
    assert maps[0].shape == (1, 2048, 7, 7)
