"""make inaturalist-data from the wild, against a local HTTP server (127.0.0.1, a thread, stopped after each
test) and real zip files in the real layout: a dropped connection is refused and resumed with a Range request,
a server that ignores Range starts over, Ctrl-C keeps the .part, no secret is printed; every unpacking failure
(encrypted, an odd compression method, a bad CRC, a foreign layout, a zip bomb, a full disk, a partial folder)
is one line and leaves no inaturalist_12K/."""
import base64
import contextlib
import errno
import shutil
import struct
import threading
import urllib.request
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from common.errors import Interrupted, UserError
from common.export_folder import export_synthetic
from task_inaturalist import data as inat_data


def write_zip(path: Path, source: Path, classes: int = 10, extra: dict[str, bytes] | None = None) -> Path:
    """nature_12K.zip's layout: inaturalist_12K/{train,val}/<class>/<photo>, plus macOS's __MACOSX/ entries."""
    kept = sorted(p.name for p in (source / "train").iterdir())[:classes]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(source.rglob("*")):
            if f.is_file() and f.relative_to(source).parts[1] in kept:
                z.write(f, f"inaturalist_12K/{f.relative_to(source)}")
        z.writestr("__MACOSX/inaturalist_12K/._train", b"junk")
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    export_synthetic(root / "train", 1, seed=0, num_classes=10)
    export_synthetic(root / "val", 1, seed=1, num_classes=10)
    return root


@pytest.fixture(scope="module")
def zip_bytes(photos, tmp_path_factory) -> bytes:
    return write_zip(tmp_path_factory.mktemp("zip") / "nature_12K.zip", photos).read_bytes()


def patch_central_entry(path: Path, name: str, offset: int, fmt: str, value: int) -> None:
    """Overwrite one field of `name`'s central directory header (what zipfile reads): 8 = flags, 10 = method,
    16 = CRC-32."""
    data = bytearray(path.read_bytes())
    i = data.find(b"PK\x01\x02")
    while i >= 0:
        length = int.from_bytes(data[i + 28:i + 30], "little")
        if data[i + 46:i + 46 + length].decode() == name:
            struct.pack_into(fmt, data, i + offset, value)
            path.write_bytes(bytes(data))
            return
        i = data.find(b"PK\x01\x02", i + 1)
    raise AssertionError(f"{name} not in {path}")


@contextlib.contextmanager
def serving(payload: bytes):
    """A server on 127.0.0.1 (a thread) whose GET serves `payload` with Range support (206, or 416 past the end);
    `drop_after` sends that many bytes of the body and hangs up (once); `ignore_range` answers 200 with
    everything; `redirects` maps a path to the Location of a 302. Requests are recorded."""
    state = SimpleNamespace(payload=payload, drop_after=None, ignore_range=False, redirects={}, requests=[])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            state.requests.append((self.path, dict(self.headers)))
            if self.path.split("?")[0] in state.redirects:
                self.send_response(302)
                self.send_header("Location", state.redirects[self.path.split("?")[0]])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data, start = state.payload, 0
            wanted = self.headers.get("Range")
            if wanted and not state.ignore_range:
                start = int(wanted.removeprefix("bytes=").rstrip("-"))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if state.drop_after is not None:
                body, state.drop_after = body[:state.drop_after], None
                self.close_connection = True
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.origin = f"http://127.0.0.1:{httpd.server_port}"
    state.url = f"{state.origin}/nature_12K.zip"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture
def server(zip_bytes):
    with serving(zip_bytes) as state:
        yield state


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


# ----------------------------------------------------------------------------- the download
def test_a_dropped_connection_is_refused_and_the_next_run_resumes_it(server, tmp_path, capsys):
    half = len(server.payload) // 2
    server.drop_after = half
    data_dir = tmp_path / "data"
    assert inat_data.main(["--data-dir", str(data_dir), "--url", server.url]) == 2
    err = error_line(capsys)
    assert err.startswith(f"error: the download of {server.url} ended early ({half} of {len(server.payload)} bytes)")
    assert "nature_12K.zip.part is kept, and running this again resumes it" in err
    assert (data_dir / "nature_12K.zip.part").stat().st_size == half
    assert not (data_dir / "nature_12K.zip").exists() and not (data_dir / "inaturalist_12K").exists()

    assert inat_data.main(["--data-dir", str(data_dir), "--url", server.url]) == 0
    assert server.requests[-1][1]["Range"] == f"bytes={half}-"
    assert "resuming at" in capsys.readouterr().out
    assert (data_dir / "nature_12K.zip").read_bytes() == server.payload
    assert not (data_dir / "nature_12K.zip.part").exists()
    assert len(list((data_dir / "inaturalist_12K" / "val").iterdir())) == 10


