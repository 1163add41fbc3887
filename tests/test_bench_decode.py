"""bench/folders.py's decoder comparison: both decoders, on the same files, give the same picture."""
import pytest

from bench import folders

# the "before" decoder is torchvision.io's, deprecated since 0.29: the bench keeps it only to compare
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities:DeprecationWarning")


def test_both_decoders_agree_and_are_timed_on_the_same_files(tmp_path):
    folders.write_photo_folder(tmp_path, 4, image_size=64, classes=1)
    paths = sorted(tmp_path.rglob("*.jpg"))
    for path in paths:
        before, after = folders.torchvision_io_decode(path, 64), folders.pillow_decode(path, 64)
        assert before.shape == after.shape == (3, 64, 64)
        assert (before.float() - after.float()).abs().mean() < 3  # out of 255: the same photo
    timed = folders.time_decodes(paths, 64, threads=2)
    assert timed["torchvision.io"]["images_per_s"] > 0 and timed["pillow"]["images_per_s"] > 0
    assert timed["speedup"] == pytest.approx(timed["pillow"]["images_per_s"] / timed["torchvision.io"]["images_per_s"],
                                             rel=0.01)
