"""The iNaturalist-12K subset of the course (10 classes), and the stand-ins that tests and checks use.

- Source: nature_12K.zip (INAT_URL) unpacks to inaturalist_12K/train/<class>/ and inaturalist_12K/val/<class>/.
  `python task_inaturalist/data.py --data-dir data` (make inaturalist-data) downloads and unpacks it; a
  zip already in --data-dir is unpacked by the first training run. Offline and absent: one line saying
  where to put the zip.
- Splits: val/ is the *test* set, as in the course; a seeded, stratified --val-fraction (20%) of train/
  is the validation split, taken in memory (no file moves).
- Photos are decoded once and cached per --image-size by common.folders (hidden files such as .DS_Store,
  other extensions and unreadable files are skipped and counted there).

`--dataset folder --data-dir PATH` takes any folder with the same layout (PATH/train/<class>/,
PATH/val/<class>/ or PATH/test/<class>/); `fashion-mnist` and `synthetic` are the 32 px arrays of
common.data, resized once to --image-size, for learning checks and smoke runs.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

if __package__ in (None, ""):  # `python task_inaturalist/data.py` without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.nn.functional as F

from common.cli import Parser, run_main
from common.data import ImageData, Split, load_data
from common.errors import UserError
from common.folders import image_data_from_folders, load_folder

DATASETS = ("inaturalist", "folder", "fashion-mnist", "synthetic")
INAT_URL = "https://storage.googleapis.com/wandb_datasets/nature_12K.zip"
INAT_ZIP = "nature_12K.zip"
INAT_DIR = "inaturalist_12K"
INAT_CLASSES = ("Amphibia", "Animalia", "Arachnida", "Aves", "Fungi", "Insecta", "Mammalia", "Mollusca",
                "Plantae", "Reptilia")
TEST_FOLDERS = ("val", "test")  # the held-out folder: the course's val/ is our test set


def _layout_root(path: Path) -> Path | None:
    """`path` or `path/inaturalist_12K` if it has train/ and a test folder (val/ or test/)."""
    for root in (path / INAT_DIR, path):
        if (root / "train").is_dir() and any((root / t).is_dir() for t in TEST_FOLDERS):
            return root
    return None


def unpack(zip_path: Path, dest: Path) -> Path:
    """Unpack the iNaturalist zip into dest/inaturalist_12K, atomically: into a temporary folder next to it,
    then renamed, so an interrupted unpack never looks like a complete dataset. Returns the dataset root."""
    target = dest / INAT_DIR
    try:
        with zipfile.ZipFile(zip_path) as archive:
            names = [n for n in archive.namelist() if not n.startswith("__MACOSX/")]
            bad = [n for n in names if PurePosixPath(n).is_absolute() or ".." in PurePosixPath(n).parts]
            if bad:
                raise UserError(f"{zip_path} has unsafe paths (e.g. {bad[0]}): not unpacked")
            tops = {PurePosixPath(n).parts[0] for n in names if PurePosixPath(n).parts}
            if tops != {INAT_DIR}:
                raise UserError(f"{zip_path} is not {INAT_ZIP}: it should hold one folder {INAT_DIR}/ with train/ "
                                f"and val/, not {', '.join(sorted(tops)) or 'nothing'}")
            print(f"unpacking {zip_path} ({len(names)} entries) into {target}", flush=True)
            with tempfile.TemporaryDirectory(dir=dest, prefix=".unpacking-") as tmp:
                archive.extractall(tmp, members=names)
                (Path(tmp) / INAT_DIR).rename(target)
    except zipfile.BadZipFile:
        raise UserError(f"{zip_path} is not a readable zip (an interrupted download?): delete it and download "
                        f"{INAT_URL} again") from None
    root = _layout_root(dest)
    if root is None:
        raise UserError(f"{zip_path} unpacked to {target}, but it has no train/ and val/ folders")
    return root


def find_inaturalist(data_dir: str | Path) -> Path:
    """The dataset root (with train/ and val/) in data_dir, unpacking data_dir/nature_12K.zip if that is
    all there is; one error line saying what to download and where to put it if neither is there."""
    data_dir = Path(data_dir)
    root = _layout_root(data_dir)
    if root is not None:
        return root
    if (data_dir / INAT_ZIP).is_file():
        return unpack(data_dir / INAT_ZIP, data_dir)
    raise UserError(f"iNaturalist-12K not found in {data_dir}: download {INAT_URL} (about 3.6 GB) and put it at "
                    f"{data_dir / INAT_ZIP} (or run `make inaturalist-data` when online)")


def download(data_dir: str | Path, url: str = INAT_URL) -> Path:
    """Download the zip into data_dir (through a .part file, renamed when complete) and unpack it."""
    data_dir = Path(data_dir)
    root = _layout_root(data_dir)
    if root is not None:
        print(f"iNaturalist-12K is already in {root}", flush=True)
        return root
    data_dir.mkdir(parents=True, exist_ok=True)
    zip_path = data_dir / INAT_ZIP
    if not zip_path.is_file():
        part = zip_path.with_suffix(".zip.part")
        print(f"downloading {url} to {zip_path}", flush=True)
        try:
            with urllib.request.urlopen(url, timeout=30) as response, part.open("wb") as f:
                shutil.copyfileobj(response, f, length=1 << 20)
        except OSError as e:  # URLError, timeouts, a full disk
            part.unlink(missing_ok=True)
            raise UserError(f"could not download {url} ({type(e).__name__}): download it yourself and put it at "
                            f"{zip_path}, then run this again") from None
        part.rename(zip_path)
    return unpack(zip_path, data_dir)


def _resized(split: Split, size: int) -> Split:
    """A uint8 split resized once (bilinear, antialiased) to size x size, in chunks."""
    if split.images.shape[-1] == size:
        return split
    chunks = [F.interpolate(split.images[i:i + 1024].float(), size=(size, size), mode="bilinear",
                            antialias=True, align_corners=False).round().clamp(0, 255).to(torch.uint8)
              for i in range(0, len(split), 1024)]
    return Split(torch.cat(chunks), split.labels, split.index)


def load(dataset: str, data_dir: str, image_size: int, *, val_fraction: float = 0.2, subset: int | None = None,
         seed: int = 0) -> ImageData:
    """The train / validation / test ImageData (uint8 on the CPU) of `dataset` at image_size x image_size."""
    if not 0 < val_fraction < 1:
        raise UserError(f"--val-fraction must be strictly between 0 and 1, got {val_fraction}")
    if dataset in ("inaturalist", "folder"):
        if dataset == "inaturalist":
            root = find_inaturalist(data_dir)
        else:
            root = _layout_root(Path(data_dir))
            if root is None:
                raise UserError(f"{data_dir} needs the iNaturalist layout: {data_dir}/train/<class>/ and "
                                f"{data_dir}/val/<class>/ (or test/<class>/)")
        test_dir = next(root / t for t in TEST_FOLDERS if (root / t).is_dir())
        train = load_folder(root / "train", image_size)
        test = load_folder(test_dir, image_size, classes=train.classes)
        name = "iNaturalist-12K" if dataset == "inaturalist" else root.resolve().name
        return image_data_from_folders(name, train, test, val_fraction=val_fraction, subset=subset, seed=seed)
    if dataset in ("fashion-mnist", "synthetic"):
        data = load_data(dataset, data_dir, val_fraction=val_fraction, subset=subset, seed=seed)
        return ImageData(data.name, data.classes, _resized(data.train, image_size), _resized(data.val, image_size),
                         _resized(data.test, image_size), data.mean, data.std)
    raise UserError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")


# ----------------------------------------------------------------------------- make inaturalist-data
def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="task_inaturalist/data.py", description="download and unpack iNaturalist-12K (nature_12K.zip)",
               formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data-dir", default="data", help="the zip goes here and unpacks to DATA_DIR/inaturalist_12K/")
    p.add_argument("--url", default=INAT_URL)
    return p


def run(args: argparse.Namespace) -> int:
    root = download(args.data_dir, args.url)
    counts = {c.name: sum(1 for _ in c.iterdir()) for c in sorted((root / "train").iterdir()) if c.is_dir()}
    print(f"iNaturalist-12K ready in {root}: train/ has {sum(counts.values())} files in {len(counts)} classes",
          flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