def test_a_server_that_ignores_range_starts_over(server, tmp_path):
    server.ignore_range = True
    (tmp_path / "nature_12K.zip.part").write_bytes(b"stale bytes from another file" * 50)
    assert inat_data.main(["--data-dir", str(tmp_path), "--url", server.url]) == 0
    assert server.requests[-1][1]["Range"] == f"bytes={29 * 50}-"
    assert (tmp_path / "nature_12K.zip").read_bytes() == server.payload


def test_a_complete_part_file_is_not_downloaded_again_and_a_longer_one_is_refused(server, tmp_path, capsys):
    (tmp_path / "nature_12K.zip.part").write_bytes(server.payload)  # stopped between the last byte and the rename
    assert inat_data.main(["--data-dir", str(tmp_path), "--url", server.url]) == 0  # the server says 416
    assert (tmp_path / "nature_12K.zip").read_bytes() == server.payload
    (tmp_path / "b" / "nature_12K.zip.part").parent.mkdir()
    (tmp_path / "b" / "nature_12K.zip.part").write_bytes(server.payload + b"more")
    assert inat_data.main(["--data-dir", str(tmp_path / "b"), "--url", server.url]) == 2
    assert "nature_12K.zip.part is longer than http://127.0.0.1:" in error_line(capsys)


def test_ctrl_c_keeps_the_part_file_for_the_next_run(server, tmp_path, monkeypatch, capsys):
    real_copy = shutil.copyfileobj

    def copy_then_ctrl_c(source, target, length=0):
        target.write(source.read(1000))
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "copyfileobj", copy_then_ctrl_c)
    assert inat_data.main(["--data-dir", str(tmp_path), "--url", server.url]) == 130
    assert error_line(capsys).startswith("interrupted: Ctrl-C while downloading: ")
    assert (tmp_path / "nature_12K.zip.part").stat().st_size == 1000
    monkeypatch.setattr(shutil, "copyfileobj", real_copy)
    assert inat_data.main(["--data-dir", str(tmp_path), "--url", server.url]) == 0
    assert server.requests[-1][1]["Range"] == "bytes=1000-"
    assert (tmp_path / "nature_12K.zip").read_bytes() == server.payload


def test_no_secret_in_the_url_is_printed(server, tmp_path, capsys):
    url = server.url.replace("http://", "http://ana:s3cret@") + "?token=hunter2"
    server.drop_after = 100
    assert inat_data.main(["--data-dir", str(tmp_path), "--url", url]) == 2
    path, headers = server.requests[-1]
    assert path == "/nature_12K.zip?token=hunter2"  # sent, as basic auth and the query
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"ana:s3cret").decode()
    assert inat_data.main(["--data-dir", str(tmp_path / "b"), "--url", "http://ana:s3cret@127.0.0.1:9/x.zip"]) == 2
    out, err = capsys.readouterr()
    assert server.url.replace("http://", "http://ana:***@") in out and "ended early" in err
    assert "could not download http://ana:***@127.0.0.1:9/x.zip" in err  # the user shown, as hide_url does
    assert "s3cret" not in out + err and "hunter2" not in out + err
    assert inat_data.main(["--data-dir", str(tmp_path / "c"), "--url", "http://ana:pa/ss@127.0.0.1:9/x.zip"]) == 2
    out, err = capsys.readouterr()  # a password with a slash, not percent-encoded: urllib cannot even parse it
    assert "could not download http://ana:***@127.0.0.1:9/x.zip" in err and "pa/ss" not in out + err


def test_credentials_follow_a_redirect_to_the_same_origin_only(server, zip_bytes, tmp_path, capsys):
    """Another port is another origin: the second server never sees the password; the first one, redirecting
    to itself, still does. The password (in the URL and as ?password=) is never printed."""
    secret = "http://ana:s3cret@"
    with serving(zip_bytes) as elsewhere:
        server.redirects = {"/nature_12K.zip": elsewhere.url, "/moved.zip": "/nature_12K.zip"}
        url = server.url.replace("http://", secret) + "?password=hunter2"
        assert inat_data.main(["--data-dir", str(tmp_path / "a"), "--url", url]) == 0
        assert [r[1].get("Authorization") for r in server.requests] == ["Basic " + base64.b64encode(b"ana:s3cret")
                                                                        .decode()]
        assert [(path, "Authorization" in headers) for path, headers in elsewhere.requests] == [
            ("/nature_12K.zip", False)]
        assert (tmp_path / "a" / "nature_12K.zip").read_bytes() == zip_bytes

        url = f"{server.origin}/moved.zip?password=hunter2".replace("http://", secret)
        assert inat_data.main(["--data-dir", str(tmp_path / "b"), "--url", url]) == 0
    moved, followed = server.requests[1:]
    assert (moved[0], followed[0]) == ("/moved.zip?password=hunter2", "/nature_12K.zip")
    assert moved[1]["Authorization"] == followed[1]["Authorization"] == server.requests[0][1]["Authorization"]
    out, err = capsys.readouterr()
    assert "s3cret" not in out + err and "hunter2" not in out + err and "password" not in out + err


