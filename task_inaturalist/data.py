"""The iNaturalist-12K subset of the course (10 classes), and the stand-ins that tests and checks use.

- Source: nature_12K.zip (INAT_URL) unpacks to inaturalist_12K/train/<class>/ and inaturalist_12K/val/<class>/.
  `python task_inaturalist/data.py --data-dir data` (make inaturalist-data) downloads and unpacks it; a
  zip already in --data-dir is unpacked by the first training run. Offline and absent: one line saying
  where to put the zip. The download goes through a .part file that a later run resumes (HTTP Range) after
  a dropped connection or Ctrl-C; the zip is checked before it is unpacked, atomically (see unpack).
  A user:password in the URL is sent as basic auth to that origin only (CredentialsStayHome: a redirect to
  another scheme, host or port drops it; one from https to anything else is refused), and every printed URL
  goes through common.secrets.hide_url, without its query (shown_url).
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
import base64
import http.client
import shutil
import signal
import struct
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath

if __package__ in (None, ""):  # `python task_inaturalist/data.py` without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.nn.functional as F

from common.cli import Parser, run_main
from common.data import ImageData, Split, load_data
from common.errors import Interrupted, UserError
from common.folders import MAX_ASPECT_RATIO, MAX_PIXELS, image_data_from_folders, load_folder
from common.secrets import hide_url
from common.text import printable

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


# The real zip is 3.6 GB of JPEGs (they barely compress) unpacking to about 3.9 GB. A zip declaring more than
# this, or more than this many times its own size, is refused before a byte is written: a zip bomb. zipfile
# stops each entry at its declared size, so the declared total bounds what unpacking writes.
MAX_UNPACKED_BYTES = 20 * 2**30
MAX_COMPRESSION_RATIO = 100
READABLE_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
# The real zip has about 12,000 photos (twice the entries if each has a macOS shadow in __MACOSX/). ZipFile reads the
# whole central directory into memory and makes an object per entry before anything can be checked, so the count
# and the directory's size, as the zip's end record declares them, are checked first: a 3.6 GB zip could otherwise
# declare 78 million empty entries (46 bytes each), gigabytes of objects. The count is checked again on what
# ZipFile read (an end record can lie; the size bounds that read at MAX_ZIP_ENTRIES x 512 bytes).
MAX_ZIP_ENTRIES = 50_000
MAX_CENTRAL_DIRECTORY_BYTES = MAX_ZIP_ENTRIES * 512


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB"


def _class_folders(names: list[str], split: str) -> set[str]:
    """The class folders under inaturalist_12K/<split>/ named in the zip (not the files directly in it)."""
    paths = [PurePosixPath(n) for n in names]
    return {p.parts[2] for p, n in zip(paths, names)
            if len(p.parts) >= 3 and p.parts[1] == split and (len(p.parts) > 3 or n.endswith("/"))}


def _declared_directory(zip_path: Path) -> tuple[int, int] | None:
    """(entries, central directory bytes) as the zip's end record declares them (its zip64 record's when the
    classic one is full), read from the file's last 64 kB as zipfile finds it; None without an end record
    (zipfile then says it is not a zip)."""
    with open(zip_path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - (22 + 0xFFFF)))  # the end record (22 bytes) and a comment of up to 64 kB
        tail = f.read()
        i = tail.rfind(b"PK\x05\x06")
        if i < 0 or len(tail) - i < 22:
            return None
        entries, directory = struct.unpack_from("<HI", tail, i + 10)
        if (entries == 0xFFFF or directory == 0xFFFFFFFF) and i >= 20 and tail[i - 20:i - 16] == b"PK\x06\x07":
            f.seek(struct.unpack_from("<Q", tail, i - 12)[0])  # the zip64 locator gives its end record's offset
            record = f.read(56)
            if len(record) == 56 and record[:4] == b"PK\x06\x06":
                entries, directory = struct.unpack_from("<QQ", record, 32)
    return entries, directory


def _too_many_entries(zip_path: Path, entries: int) -> UserError:
    return UserError(f"{zip_path} has {entries:,} entries, over the limit of {MAX_ZIP_ENTRIES:,} ({INAT_ZIP} holds "
                     f"about 12,000 photos): not unpacked")


def _check_directory(zip_path: Path) -> None:
    """Refuse, before zipfile reads it, a central directory of more than MAX_ZIP_ENTRIES entries or bytes."""
    declared = _declared_directory(zip_path)
    if declared is None:
        return
    entries, directory = declared
    if entries > MAX_ZIP_ENTRIES:
        raise _too_many_entries(zip_path, entries)
    if directory > MAX_CENTRAL_DIRECTORY_BYTES:
        raise UserError(f"{zip_path} has a central directory of {directory:,} bytes, over the limit of "
                        f"{MAX_CENTRAL_DIRECTORY_BYTES:,} ({MAX_ZIP_ENTRIES:,} entries of 512 bytes): not unpacked")


def _check_zip(zip_path: Path, entries: list[zipfile.ZipInfo]) -> int:
    """Refuse, in one line, a zip that is not the dataset or cannot be unpacked safely; returns the bytes it
    unpacks to. The CRCs are checked while unpacking (zipfile does), not in a separate pass over 3.6 GB. Entry
    names are data, whoever made the zip: each goes through printable, so the error stays one line and no
    escape sequence in a name reaches the terminal."""
    names = [e.filename for e in entries]
    bad = [n for n in names if PurePosixPath(n).is_absolute() or ".." in PurePosixPath(n).parts]
    if bad:
        raise UserError(f"{zip_path} has unsafe paths (e.g. {printable(bad[0])}): not unpacked")
    tops = {PurePosixPath(n).parts[0] for n in names if PurePosixPath(n).parts}
    if tops != {INAT_DIR}:
        raise UserError(f"{zip_path} is not {INAT_ZIP}: it should hold one folder {INAT_DIR}/ with train/ "
                        f"and val/, not {', '.join(printable(t) for t in sorted(tops)) or 'nothing'}")
    train, val = _class_folders(names, "train"), _class_folders(names, "val")
    if len(train) != len(INAT_CLASSES) or train != val:
        raise UserError(f"{zip_path} is not {INAT_ZIP}: {INAT_DIR}/train/ and val/ should hold the same "
                        f"{len(INAT_CLASSES)} class folders, not {len(train)} and {len(val)}")
    encrypted = [e.filename for e in entries if e.flag_bits & 0x1]
    if encrypted:
        raise UserError(f"{zip_path} has encrypted entries (e.g. {printable(encrypted[0])}): not unpacked; "
                        f"{INAT_ZIP} has none")
    odd = [e for e in entries if e.compress_type not in READABLE_METHODS]
    if odd:
        raise UserError(f"{zip_path} uses a compression method Python cannot read (method {odd[0].compress_type}, "
                        f"in {printable(odd[0].filename)}): unpack it with another tool into "
                        f"{zip_path.parent / INAT_DIR}")
    total = sum(e.file_size for e in entries)
    if total > MAX_UNPACKED_BYTES or total > MAX_COMPRESSION_RATIO * zip_path.stat().st_size:
        raise UserError(f"{zip_path} would unpack to {_gb(total)} from {_gb(zip_path.stat().st_size)} (a zip "
                        f"bomb?): not unpacked; {INAT_ZIP} unpacks to about 3.9 GB")
    free = shutil.disk_usage(zip_path.parent).free
    if total > free:
        raise UserError(f"unpacking {zip_path} needs {_gb(total)}, and {zip_path.parent} has {_gb(free)} free: "
                        f"free some space and run this again")
    return total


def unpack(zip_path: Path, dest: Path) -> Path:
    """Unpack the iNaturalist zip into dest/inaturalist_12K, atomically: checked first (_check_directory before
    zipfile reads the central directory, _check_zip after), then
    unpacked into a temporary folder next to it and renamed, so a failed or interrupted unpack leaves nothing
    that looks like a dataset. Every failure is one UserError line. Returns the dataset root."""
    target = dest / INAT_DIR
    if target.exists():  # callers unpack only when no complete layout is there: this one is partial or foreign
        raise UserError(f"{target} exists but has no train/ and val/ folders (a partial copy?): move or delete "
                        f"it, then run this again to unpack {zip_path}")
    try:
        _check_directory(zip_path)
        with zipfile.ZipFile(zip_path) as archive:
            if len(archive.infolist()) > MAX_ZIP_ENTRIES:  # its end record declared fewer
                raise _too_many_entries(zip_path, len(archive.infolist()))
            entries = [e for e in archive.infolist() if not e.filename.startswith("__MACOSX/")]
            total = _check_zip(zip_path, entries)
            print(f"unpacking {zip_path} ({len(entries)} entries, {_gb(total)}) into {target}", flush=True)
            with tempfile.TemporaryDirectory(dir=dest, prefix=".unpacking-") as tmp:
                archive.extractall(tmp, members=entries)
                (Path(tmp) / INAT_DIR).rename(target)
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:  # not a zip, a bad CRC, a damaged stream
        raise UserError(f"{zip_path} is not a readable zip ({_reason(e)}; an interrupted download?): delete it "
                        f"and download {INAT_URL} again") from None
    except OSError as e:  # a full disk, no permission: the temporary folder is gone with what it held
        raise UserError(f"could not unpack {zip_path} into {dest} ({_reason(e)}); nothing was kept: fix that and "
                        f"run this again") from None
    except KeyboardInterrupt:
        raise Interrupted(signal.SIGINT, detail=f"Ctrl-C while unpacking {zip_path}; nothing was kept: run this "
                                                f"again") from None
    return target


def _reason(e: BaseException) -> str:
    """An exception as a few words: its strerror (an OSError) or its first line, else its type; printable, as
    zipfile's messages may quote an entry's name."""
    text = getattr(e, "strerror", None) or (str(e).splitlines() or [""])[0]
    return printable(text) if text else type(e).__name__


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


def shown_url(url: str) -> str:
    """The URL as printed: through common.secrets.hide_url (the password hidden, whatever it holds), without its
    query and fragment, where a signed URL's signature or token (credentials hide_url cannot recognise) lives."""
    return hide_url(url.split("?", 1)[0].split("#", 1)[0])


