"""common.folders on real encoded files (PIL writes JPEG, PNG, BMP, GIF, WebP) in small folders."""
import contextlib
import io
import os
import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from common import folders
from common.data import channel_mean_std
from common.errors import UserError
from common.folders import image_data_from_folders, load_folder, load_oxford_pets, stratified_split

# Decoding warns about nothing: no deprecated decoder (torchvision.io's, since 0.29), no PIL palette or bomb
# warning. Any warning fails these tests.
pytestmark = pytest.mark.filterwarnings("error")

SIZE = 32
GRAY, RGBA, CMYK = 120, (200, 40, 90, 128), (10, 200, 30, 0)


def noise(h: int, w: int, seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


@pytest.fixture
def photo_root(tmp_path) -> Path:
    """cat/ and dog/ with photos of every size and mode, one truncated JPEG, one text file named .jpg,
    and files the loader must ignore (.DS_Store, notes.txt)."""
    root = tmp_path / "photos"
    cat, dog = root / "cat", root / "dog"
    cat.mkdir(parents=True)
    dog.mkdir()
    noise(40, 50, 1).save(cat / "a.jpg")
    noise(33, 71, 2).save(cat / "b.png")
    Image.new("L", (45, 30), GRAY).save(cat / "gray.jpg")
    Image.new("CMYK", (30, 45), CMYK).save(cat / "cmyk.jpg")
    whole = jpeg_bytes(noise(60, 60, 3))
    (cat / "truncated.jpg").write_bytes(whole[:len(whole) // 2])
    (cat / "notes.txt").write_text("not a photo")
    (cat / ".DS_Store").write_bytes(b"\x00\x01")
    noise(64, 48, 4).save(dog / "a.jpg")
    Image.new("RGBA", (20, 25), RGBA).save(dog / "rgba.png")
    noise(31, 29, 5).save(dog / "c.bmp")
    noise(24, 36, 6).convert("P").save(dog / "d.gif")
    noise(50, 40, 7).save(dog / "e.webp")
    (dog / "fake.jpg").write_text("this is a text file with a .jpg name\n")
    return root


def skipped_names(data: folders.FolderImages) -> list[str]:
    """The file names in data.skipped's "path: reason" lines (no test name holds ": ")."""
    return [Path(line.split(": ", 1)[0]).name for line in data.skipped]


def counting_decoder(monkeypatch) -> list:
    """Count calls to the one decode function; returns the list the calls are appended to."""
    calls = []
    real = folders.decode_rgb

    def counted(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(folders, "decode_rgb", counted)
    return calls


def recorded_loads(monkeypatch) -> list:
    """Record the size of every image whose pixels Pillow loads; returns the list of sizes."""
    sizes = []
    real_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: sizes.append(self.size) or real_load(self))
    return sizes


# ----------------------------------------------------------------------------- decoding
def test_every_mode_becomes_three_channel_uint8_in_one_tensor(photo_root):
    data = load_folder(photo_root, SIZE)
    assert data.images.shape == (9, 3, SIZE, SIZE) and data.images.dtype == torch.uint8
    assert data.labels.dtype == torch.int64 and data.labels.tolist() == [0] * 4 + [1] * 5
    assert data.classes == ["cat", "dog"]
    names = [Path(p).relative_to(photo_root).as_posix() for p in data.paths]
    assert names == ["cat/a.jpg", "cat/b.png", "cat/cmyk.jpg", "cat/gray.jpg",
                     "dog/a.jpg", "dog/c.bmp", "dog/d.gif", "dog/e.webp", "dog/rgba.png"]
    by_name = dict(zip(names, data.images))
    gray = by_name["cat/gray.jpg"].int()
    assert (gray - GRAY).abs().max() <= 2  # gray repeated into R, G and B
    cmyk = by_name["cat/cmyk.jpg"].int()
    expected = torch.tensor(Image.open(photo_root / "cat/cmyk.jpg").convert("RGB").getpixel((0, 0))).view(3, 1, 1)
    assert (cmyk - expected).abs().max() <= 3
    rgb = torch.tensor(RGBA[:3], dtype=torch.uint8).view(3, 1, 1)
    assert torch.equal(by_name["dog/rgba.png"], rgb.expand(3, SIZE, SIZE))  # alpha dropped, colour kept


def test_resize_squashes_the_whole_frame_instead_of_cropping(tmp_path):
    wide = np.zeros((50, 100, 3), dtype=np.uint8)
    wide[:, :25] = (0, 255, 0)   # the left quarter is green: a centre crop would cut it off
    wide[:, 25:] = (255, 0, 0)
    (tmp_path / "a").mkdir()
    Image.fromarray(wide).save(tmp_path / "a" / "wide.png")
    image = load_folder(tmp_path, SIZE).images[0]
    assert (image[1, :, :7] > 200).all() and (image[0, :, :7] < 50).all()    # left quarter: green
    assert (image[0, :, 9:] > 200).all() and (image[1, :, 9:] < 50).all()    # the rest: red


def test_bad_files_are_skipped_named_and_counted(photo_root, capsys):
    data = load_folder(photo_root, SIZE)
    assert sorted(skipped_names(data)) == ["fake.jpg", "truncated.jpg"]
    err = capsys.readouterr().err.splitlines()
    named = [line for line in err if line.startswith("skipped ") and "unreadable" not in line]
    assert len(named) == 2 and any("truncated.jpg" in line and "truncated" in line.split(": ")[-1] for line in named)
    assert f"skipped 2 unreadable files of 11 in {photo_root.resolve()}" in err
    assert not any("notes.txt" in line or ".DS_Store" in line for line in err)


def test_many_unreadable_files_print_five_lines_and_keep_every_reason(tmp_path, capsys):
    """A folder of broken files must not bury the run's output: five named, "... and N more", the count; the
    full "path: reason" list stays on FolderImages and reaches ImageData, on a cache hit too."""
    for cls in ("a", "b"):
        (tmp_path / "train" / cls).mkdir(parents=True)
        noise(10, 10, 0).save(tmp_path / "train" / cls / "ok.png")
    for i in range(12):
        (tmp_path / "train" / "a" / f"bad{i:02}.jpg").write_text("not a photo")
    for attempt in ("decoded", "cached"):
        train = load_folder(tmp_path / "train", SIZE)
        err = capsys.readouterr().err.splitlines()
        assert [line.split(": ")[0].rsplit("/", 1)[-1] for line in err[:5]] == [f"bad{i:02}.jpg" for i in range(5)]
        assert err[5:] == ["skipped ... and 7 more",
                           f"skipped 12 unreadable files of 14 in {(tmp_path / 'train').resolve()}"], attempt
        assert train.skipped == [f"{tmp_path}/train/a/bad{i:02}.jpg: not an image in a format we read (JPEG, PNG, "
                                 f"BMP, GIF, WEBP)" for i in range(12)]
    (tmp_path / "test" / "a").mkdir(parents=True)
    (tmp_path / "test" / "b").mkdir()
    for cls in ("a", "b"):
        for i in range(5):
            noise(10, 10, i).save(tmp_path / "test" / cls / f"{i}.png")
    (tmp_path / "test" / "b" / "odd.png").write_bytes(b"\x89PNG")
    test = load_folder(tmp_path / "test", SIZE, classes=train.classes)
    data = image_data_from_folders("x", train, test, val_size=1)
    assert data.skipped == train.skipped + test.skipped and len(data.skipped) == 13
    assert data.to("cpu").skipped == data.skipped


def test_write_skipped_keeps_every_line_escaped_and_writes_nothing_when_none(tmp_path, monkeypatch):
    from common import run

    writes = []
    real = run.atomic_write_text
    monkeypatch.setattr(run, "atomic_write_text", lambda path, text: writes.append(path) or real(path, text))
    run.write_skipped(tmp_path, [])
    assert not list(tmp_path.iterdir()) and not writes
    lines = ["/d/a.jpg: truncated", "/d/b\nskipped 0 files.jpg: not an image", "/d/\x1b[2Jc\udcff.jpg: x"]
    run.write_skipped(tmp_path, lines)
    assert writes == [tmp_path / "skipped_files.txt"]  # atomically: a reader never sees half the list
    assert (tmp_path / "skipped_files.txt").read_text().splitlines() == [
        "/d/a.jpg: truncated", "/d/b\\nskipped 0 files.jpg: not an image", "/d/\\x1b[2Jc\\xff.jpg: x"]


# ----------------------------------------------------------------------------- photos from the wild
def png_claiming(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header (IHDR) claims width x height: a decompression bomb's header in 70 bytes."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    # 8-byte signature, then IHDR: length (4), type (4), width and height (4 + 4, big-endian), 5 more bytes, CRC
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_an_image_over_the_pixel_limit_is_skipped_unread_and_named(photo_root, monkeypatch, capsys):
    (photo_root / "dog" / "bomb.png").write_bytes(png_claiming(30000, 30000))
    loads = recorded_loads(monkeypatch)
    data = load_folder(photo_root, SIZE)
    assert len(data) == 9 and "bomb.png" in skipped_names(data)
    assert (30000, 30000) not in loads  # only its header was read
    (line,) = [x for x in capsys.readouterr().err.splitlines() if "bomb.png" in x]
    assert "30000x30000 px" in line and "over the limit of 89,478,485" in line


def test_max_pixels_sets_the_limit_and_the_cache_follows_it(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    noise(100, 100, 0).save(tmp_path / "a" / "big.png")
    noise(10, 10, 1).save(tmp_path / "a" / "small.png")
    assert len(load_folder(tmp_path, SIZE, max_pixels=100 * 100)) == 2
    limited = load_folder(tmp_path, SIZE, max_pixels=100 * 100 - 1)  # another limit: decoded again
    assert skipped_names(limited) == ["big.png"]
    assert "100x100 px" in capsys.readouterr().err


def test_a_long_thin_image_is_skipped_from_its_header_with_its_aspect_ratio(photo_root, monkeypatch, capsys):
    """1 x 10,000,000 px is under the pixel limit, but squashing it to S x S would hold S x 10,000,000 x 3 bytes
    (6.7 GB at 224 px): refused from the header, before any decode."""
    (photo_root / "dog" / "strip.png").write_bytes(png_claiming(1, 10_000_000))
    loads = recorded_loads(monkeypatch)
    data = load_folder(photo_root, SIZE)
    assert len(data) == 9 and "strip.png" in skipped_names(data)
    assert (1, 10_000_000) not in loads
    (line,) = [x for x in capsys.readouterr().err.splitlines() if "strip.png" in x]
    assert line.endswith("strip.png: 1x10000000 px: aspect ratio 10,000,000:1, over the limit of 20:1")


def test_the_aspect_ratio_limit_is_inclusive_and_per_call(tmp_path):
    noise(60, 3, 0).save(tmp_path / "wide.png")    # 3 x 60 px: exactly 20:1
    noise(61, 3, 1).save(tmp_path / "taller.png")  # 3 x 61 px: 20.3:1
    assert folders.decode_rgb(tmp_path / "wide.png", size=SIZE).shape == (3, SIZE, SIZE)
    with pytest.raises(folders.ImageTooLarge, match=r"^3x61 px: aspect ratio 20.3:1, over the limit of 20:1"):
        folders.decode_rgb(tmp_path / "taller.png", size=SIZE)
    assert folders.decode_rgb(tmp_path / "taller.png", max_aspect=None).shape == (3, 61, 3)
    (tmp_path / "a").mkdir()
    (tmp_path / "taller.png").rename(tmp_path / "a" / "taller.png")
    noise(10, 10, 2).save(tmp_path / "a" / "square.png")
    assert skipped_names(load_folder(tmp_path, SIZE)) == ["taller.png"]
    assert len(load_folder(tmp_path, SIZE, max_aspect=21)) == 2  # another limit: decoded again


@pytest.mark.parametrize("task", ["task_catsdogs", "task_inaturalist"])
def test_max_aspect_is_a_flag_of_train_and_eval_and_eval_keeps_its_own(task):
    """Bad values are one error line; eval.py's limit is its own flag's, whatever the checkpoint saved."""
    import importlib

    from common.evaluation import saved_args

    train, evaluate = (importlib.import_module(f"{task}.{m}").build_parser() for m in ("train", "eval"))
    for parser, needed in ((train, []), (evaluate, ["--checkpoint", "x"])):
        assert parser.parse_args(needed).max_aspect == folders.MAX_ASPECT_RATIO
        for bad in ("0.5", "nan", "inf"):
            with pytest.raises(UserError, match="--max-aspect"):
                parser.parse_args([*needed, "--max-aspect", bad])
    args = evaluate.parse_args(["--checkpoint", "x", "--max-aspect", "4"])
    assert saved_args({"args": {"max_aspect": 1e9, "max_pixels": 10**12}}, args, train).max_aspect == 4


def thin_and_square(root: Path) -> Path:
    """thin/ holds three 3 x 61 px photos (20.3:1), square/ three 10 x 10 ones."""
    for k in range(3):
        for name, (h, w) in (("thin", (61, 3)), ("square", (10, 10))):
            (root / name).mkdir(parents=True, exist_ok=True)
            noise(h, w, k).save(root / name / f"{k}.png")
    return root


def test_the_catsdogs_pool_and_its_re_decoded_originals_follow_max_aspect(tmp_path):
    """load_pool passes the limit on; the train originals, decoded again at full size for the augmentations,
    passed the pool's limit already and are not refused by the default one."""
    from task_catsdogs.data import load_pool, twin_data

    root = thin_and_square(tmp_path / "photos")
    assert len(load_pool("folder", str(root), SIZE).train.skipped) == 3
    pool = load_pool("folder", str(root), SIZE, max_aspect=21)
    assert len(pool.train) == 6 and not pool.train.skipped
    twin = twin_data(pool, 2, 2, 2, SIZE, seed=0, calls=1, per_call=1)
    assert (61, 3) in [(h, w) for w, h in twin.original_sizes]


@pytest.mark.parametrize("error", [
    MemoryError(),
    RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 6720000000 bytes. Error code "
                 "12 (Cannot allocate memory)"),
    Image.DecompressionBombError("Image size (200000000 pixels) exceeds limit"),
    Image.DecompressionBombWarning("Image size (100000000 pixels) exceeds limit"),
    ZeroDivisionError("division by zero"),
])
def test_any_error_decoding_one_file_skips_that_file_only(photo_root, monkeypatch, capsys, error):
    real = folders.decode_rgb

    def failing(path, *args, **kwargs):
        if Path(path).name == "c.bmp":
            raise error
        return real(path, *args, **kwargs)

    monkeypatch.setattr(folders, "decode_rgb", failing)
    data = load_folder(photo_root, SIZE)
    assert len(data) == 8 and "c.bmp" in skipped_names(data)
    (line,) = [x for x in capsys.readouterr().err.splitlines() if "c.bmp" in x]
    assert line.startswith("skipped ") and type(error).__name__ in line


def test_ctrl_c_while_decoding_still_stops_the_load(photo_root, monkeypatch):
    def interrupted(path, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(folders, "decode_rgb", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_folder(photo_root, SIZE, workers=2)


def finishes(fn, fifo: Path, seconds: float = 5):
    """fn()'s result or exception, run in a thread. Had it blocked opening `fifo` past `seconds`, a writer is
    opened and closed to release it (the read then ends at once), and the test fails instead of hanging: a
    worker of a ThreadPoolExecutor left blocked would hang the interpreter's exit."""
    result = {}

    def target():
        try:
            result["value"] = fn()
        except BaseException as e:
            result["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    blocked = thread.is_alive()
    for _ in range(100 if blocked else 0):  # each reader that waits in open() is released by one writer
        with contextlib.suppress(OSError):  # ENXIO: no reader waiting (yet, or any more)
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(0.1)
        if not thread.is_alive():
            break
    assert not blocked, f"blocked opening {fifo}"
    return result


needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")


@needs_fifo
def test_decoding_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "swapped.jpg"
    os.mkfifo(fifo)
    result = finishes(lambda: folders.decode_rgb(fifo, size=SIZE), fifo)
    assert isinstance(result.get("error"), folders.NotARegularFile)
    assert str(result["error"]) == "not a regular file (a FIFO)"


@needs_fifo
def test_a_photo_swapped_for_a_fifo_after_listing_is_skipped_without_blocking(photo_root, monkeypatch, capsys):
    real_list = folders.list_image_folder
    swapped = photo_root / "dog" / "c.bmp"

    def list_then_swap(*args, **kwargs):
        listed = real_list(*args, **kwargs)
        swapped.unlink()
        os.mkfifo(swapped)
        return listed

    monkeypatch.setattr(folders, "list_image_folder", list_then_swap)
    result = finishes(lambda: load_folder(photo_root, SIZE, workers=2), swapped)
    assert "c.bmp" in skipped_names(result["value"])
    (line,) = [x for x in capsys.readouterr().err.splitlines() if "c.bmp" in x]
    assert line.endswith("c.bmp: not a regular file (a FIFO)")


@needs_fifo
def test_links_to_photos_are_followed_and_every_other_link_or_special_file_is_a_skip_line(tmp_path, capsys):
    """The symlink rule (module docstring): a link to a regular file is read; a dangling link, a link loop, a
    FIFO, a link to a device and a link to a folder inside a class folder are each named, never read."""
    elsewhere, root = tmp_path / "elsewhere", tmp_path / "photos"
    (elsewhere / "more").mkdir(parents=True)
    noise(20, 20, 0).save(elsewhere / "x.png")
    noise(20, 20, 1).save(elsewhere / "more" / "y.png")
    cat, dog = root / "cat", root / "dog"
    (cat / "sub").mkdir(parents=True)
    dog.mkdir()
    noise(20, 20, 2).save(cat / "a.png")
    noise(20, 20, 3).save(dog / "a.png")
    (cat / "linked.png").symlink_to(elsewhere / "x.png")
    (cat / "dangling.png").symlink_to(tmp_path / "gone.png")
    (cat / "loop.png").symlink_to("loop.png")
    os.mkfifo(cat / "fifo.png")
    (cat / "null.png").symlink_to(os.devnull)
    (cat / "more").symlink_to(elsewhere / "more")
    (cat / "sub" / "up").symlink_to("..")  # walked, this would list cat/ again, forever
    data = finishes(lambda: load_folder(root, SIZE, workers=2), cat / "fifo.png")["value"]
    assert [Path(p).relative_to(root).as_posix() for p in data.paths] == ["cat/a.png", "cat/linked.png", "dog/a.png"]
    assert torch.equal(data.images[1], folders.decode_rgb(elsewhere / "x.png", size=SIZE))
    assert dict(line.removeprefix(f"{root}/").split(": ", 1) for line in data.skipped) == {
        "cat/dangling.png": "a symbolic link to a file that does not exist",
        "cat/fifo.png": "not a regular file (a FIFO)",
        "cat/loop.png": "Too many levels of symbolic links",
        "cat/more": "a symbolic link to a folder, not followed",
        "cat/null.png": "a symbolic link to a character device, not followed",
        "cat/sub/up": "a symbolic link to a folder, not followed",
    }
    assert capsys.readouterr().err.splitlines()[-1] == f"skipped 6 unreadable files of 9 in {root}"


def test_the_listing_keeps_its_order_and_leaves_hidden_folders_out(tmp_path):
    """Files sort by their path's parts, as before the walk replaced rglob ("a/b" before "a-b", which a string
    sort would swap): the seeded splits and the cache key depend on the order."""
    for name in ("c/a-b.png", "c/a/b.png", "c/B.png", "c/a/.hidden/x.png", "c/.ipynb_checkpoints/y.png", "c/z.PNG"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        noise(8, 8, 0).save(tmp_path / name, "PNG")
    paths, _, _ = folders.list_image_folder(tmp_path)
    assert [Path(p).relative_to(tmp_path).as_posix() for p in paths] == ["c/B.png", "c/a/b.png", "c/a-b.png", "c/z.PNG"]


def test_large_images_are_decoded_one_at_a_time(tmp_path, monkeypatch):
    """The memory bound: above LARGE_PIXELS, one decode at a time, however many threads."""
    (tmp_path / "a").mkdir()
    for i in range(6):
        noise(20, 20, i).save(tmp_path / "a" / f"{i}.png")
    active, most = [0], [0]
    real = folders._as_rgb

    def slow(image):
        active[0] += 1
        most[0] = max(most[0], active[0])
        time.sleep(0.02)  # long enough for the other threads to arrive
        active[0] -= 1
        return real(image)

    monkeypatch.setattr(folders, "_as_rgb", slow)
    monkeypatch.setattr(folders, "LARGE_PIXELS", 20 * 20 - 1)  # every image counts as large
    assert len(load_folder(tmp_path, SIZE, workers=4)) == 6
    assert most[0] == 1


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    (tmp_path / "a").mkdir()
    Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16)).save(tmp_path / "a" / "deep.png")
    image = load_folder(tmp_path, SIZE).images[0]
    assert (image == 40000 >> 8).all()  # 156; PIL's convert("RGB") would clip 40000 to 255


def test_an_animated_gif_gives_its_first_frame(tmp_path):
    (tmp_path / "a").mkdir()
    red, blue = Image.new("RGB", (20, 20), (255, 0, 0)), Image.new("RGB", (20, 20), (0, 0, 255))
    red.save(tmp_path / "a" / "anim.gif", save_all=True, append_images=[blue], duration=100, loop=0)
    image = load_folder(tmp_path, SIZE).images[0].int()
    assert (image[0] > 240).all() and (image[2] < 15).all()


def test_a_palette_png_with_transparency_decodes_without_a_warning(tmp_path):
    (tmp_path / "a").mkdir()
    noise(10, 10, 0).convert("P").save(tmp_path / "a" / "p.png", transparency=bytes(range(256)))
    assert len(load_folder(tmp_path, SIZE)) == 1  # a warning would fail the test (pytestmark)


def test_a_phones_multi_picture_jpeg_decodes(tmp_path):
    (tmp_path / "a").mkdir()
    noise(40, 30, 0).save(tmp_path / "a" / "mpo.jpg", "MPO", save_all=True, append_images=[noise(40, 30, 1)])
    with Image.open(tmp_path / "a" / "mpo.jpg") as written:
        assert written.format == "MPO"
    assert len(load_folder(tmp_path, SIZE)) == 1


def exif_rotated_jpeg(path: Path, size=(60, 30)) -> None:
    """Stored sideways, left half red and right half blue, with EXIF orientation 6 (rotate 90 degrees
    clockwise to display): upright, red is on top."""
    stored = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    stored[:, : size[0] // 2] = (255, 0, 0)
    stored[:, size[0] // 2:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    Image.fromarray(stored).save(path, "JPEG", quality=95, exif=exif)


def test_a_rotated_exif_jpeg_comes_out_upright(tmp_path):
    exif_rotated_jpeg(tmp_path / "phone.jpg")
    full = folders.decode_rgb(tmp_path / "phone.jpg").int()
    assert full.shape == (3, 60, 30)  # portrait, as shot
    small = folders.decode_rgb(tmp_path / "phone.jpg", size=SIZE).int()
    for image in (full, small):
        h = image.shape[1]
        assert (image[0, : h // 2 - 2] > 200).all() and (image[2, : h // 2 - 2] < 60).all()  # red on top
        assert (image[2, h // 2 + 2:] > 200).all() and (image[0, h // 2 + 2:] < 60).all()  # blue below


def test_a_large_jpeg_is_decoded_at_reduced_scale_and_looks_the_same(tmp_path, monkeypatch):
    path = tmp_path / "big.jpg"
    noise(30, 40, 0).resize((1600, 1200), Image.BILINEAR).save(path, "JPEG", quality=90)
    decoded_sizes = []
    real = folders._as_rgb
    monkeypatch.setattr(folders, "_as_rgb", lambda image: decoded_sizes.append(image.size) or real(image))
    small = folders.decode_rgb(path, size=SIZE)
    assert decoded_sizes == [(200, 150)]  # 1/8 scale: both sides still >= 32
    whole = folders.decode_rgb(path)
    reference = torch.from_numpy(np.array(Image.fromarray(whole.permute(1, 2, 0).numpy())
                                          .resize((SIZE, SIZE), Image.BILINEAR))).permute(2, 0, 1)
    assert (small.float() - reference.float()).abs().mean() < 2  # out of 255


# ----------------------------------------------------------------------------- the user's mistakes
def test_missing_root_is_one_error_line(tmp_path):
    with pytest.raises(UserError, match="does not exist") as e:
        load_folder(tmp_path / "nowhere")
    assert "\n" not in str(e.value)


def test_no_class_folders_is_one_error_line(tmp_path):
    noise(10, 10, 0).save(tmp_path / "loose.jpg")
    (tmp_path / ".cache").mkdir()  # hidden folders are not classes
    with pytest.raises(UserError, match="has no class folders") as e:
        load_folder(tmp_path)
    assert "\n" not in str(e.value)


def test_empty_class_folder_is_one_error_line(photo_root):
    (photo_root / "bird").mkdir()
    (photo_root / "bird" / "readme.txt").write_text("no photos yet")
    with pytest.raises(UserError, match=r"class folder .*bird has no images") as e:
        load_folder(photo_root, SIZE)
    assert "\n" not in str(e.value)


def test_a_class_missing_from_the_test_folder_is_one_error_line(photo_root, tmp_path):
    test_root = tmp_path / "test"
    (test_root / "cat").mkdir(parents=True)
    noise(20, 20, 9).save(test_root / "cat" / "x.jpg")
    train = load_folder(photo_root, SIZE)
    with pytest.raises(UserError, match="has no folder for class dog") as e:
        load_folder(test_root, SIZE, classes=train.classes)
    assert "\n" not in str(e.value)
    (test_root / "dog").mkdir()
    noise(20, 20, 10).save(test_root / "dog" / "y.png")
    test = load_folder(test_root, SIZE, classes=["dog", "cat"])  # the train split's order sets the labels
    assert {Path(p).name: y for p, y in zip(test.paths, test.labels.tolist())} == {"x.jpg": 1, "y.png": 0}


# ----------------------------------------------------------------------------- cache
def test_second_load_reads_the_cache_and_decodes_nothing(photo_root, tmp_path, monkeypatch, capsys):
    first = load_folder(photo_root, SIZE, cache_dir=tmp_path / "cache")
    capsys.readouterr()

    def refuse(path, *args, **kwargs):
        raise AssertionError(f"decoded {path} although the cache is fresh")

    monkeypatch.setattr(folders, "decode_rgb", refuse)
    second = load_folder(photo_root, SIZE, cache_dir=tmp_path / "cache")
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    assert (first.paths, first.skipped, first.classes) == (second.paths, second.skipped, second.classes)
    assert "skipped 2 unreadable files of 11" in capsys.readouterr().err  # the report is repeated on a hit
    assert len(list((tmp_path / "cache").iterdir())) == 1


def touch_later(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


def rewrite_same_mtime(path: Path) -> None:
    st = path.stat()
    noise(40, 50, 99).save(path)  # other pixels, another size in bytes
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("change", ["mtime", "size", "added", "removed", "image_size"])
def test_a_changed_folder_or_image_size_misses_the_cache(photo_root, monkeypatch, change):
    load_folder(photo_root, SIZE)
    calls = counting_decoder(monkeypatch)
    size = SIZE
    if change == "mtime":
        touch_later(photo_root / "cat" / "a.jpg")
    elif change == "size":
        before = (photo_root / "cat" / "a.jpg").stat().st_size
        rewrite_same_mtime(photo_root / "cat" / "a.jpg")
        assert (photo_root / "cat" / "a.jpg").stat().st_size != before
    elif change == "added":
        noise(20, 20, 11).save(photo_root / "dog" / "new.png")
    elif change == "removed":
        (photo_root / "dog" / "a.jpg").unlink()
    else:
        size = SIZE + 8
    data = load_folder(photo_root, size)
    assert len(calls) > 0
    assert len(data) == {"added": 10, "removed": 8}.get(change, 9) and data.images.shape[-1] == size
    assert len(list((photo_root / ".cache").glob(f"photos-{size}px-*.pt"))) == 1  # the stale one is gone
    assert not list((photo_root / ".cache").glob(".*"))  # no temporary file left behind


def test_an_unreadable_cache_file_is_rebuilt(photo_root, capsys):
    load_folder(photo_root, SIZE)
    (cache_file,) = (photo_root / ".cache").iterdir()
    cache_file.write_bytes(b"garbage")
    data = load_folder(photo_root, SIZE)
    assert len(data) == 9 and "unreadable" in capsys.readouterr().err
    assert torch.load(cache_file, weights_only=True)["images"].shape == (9, 3, SIZE, SIZE)


# ----------------------------------------------------------------------------- Oxford-IIIT Pet
@pytest.fixture
def pets_dir(tmp_path) -> Path:
    """torchvision's layout: oxford-iiit-pet/images/*.jpg and annotations/{trainval,test}.txt, whose lines
    are `<image id> <breed id> <species: 1 cat, 2 dog> <breed id within species>`."""
    base = tmp_path / "oxford-iiit-pet"
    (base / "images").mkdir(parents=True)
    (base / "annotations").mkdir()
    rows = {"trainval": [("Abyssinian_1", 1, 1, 1), ("Abyssinian_2", 1, 1, 1), ("beagle_1", 2, 2, 1),
                         ("beagle_2", 2, 2, 1), ("beagle_3", 2, 2, 1)],
            "test": [("Abyssinian_3", 1, 1, 1), ("beagle_4", 2, 2, 1)]}
    for split, lines in rows.items():
        (base / "annotations" / f"{split}.txt").write_text("".join(" ".join(map(str, r)) + "\n" for r in lines))
        for k, (image_id, *_) in enumerate(lines):
            noise(30 + k, 40, k).save(base / "images" / f"{image_id}.jpg")
    Image.new("CMYK", (20, 20), CMYK).save(base / "images" / "Abyssinian_2.jpg")  # as in the real set
    return tmp_path


def test_oxford_pets_through_torchvisions_file_list(pets_dir):
    trainval = load_oxford_pets(pets_dir, "trainval", SIZE)
    assert trainval.classes == ["cat", "dog"]
    assert [Path(p).stem for p in trainval.paths] == ["Abyssinian_1", "Abyssinian_2", "beagle_1", "beagle_2",
                                                      "beagle_3"]
    assert trainval.labels.tolist() == [0, 0, 1, 1, 1]
    assert trainval.images.shape == (5, 3, SIZE, SIZE) and trainval.images.dtype == torch.uint8
    test = load_oxford_pets(pets_dir, "test", SIZE)
    assert test.labels.tolist() == [0, 1] and len(list((pets_dir / "oxford-iiit-pet" / ".cache").iterdir())) == 2


def test_oxford_pets_offline_and_absent_says_what_to_download_and_where(tmp_path, offline, monkeypatch):
    import torchvision.datasets.oxford_iiit_pet as tv_pets

    def refuse(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(tv_pets, "download_and_extract_archive", refuse)
    with pytest.raises(UserError) as e:
        load_oxford_pets(tmp_path, "trainval", SIZE)
    message = str(e.value)
    assert "\n" not in message
    for part in ("https://www.robots.ox.ac.uk/~vgg/data/pets/", "images.tar.gz", "annotations.tar.gz",
                 str(tmp_path / "oxford-iiit-pet")):
        assert part in message


# ----------------------------------------------------------------------------- splits
def test_stratified_split_keeps_class_proportions_and_is_disjoint():
    labels = torch.tensor([0] * 60 + [1] * 30 + [2] * 10 + [3])[torch.randperm(101, generator=torch.Generator()
                                                                                 .manual_seed(0))]
    train, val = stratified_split(labels, 0.2, seed=3)
    assert torch.bincount(labels[val], minlength=4).tolist() == [12, 6, 2, 0]
    # 0.9 of the lone image would round up to 1: it stays in train, so every class can be learnt
    assert torch.bincount(labels[stratified_split(labels, 0.9, seed=3)[1]], minlength=4).tolist() == [54, 27, 9, 0]
    assert len(set(train.tolist()) & set(val.tolist())) == 0
    assert sorted(train.tolist() + val.tolist()) == list(range(101))
    again = stratified_split(labels, 0.2, seed=3)
    assert torch.equal(again[1], val) and not torch.equal(stratified_split(labels, 0.2, seed=4)[1], val)


def test_channel_mean_std_in_chunks_matches_the_whole_tensor():
    x = torch.randint(0, 256, (10, 3, 5, 7), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    mean, std = channel_mean_std(x, chunk=3)
    pixels = x.float() / 255
    torch.testing.assert_close(torch.tensor(mean), pixels.mean(dim=(0, 2, 3)), atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.tensor(std), pixels.std(dim=(0, 2, 3)), atol=1e-6, rtol=0)


def fake_folder_images(counts: list[int], seed: int) -> folders.FolderImages:
    g = torch.Generator().manual_seed(seed)
    labels = torch.cat([torch.full((n,), k) for k, n in enumerate(counts)])
    images = torch.randint(0, 256, (len(labels), 3, 4, 4), dtype=torch.uint8, generator=g)
    return folders.FolderImages(images, labels, ["a", "b"], [f"f{i}.jpg" for i in range(len(labels))], [])


def test_image_data_from_folders_takes_a_stratified_val_split_out_of_train():
    train, test = fake_folder_images([80, 40], 0), fake_folder_images([10, 20], 1)
    data = image_data_from_folders("pets", train, test, val_size=30, seed=1)
    assert (len(data.train), len(data.val), len(data.test)) == (90, 30, 30)
    assert torch.bincount(data.val.labels).tolist() == [20, 10]
    assert not set(data.train.index.tolist()) & set(data.val.index.tolist())
    assert torch.equal(data.val.images, train.images[data.val.index])  # index points into train.paths
    assert data.mean == channel_mean_std(data.train.images)[0] and data.classes == ["a", "b"]
    small = image_data_from_folders("pets", train, test, val_size=30, subset=40, seed=1)
    assert (len(small.train) + len(small.val), len(small.val), len(small.test)) == (40, 4, 30)
    assert torch.bincount(small.val.labels).tolist() == [3, 1]  # 27 + 13 in the pool: 2.7 and 1.3 rounded
    with pytest.raises(UserError, match="classes"):
        image_data_from_folders("pets", train, folders.FolderImages(test.images, test.labels, ["b", "a"],
                                                                    test.paths, []))