@pytest.mark.parametrize("new, kept", [
    ("https://files.example/x.zip", True), ("https://files.example:443/y.zip", True),
    ("https://FILES.example/x.zip", True), ("https://files.example:8443/x.zip", False),
    ("https://cdn.example/x.zip", False),
])
def test_the_redirect_handler_keeps_authorization_within_its_origin(new, kept):
    request = urllib.request.Request("https://files.example/nature_12K.zip",
                                     headers={"Authorization": "Basic c2VjcmV0", "Range": "bytes=10-"})
    redirected = inat_data.CredentialsStayHome().redirect_request(request, None, 302, "Found", {}, new)
    assert redirected.has_header("Authorization") is kept and redirected.get_header("Range") == "bytes=10-"


@pytest.mark.parametrize("new", ["http://files.example/nature_12K.zip", "ftp://files.example/nature_12K.zip"])
def test_a_redirect_from_https_to_anything_else_is_refused(new):
    request = urllib.request.Request("https://ana:s3cret@files.example/nature_12K.zip?password=hunter2",
                                     headers={"Authorization": "Basic YW5hOnMzY3JldA=="})
    with pytest.raises(UserError, match=r"^https://ana:\*\*\*@files.example/nature_12K.zip redirects to "
                                        rf"{new.split(':')[0]}://files.example/nature_12K.zip, from https to "
                                        rf"{new.split(':')[0]}: refused") as e:
        inat_data.CredentialsStayHome().redirect_request(request, None, 302, "Found", {}, new)
    assert "s3cret" not in str(e.value) and "hunter2" not in str(e.value)


# ----------------------------------------------------------------------------- unpacking
def unpack_fails(data_dir: Path, match: str) -> str:
    with pytest.raises(UserError, match=match) as e:
        inat_data.find_inaturalist(data_dir)
    assert "\n" not in str(e.value)
    assert not (data_dir / "inaturalist_12K").exists() and not list(data_dir.glob(".unpacking-*"))
    return str(e.value)


@pytest.mark.parametrize("offset, fmt, value, match", [
    (8, "<H", 0x1, "has encrypted entries .e.g. inaturalist_12K/val/"),
    (10, "<H", 99, r"uses a compression method Python cannot read \(method 99"),
    (16, "<I", 0xDEADBEEF, "is not a readable zip .Bad CRC-32 for file"),
])
def test_an_entry_that_cannot_be_unpacked_is_one_line(photos, tmp_path, offset, fmt, value, match):
    path = write_zip(tmp_path / "nature_12K.zip", photos)
    last = zipfile.ZipFile(path).infolist()[-2].filename  # a photo in val/ (the last entry is __MACOSX's)
    patch_central_entry(path, last, offset, fmt, value)
    unpack_fails(tmp_path, match)


def test_a_foreign_layout_and_a_zip_bomb_are_refused_before_unpacking(photos, tmp_path):
    write_zip(tmp_path / "nature_12K.zip", photos, classes=9)
    unpack_fails(tmp_path, "should hold the same 10 class folders, not 9 and 9")
    first = sorted(p.name for p in (photos / "train").iterdir())[0]
    bomb = {f"inaturalist_12K/train/{first}/bomb.jpg": bytes(40_000_000)}  # 40 MB of zeros: ~40 kB deflated
    write_zip(tmp_path / "nature_12K.zip", photos, extra=bomb)
    unpack_fails(tmp_path, r"would unpack to 0.0 GB from 0.0 GB \(a zip bomb\?\)")


ESCAPE = "\x1b]0;owned\x07\x1b[2J"  # retitles the terminal window, then clears the screen