def _origin(parts: urllib.parse.SplitResult) -> tuple:
    """(scheme, host, port), the port made explicit; a port that does not parse makes an origin of its own."""
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        port = parts.netloc
    return parts.scheme, (parts.hostname or "").lower(), port


class CredentialsStayHome(urllib.request.HTTPRedirectHandler):
    """Redirects that keep the credentials with the server they were given for. urllib's own handler copies every
    header to the new URL, Authorization included, so a server (or whoever answers for it) could hand the
    password to any host it names. Here the Authorization header follows a redirect only to the same origin
    (scheme, host, port), and a redirect from https to anything else is refused in one line: the download, and
    any credentials, would travel unencrypted."""

    def redirect_request(self, req: urllib.request.Request, fp, code: int, msg: str, headers,
                         newurl: str) -> urllib.request.Request | None:
        old, new = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
        if old.scheme == "https" and new.scheme != "https":
            raise UserError(f"{shown_url(req.full_url)} redirects to {shown_url(newurl)}, from https to "
                            f"{printable(new.scheme) or 'no scheme'}: refused, as the download would travel "
                            f"unencrypted")
        redirected = super().redirect_request(req, fp, code, msg, headers, newurl)
        if redirected is not None and _origin(old) != _origin(new):
            redirected.remove_header("Authorization")
        return redirected


