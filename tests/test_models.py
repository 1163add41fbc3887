import pytest
import torch
import torch.nn as nn

from common.models import LayerNorm2d, WSConv2d, _LayerNorm2dFn, count_parameters, make_norm, resnet18


def test_resnet18_bn_has_the_reference_parameter_count():
    assert count_parameters(resnet18(norm="bn")) == 11_173_962


def test_ln_is_in_every_norm_slot_and_no_batchnorm_remains():
    model = resnet18(norm="ln")
    lns = [name for name, m in model.named_modules() if isinstance(m, LayerNorm2d)]
    assert len(lns) == 20  # stem + 2 per block x 8 blocks + 3 projection shortcuts
    assert "bn1" in lns and "layer2.0.shortcut.1" in lns and "layer4.1.bn2" in lns
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    # LayerNorm2d has a per-channel affine, so the count matches the BN model's
    assert count_parameters(model) == 11_173_962


def test_ln_chw_is_the_original_stem_norm():
    norm = make_norm("ln-chw", 64, 32)
    assert isinstance(norm, nn.LayerNorm)
    assert count_parameters(norm) == 2 * 64 * 32 * 32  # 131,072 weights + 131,072 biases


@pytest.mark.parametrize("norm", ["bn", "ln", "gn", "ln-chw"])
def test_every_norm_builds_and_runs(norm):
    model = resnet18(num_classes=7, norm=norm, width=8)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)


def test_unknown_norm_is_rejected():
    with pytest.raises(ValueError, match="unknown norm"):
        resnet18(norm="batchnorm")


def test_width():
    slim = resnet18(width=16)
    assert slim.linear.in_features == 128
    assert slim(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def _reference_and_ours(x, channels):
    torch.manual_seed(1)
    ref = nn.GroupNorm(1, channels).double()
    ours = LayerNorm2d(channels).double()
    with torch.no_grad():
        ref.weight.normal_(), ref.bias.normal_()
        ours.weight.copy_(ref.weight), ours.bias.copy_(ref.bias)
    return ref, ours


@pytest.mark.parametrize("channels_last", [False, True])
def test_layernorm2d_matches_groupnorm_1(channels_last):
    x = torch.randn(4, 6, 5, 7, dtype=torch.double)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    ref, ours = _reference_and_ours(x, 6)
    xr, xo = x.clone().requires_grad_(), x.clone().requires_grad_()
    yr, yo = ref(xr), ours(xo)
    torch.testing.assert_close(yo, yr)
    g = torch.randn_like(yr)
    yr.backward(g), yo.backward(g)
    torch.testing.assert_close(xo.grad, xr.grad)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad)
    torch.testing.assert_close(ours.bias.grad, ref.bias.grad)


def test_cuda_path_function_matches_groupnorm_and_keeps_channels_last():
    """The closed-form autograd function used on CUDA, checked here on the CPU."""
    x = torch.randn(3, 8, 6, 6, dtype=torch.double).contiguous(memory_format=torch.channels_last)
    ref, ours = _reference_and_ours(x, 8)
    y = _LayerNorm2dFn.apply(x, ours.weight, ours.bias, ours.eps)
    torch.testing.assert_close(y, ref(x))
    assert y.is_contiguous(memory_format=torch.channels_last)
    w, b = ours.weight.detach().clone().requires_grad_(), ours.bias.detach().clone().requires_grad_()
    xs = x.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a, c, d: _LayerNorm2dFn.apply(a, c, d, 1e-5), (xs, w, b))


def test_layernorm2d_bf16_input_keeps_dtype():
    x = torch.randn(2, 4, 5, 5).to(torch.bfloat16)
    y = _LayerNorm2dFn.apply(x, torch.ones(4), torch.zeros(4), 1e-5)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), nn.functional.group_norm(x.float(), 1), atol=0.02, rtol=0.02)


def test_weight_standardization_uses_standardised_filters_in_every_conv():
    model = resnet18(norm="ln", width=8, weight_std=True)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 20 and all(isinstance(m, WSConv2d) for m in convs)  # stem, 16 block convs, 3 projections
    assert count_parameters(model) == count_parameters(resnet18(norm="ln", width=8))  # no extra parameters
    conv = model.layer2[0].conv1
    with torch.no_grad():
        conv.weight.mul_(3).add_(0.5)  # a scale and an offset that standardisation must remove
    w = conv.weight
    w_std = (w - w.mean((1, 2, 3), keepdim=True)) / w.std((1, 2, 3), unbiased=False, keepdim=True)
    x = torch.randn(2, 8, 16, 16)
    y = conv(x)
    torch.testing.assert_close(y, nn.functional.conv2d(x, w_std, stride=2, padding=1), atol=1e-2, rtol=1e-3)
    with torch.no_grad():
        conv.weight.mul_(2).sub_(1)  # invariant to a per-filter scale and offset
    torch.testing.assert_close(conv(x), y, atol=1e-2, rtol=1e-3)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