@pytest.mark.parametrize("name, patch, match", [
    (f"inaturalist_12K/../{ESCAPE}x.jpg", None, "has unsafe paths"),
    (f"{ESCAPE}/x.jpg", None, "is not nature_12K.zip"),
    (f"inaturalist_12K/val/{{first}}/{ESCAPE}\nerror: forged.jpg", (8, "<H", 0x1), "has encrypted entries"),
    (f"inaturalist_12K/val/{{first}}/{ESCAPE}.jpg", (10, "<H", 99), "uses a compression method"),
])
def test_an_entry_name_in_an_error_line_is_escaped(photos, tmp_path, name, patch, match):
    """Names in a zip are data: an escape sequence or a newline in one never reaches the terminal raw."""
    name = name.format(first=sorted(p.name for p in (photos / "val").iterdir())[0])
    path = write_zip(tmp_path / "nature_12K.zip", photos, extra={name: b"x"})
    if patch:
        patch_central_entry(path, name, *patch)
    message = unpack_fails(tmp_path, match)
    assert "\x1b" not in message and "\x07" not in message and r"\x1b]0;owned\x07\x1b[2J" in message


def zipfile_must_not_read(monkeypatch) -> None:
    """From here on, constructing a ZipFile fails the test: what is refused must be refused before it."""
    def read(*args, **kwargs):
        raise AssertionError("zipfile read the central directory")

    monkeypatch.setattr(zipfile, "ZipFile", read)


def test_a_zip_of_too_many_entries_is_refused_before_zipfile_reads_it(tmp_path, monkeypatch):
    """65,536 entries: the classic end record is full (65,535), so the count comes from the zip64 one."""
    with zipfile.ZipFile(tmp_path / "nature_12K.zip", "w") as z:
        for i in range(65_536):
            z.writestr(f"inaturalist_12K/train/Aves/{i}.jpg", b"")
    zipfile_must_not_read(monkeypatch)
    unpack_fails(tmp_path, r"nature_12K.zip has 65,536 entries, over the limit of 50,000 \(nature_12K.zip holds "
                           r"about 12,000 photos\): not unpacked$")


def test_an_end_record_that_understates_the_zip_is_refused_all_the_same(photos, tmp_path, monkeypatch):
    path = write_zip(tmp_path / "nature_12K.zip", photos)
    real = len(zipfile.ZipFile(path).infolist())
    data = bytearray(path.read_bytes())
    struct.pack_into("<HH", data, data.rfind(b"PK\x05\x06") + 8, 1, 1)  # "1 entry", on this disk and in all
    path.write_bytes(bytes(data))
    monkeypatch.setattr(inat_data, "MAX_ZIP_ENTRIES", real - 1)
    unpack_fails(tmp_path, f"has {real} entries, over the limit of {real - 1}")  # counted after reading
    monkeypatch.setattr(inat_data, "MAX_CENTRAL_DIRECTORY_BYTES", 1000)
    zipfile_must_not_read(monkeypatch)
    unpack_fails(tmp_path, r"has a central directory of [\d,]+ bytes, over the limit of 1,000")


@pytest.mark.parametrize("stop, expected", [
    (OSError(errno.ENOSPC, "No space left on device"), UserError),
    (KeyboardInterrupt(), Interrupted),
])
def test_a_full_disk_or_ctrl_c_while_unpacking_leaves_nothing(photos, tmp_path, monkeypatch, stop, expected):
    write_zip(tmp_path / "nature_12K.zip", photos)
    real_copy, calls = shutil.copyfileobj, []

    def copy_then_stop(source, target, length=0):
        calls.append(1)
        if len(calls) == 5:  # some photos are written by then
            raise stop
        real_copy(source, target, length)

    monkeypatch.setattr(shutil, "copyfileobj", copy_then_stop)
    with pytest.raises(expected) as e:
        inat_data.find_inaturalist(tmp_path)
    assert "\n" not in str(e.value) and "nothing was kept" in str(e.value)
    if expected is UserError:
        assert "(No space left on device)" in str(e.value)
    assert not (tmp_path / "inaturalist_12K").exists() and not list(tmp_path.glob(".unpacking-*"))


def test_too_little_free_space_is_said_before_unpacking(photos, tmp_path, monkeypatch):
    write_zip(tmp_path / "nature_12K.zip", photos)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 1000))
    unpack_fails(tmp_path, r"needs 0.0 GB, and .* has 0.0 GB free: free some space")


def test_a_partial_folder_is_named_and_never_deleted(photos, tmp_path):
    write_zip(tmp_path / "nature_12K.zip", photos)
    partial = tmp_path / "inaturalist_12K" / "train"
    partial.mkdir(parents=True)
    (partial / "mine.txt").write_text("keep me")
    with pytest.raises(UserError, match=r"exists but has no train/ and val/ folders \(a partial copy\?\): "
                                        r"move or delete it") as e:
        inat_data.find_inaturalist(tmp_path)
    assert "\n" not in str(e.value) and (partial / "mine.txt").read_text() == "keep me"