def _request(url: str, start: int) -> urllib.request.Request:
    """A GET from byte `start` on (a Range request when resuming); user:password in the URL is sent as basic
    auth, as urllib does not."""
    parts = urllib.parse.urlsplit(url)
    headers = {"Range": f"bytes={start}-"} if start else {}
    if parts.username is not None:
        user = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(user.encode()).decode()
    return urllib.request.Request(urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])),
                                  headers=headers)


def fetch(url: str, part: Path) -> None:
    """Download url into `part`, continuing what it already holds: a Range request, and a fresh start if the
    server answers with the whole file (200) instead. A transfer that ends before Content-Length (http.client
    then just reads nothing), a dropped connection or Ctrl-C keeps `part` for the next run to resume."""
    have = part.stat().st_size if part.exists() else 0
    expected = None
    try:
        opener = urllib.request.build_opener(CredentialsStayHome)  # replaces urllib's redirect handler
        with opener.open(_request(url, have), timeout=30) as response:
            resumed = getattr(response, "status", None) == 206  # file:// has no status; 200: the whole file
            if resumed and not response.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
                raise UserError(f"{shown_url(url)} sent another part than the bytes {have}- asked for: delete "
                                f"{part} and run this again")
            start = have if resumed else 0
            length = response.headers.get("Content-Length")
            expected = start + int(length) if length is not None else None
            print(f"downloading {shown_url(url)} to {part}" + (f", resuming at {_gb(start)}" if resumed else "")
                  + (f" ({_gb(expected)})" if expected is not None else ""), flush=True)
            with part.open("ab" if resumed else "wb") as f:
                shutil.copyfileobj(response, f, length=1 << 20)
    except urllib.error.HTTPError as e:
        if e.code == 416 and e.headers.get("Content-Range") == f"bytes */{have}":
            return  # the .part already holds the whole file (stopped between the last byte and the rename)
        if e.code == 416:
            raise UserError(f"{part} is longer than {shown_url(url)}: delete it and run this again") from None
        raise UserError(f"could not download {shown_url(url)} (HTTP {e.code}): download it yourself and put it at "
                        f"{part.with_suffix('')}, then run this again") from None
    except (OSError, ValueError, http.client.HTTPException) as e:  # URLError, timeouts, a reset connection, a
        # full disk, an unknown URL scheme; the type only: messages may quote the URL and its secrets
        kept = f"{part} ({_gb(part.stat().st_size)}) is kept, and running this again resumes it, or " \
            if part.exists() and part.stat().st_size else ""
        raise UserError(f"could not download {shown_url(url)} ({type(e).__name__}): {kept}download it yourself "
                        f"and put it at {part.with_suffix('')}, then run this again") from None
    except KeyboardInterrupt:
        kept = f": {part} is kept, and running this again resumes it" if part.exists() else ""
        raise Interrupted(signal.SIGINT, detail=f"Ctrl-C while downloading{kept}") from None
    got = part.stat().st_size
    if expected is not None and got != expected:
        raise UserError(f"the download of {shown_url(url)} ended early ({got} of {expected} bytes): {part} is "
                        f"kept, and running this again resumes it")


