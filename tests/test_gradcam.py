import pytest
import torch
from captum.attr import LayerGradCam

from common.gradcam import GradCAM, overlay, true_class
from common.hooks import get_layer
from common.models import resnet18
from common.plots import image_grid


@pytest.fixture
def model():
    torch.manual_seed(0)
    return resnet18(num_classes=10, norm="ln", width=8).eval()


@pytest.mark.parametrize("layer_name", ["layer4.1", "layer3.0", "layer4.1.conv2"])
def test_raw_map_matches_captum_layer_gradcam(model, layer_name):
    x = torch.randn(6, 3, 32, 32)
    target = torch.tensor([0, 1, 2, 3, 4, 5])
    layer = get_layer(model, layer_name)
    with GradCAM(model, layer) as cam:
        ours, _ = cam.raw_maps(x, target)
    theirs = LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=True)
    assert ours.shape == theirs.shape
    assert ours.abs().sum() > 0
    torch.testing.assert_close(ours, theirs.detach(), rtol=1e-4, atol=1e-6)


def test_shape_contract_and_range(model):
    x = torch.randn(5, 3, 32, 32)
    with GradCAM(model, model.layer4[-1]) as cam:
        maps, logits = cam(x)
    assert maps.shape == (5, 32, 32) and logits.shape == (5, 10)
    assert maps.min() >= 0 and maps.max() <= 1
    assert torch.allclose(maps.amax(dim=(1, 2)), torch.ones(5)) or (maps.amax(dim=(1, 2)) == 0).any()


def test_default_target_is_the_predicted_class_and_true_label_option_differs(model):
    x = torch.randn(4, 3, 32, 32)
    with GradCAM(model, model.layer4[-1]) as cam:
        pred_maps, logits = cam.raw_maps(x)
        explicit, _ = cam.raw_maps(x, logits.argmax(1))
        other = (logits.argmax(1) + 1) % 10
        true_maps, _ = cam.raw_maps(x, true_class(other))
    torch.testing.assert_close(pred_maps, explicit)
    assert not torch.allclose(pred_maps, true_maps)


def test_hooks_are_released_on_exit(model):
    layer = model.layer4[-1]
    with GradCAM(model, layer) as cam:
        assert len(layer._forward_hooks) == 1
        cam(torch.randn(2, 3, 32, 32))
    assert len(layer._forward_hooks) == 0
    with pytest.raises(RuntimeError, match="with"):
        cam.raw_maps(torch.randn(1, 3, 32, 32))


def test_model_gradients_are_left_clean(model):
    with GradCAM(model, model.layer4[-1]) as cam:
        cam(torch.randn(2, 3, 32, 32))
    assert all(p.grad is None for p in model.parameters())


def test_unknown_layer_is_a_clear_error(model):
    with pytest.raises(ValueError, match="no layer 'layer9'"):
        get_layer(model, "layer9")


def test_overlay_shape_and_range():
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    maps = torch.rand(3, 32, 32)
    out = overlay(images, maps)
    assert out.shape == (3, 32, 32, 3) and out.min() >= 0 and out.max() <= 1
    # alpha = 0 gives back the image
    torch.testing.assert_close(overlay(images, maps, alpha=0.0), images.permute(0, 2, 3, 1).float() / 255)


def test_image_grid_writes_a_png_even_with_no_images(tmp_path):
    """A perfect test score leaves nothing misclassified; the run folder still gets its PNGs."""
    image_grid(torch.zeros(0, 3, 32, 32, dtype=torch.uint8), [], tmp_path / "none.png", "no misclassified test images")
    image_grid(torch.zeros(3, 3, 32, 32, dtype=torch.uint8), ["a", "b", "c"], tmp_path / "three.png")
    for name in ("none.png", "three.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_image_grid_has_as_many_columns_as_images_up_to_cols(tmp_path):
    """One misclassified image is one panel, not the first of five with four empty ones; five or more fill rows."""
    from PIL import Image

    def width(n: int) -> int:
        image_grid(torch.zeros(n, 3, 32, 32, dtype=torch.uint8), ["x"] * n, tmp_path / f"{n}.png")
        return Image.open(tmp_path / f"{n}.png").size[0]

    assert width(1) < width(2) < width(5) == width(7)