def download(data_dir: str | Path, url: str = INAT_URL) -> Path:
    """Download the zip into data_dir (through a .part file, resumed if there, renamed when complete) and
    unpack it."""
    data_dir = Path(data_dir)
    root = _layout_root(data_dir)
    if root is not None:
        print(f"iNaturalist-12K is already in {root}", flush=True)
        return root
    data_dir.mkdir(parents=True, exist_ok=True)
    zip_path = data_dir / INAT_ZIP
    if not zip_path.is_file():
        part = zip_path.with_suffix(".zip.part")
        fetch(url, part)
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
         seed: int = 0, max_pixels: int | None = MAX_PIXELS, max_aspect: float | None = MAX_ASPECT_RATIO) -> ImageData:
    """The train / validation / test ImageData (uint8 on the CPU) of `dataset` at image_size x image_size (a photo
    of more than `max_pixels` pixels, or longer than `max_aspect` times its width, is skipped and named)."""
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
        train = load_folder(root / "train", image_size, max_pixels=max_pixels, max_aspect=max_aspect)
        test = load_folder(test_dir, image_size, classes=train.classes, max_pixels=max_pixels, max_aspect=max_aspect)
        name = "iNaturalist-12K" if dataset == "inaturalist" else root.resolve().name
        return image_data_from_folders(name, train, test, val_fraction=val_fraction, subset=subset, seed=seed)
    if dataset in ("fashion-mnist", "synthetic"):
        data = load_data(dataset, data_dir, val_fraction=val_fraction, subset=subset, seed=seed)
        return ImageData(data.name, data.classes, _resized(data.train, image_size), _resized(data.val, image_size),
                         _resized(data.test, image_size), data.mean, data.std)
    raise UserError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")


# ----------------------------------------------------------------------------- make inaturalist-data
def load_like(saved, data_dir: str) -> ImageData:
    """The data a run with these saved args (a checkpoint's) loaded, from `data_dir`, under eval.py's own limits
    (common.evaluation.saved_args puts them in `saved`)."""
    return load(saved.dataset, data_dir, saved.image_size, val_fraction=saved.val_fraction, subset=saved.subset,
                seed=saved.seed, max_pixels=saved.max_pixels, max_aspect=saved.max_aspect)


def load_on_device(args: argparse.Namespace, device: torch.device) -> ImageData:
    """The dataset of the flags, decoded once, moved to the device; one error line if it does not fit there."""
    data = load(args.dataset, args.data_dir, args.image_size, val_fraction=args.val_fraction, subset=args.subset,
                seed=args.seed, max_pixels=args.max_pixels, max_aspect=args.max_aspect)
    try:
        return data.to(device)
    except torch.OutOfMemoryError:
        n = len(data.train) + len(data.val) + len(data.test)
        raise UserError(f"the {n:,} images at {args.image_size} px ({n * 3 * args.image_size ** 2 / 2**30:.1f} GiB "
                        f"as uint8) do not fit in {device}'s free memory: use a smaller --image-size (the size grows "
                        f"with its square)") from None


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="task_inaturalist/data.py", description="download and unpack iNaturalist-12K (nature_12K.zip)")
    p.add_argument("--data-dir", default="data", help="the zip goes here and unpacks to DATA_DIR/inaturalist_12K/")
    p.add_argument("--url", default=INAT_URL, help="where the zip is downloaded from")
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
