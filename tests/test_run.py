"""common/run.py: the --out contract (a run never changes another run's folder), default names, --overwrite,
--resume from a folder, secrets kept off disk; and the progress bar as a terminal shows it."""
import argparse
import fcntl
import hashlib
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from common.run import RunFolder, redact, resume_root
from task_resnet_ln import train as ln_train
from tests.conftest import one_error_line

REPO = Path(__file__).resolve().parents[1]
TINY = ["--dataset", "synthetic", "--subset", "300", "--width", "4", "--epochs", "1", "--batch-size", "32",
        "--device", "cpu", "--misclassified", "2"]


def snapshot(folder: Path) -> dict:
    """Every file under `folder` with its content hash and modification time."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    assert ln_train.main([*TINY, "--out", str(out)]) == 0
    return out


def test_a_second_run_into_a_complete_folder_is_refused_and_changes_nothing(finished, capsys):
    before = snapshot(finished)
    assert ln_train.main([*TINY, "--out", str(finished)]) == 2
    line = one_error_line(capsys)
    assert "holds a complete run: nothing was changed" in line and "eval.py" in line and "--overwrite" in line
    assert snapshot(finished) == before


def test_a_second_run_into_an_unfinished_folder_is_refused_and_names_resume(finished, tmp_path, capsys):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    for name in ("config.json", "last.pt", "history.csv"):
        (unfinished / name).write_bytes((finished / name).read_bytes())
    before = snapshot(unfinished)
    assert ln_train.main([*TINY, "--out", str(unfinished)]) == 2
    line = one_error_line(capsys)
    assert "holds an unfinished run" in line and f"--resume {unfinished}" in line
    assert snapshot(unfinished) == before


def test_overwrite_replaces_the_folder(finished, tmp_path, capsys):
    out = tmp_path / "again"  # a run folder of this task (its config.json names it), with an old sub-run's plot
    (out / "old").mkdir(parents=True)
    (out / "config.json").write_text(json.dumps({"task": "task_resnet_ln"}))
    (out / "old" / "stale.png").write_bytes(b"x")
    assert ln_train.main([*TINY, "--out", str(out), "--overwrite"]) == 0
    assert not (out / "old").exists() and (out / "metrics.json").is_file()


def sha256_tree(folder: Path) -> dict:
    """Every file under `folder` with the sha256 of its content."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def nothing_may_be_deleted(monkeypatch):
    """While a test refuses a folder, deleting anything fails the test instead (a regression must never get to
    delete real files): shutil.rmtree and the run folder's own remover raise."""
    import shutil

    import common.run as run_module

    def refuse(*args, **kwargs):
        raise AssertionError(f"a deletion was attempted: {args}")

    monkeypatch.setattr(shutil, "rmtree", refuse)
    monkeypatch.setattr(run_module, "remove_run", refuse, raising=False)  # (absent before it existed)


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]], ids=["plain", "overwrite"])
def test_a_folder_of_other_files_is_never_a_run_folder(tmp_path, capsys, overwrite, nothing_may_be_deleted):
    """A thesis folder, with or without --overwrite: one line that does not suggest --overwrite, every file kept."""
    out = tmp_path / "thesis"
    (out / "photos").mkdir(parents=True)
    (out / "thesis.tex").write_text("\\documentclass{article}")
    (out / "photos" / "cat.png").write_bytes(b"\x89PNG not really")
    (out / "notes.json").write_text("{}")
    before = sha256_tree(out)
    assert ln_train.main([*TINY, "--out", str(out), *overwrite]) == 2
    line = one_error_line(capsys)
    assert line == (f"error: --out {out} is not a run folder of task_resnet_ln (it holds other files): nothing was "
                    f"changed")
    assert sha256_tree(out) == before


def test_overwrite_refuses_a_run_folder_that_holds_a_foreign_file(finished, tmp_path, capsys):
    """A run folder of this task, but with somebody's file inside: refused, the file named, nothing deleted."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(finished, out)
    (out / "my notes.txt").write_text("mine")
    before = sha256_tree(out)
    assert ln_train.main([*TINY, "--out", str(out), "--overwrite"]) == 2
    line = one_error_line(capsys)
    assert "my notes.txt" in line and "which no run writes: nothing was changed" in line
    assert sha256_tree(out) == before


def test_remove_run_deletes_only_what_runs_write(tmp_path):
    """Our files go, with the folders they leave empty; a file of another name, or a link, is never ours."""
    from common.run import foreign_files, remove_run

    (tmp_path / "seed0" / "plain").mkdir(parents=True)
    for name in ("config.json", "metrics.json", "seed0/config.json", "seed0/plain/last.pt", "seed0/curves.png",
                 ".metrics.json.abc.tmp"):
        (tmp_path / name).write_text("x")
    assert foreign_files(tmp_path) == []
    remove_run(tmp_path)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "config.json").write_text("x")
    (tmp_path / "sub" / "data.bin").write_text("mine")
    (tmp_path / "elsewhere.txt").write_text("mine")
    os.symlink(tmp_path / "elsewhere.txt", tmp_path / "curves.png")  # a link is never ours, whatever its name
    assert foreign_files(tmp_path) == [tmp_path / "curves.png", tmp_path / "elsewhere.txt",
                                       tmp_path / "sub" / "data.bin"]


def test_a_run_folder_of_another_task_is_refused(finished, capsys, nothing_may_be_deleted):
    from task_cifar_transfer import train as transfer_train

    before = sha256_tree(finished)
    for overwrite in ([], ["--overwrite"]):
        assert transfer_train.main(["--dataset", "synthetic", "--subset", "300", "--device", "cpu", "--part", "a",
                                    "--out", str(finished), *overwrite]) == 2
        assert one_error_line(capsys) == (f"error: --out {finished} is a run folder of task_resnet_ln, not of "
                                          f"task_cifar_transfer: nothing was changed")
    assert sha256_tree(finished) == before


@pytest.mark.parametrize("where", ["repository", "cwd", "home", "above the repository"])
def test_protected_folders_are_refused_whatever_they_hold(where, tmp_path, monkeypatch, capsys,
                                                          nothing_may_be_deleted):
    """The repository, the working directory, $HOME and a folder that contains the repository are never a run
    folder, even with --overwrite, even when they hold a run. Every path here is a temporary stand-in (the
    repository root is patched to a folder under tmp_path): a regression fails the test, it deletes nothing real."""
    import common.run as run_module

    fake_repo = tmp_path / "outer" / "repo"
    home, work = tmp_path / "home", tmp_path / "work"
    for folder in (fake_repo, home, work):
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps({"task": "task_resnet_ln"}))  # even a run folder's shape
        (folder / "keep.txt").write_text("mine")
    monkeypatch.setattr(run_module, "REPO_ROOT", fake_repo)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    target = {"repository": fake_repo, "cwd": Path("."), "home": home, "above the repository": fake_repo.parent}[where]
    names = {"repository": "the repository", "cwd": "the working directory", "home": "$HOME",
             "above the repository": "a folder that contains the repository"}
    before = sha256_tree(tmp_path)
    assert ln_train.main([*TINY, "--out", str(target), "--overwrite"]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: --out {target} is {names[where]}: a run never writes there (nothing was changed)")
    assert sha256_tree(tmp_path) == before


def test_the_root_folder_is_protected():
    """/ is refused by the same check (tested on the check alone: no run is ever pointed at the real /)."""
    from common.run import protected_folder

    assert protected_folder(Path("/")) == "/"
    assert protected_folder(REPO) == "the repository" and protected_folder(REPO.parent).startswith("a folder")


def test_default_folder_names_never_collide(tmp_path, monkeypatch):
    import common.run as run_module

    monkeypatch.setattr(run_module, "REPO_ROOT", tmp_path)
    args = argparse.Namespace(out=None, seed=0)
    paths = {RunFolder(None, "task_x", args).make_folder().path for _ in range(3)}  # within one second
    assert len(paths) == 3 and all(p.parent == tmp_path / "runs" / "task_x" for p in paths)


def test_resume_from_the_folder_of_a_finished_run_is_one_line(finished, capsys):
    assert ln_train.main(["--resume", str(finished)]) == 2
    assert "is a finished run: nothing to resume" in one_error_line(capsys)


def test_resume_root_is_found_from_a_sub_run_or_its_last_pt(tmp_path):
    root = tmp_path / "exp"
    (root / "b" / "head").mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"task": "t", "epochs": 3}))
    (root / "b" / "head" / "config.json").write_text(json.dumps({"task": "t", "sub_run": "b/head"}))
    (root / "b" / "head" / "last.pt").write_bytes(b"")
    for given in (root, root / "b" / "head", root / "b" / "head" / "last.pt"):
        assert resume_root(given, "t") == (root, {"task": "t", "epochs": 3})


def test_redact_hides_passwords_in_urls_only():
    assert redact("postgresql://sweeper:s3cr:et@127.0.0.1:5432/sweeps") == "postgresql://sweeper:***@127.0.0.1:5432/sweeps"
    assert redact({"a": ["--storage", "mysql+pymysql://u:p@h/db"]}) == {"a": ["--storage", "mysql+pymysql://u:***@h/db"]}
    assert redact("sqlite:////tmp/study.db") == "sqlite:////tmp/study.db"
    assert redact("https://host:8080/path") == "https://host:8080/path"


def test_a_storage_password_appears_in_no_file_and_no_line(tmp_path, monkeypatch, capsys):
    """The sweep with --storage postgresql://user:password@...: every file it writes, and everything it
    prints, is free of the password (the study itself is kept in SQLite here: no server in CI)."""
    from task_inaturalist import sweep
    from task_inaturalist import train as inat_train

    secret = "pa55w0rd-xyzzy"
    monkeypatch.setattr(sweep, "storage_url", lambda args, out: f"sqlite:///{out / 'study.db'}")
    out = tmp_path / "sweep"
    flags = ["--sweep", "--trials", "1", "--epochs", "1", "--dataset", "synthetic", "--subset", "200",
             "--image-size", "32", "--filters", "4", "--device", "cpu", "--out", str(out),
             "--storage", f"postgresql://sweeper:{secret}@127.0.0.1:5432/sweeps"]
    assert inat_train.main(flags) == 0
    printed = capsys.readouterr()
    assert secret not in printed.out + printed.err
    written = [p for p in out.rglob("*") if p.is_file() and p.name != "study.db"]
    assert {"config.json", "trials.csv", "metrics.json"} <= {p.name for p in written}
    assert all(secret.encode() not in p.read_bytes() for p in written), [p for p in written
                                                                        if secret.encode() in p.read_bytes()]
    config = json.loads((out / "config.json").read_text())
    assert config["storage"] == "postgresql://sweeper:***@127.0.0.1:5432/sweeps" and secret not in config["command"]


SECRET = "pa55w0rd-xyzzy"
STORAGE_FORMS = {  # every way a password can sit in a storage setting
    "userinfo": f"postgresql://sweeper:{SECRET}@127.0.0.1:5432/sweeps",
    "slash": f"postgresql://sweeper:pa/{SECRET}@127.0.0.1:5432/sweeps",  # SQLAlchemy takes it raw
    "space": f"postgresql://sweeper:pa {SECRET}@127.0.0.1:5432/sweeps",
    "query": f"postgresql://sweeper@127.0.0.1:5432/sweeps?password={SECRET}",
    "passwd": f"mysql://sweeper@127.0.0.1/sweeps?charset=utf8&passwd={SECRET}",  # MySQL drivers take passwd
    "not-a-url": f"postgresql:/sweeper:{SECRET}@127.0.0.1/sweeps",
}


SWEEP = ["--sweep", "--trials", "1", "--epochs", "1", "--dataset", "synthetic", "--subset", "200", "--image-size", "32",
         "--filters", "4", "--device", "cpu"]


@pytest.mark.parametrize("form", list(STORAGE_FORMS))
def test_every_form_of_storage_password_stays_out_of_files_and_lines(form, tmp_path, monkeypatch, capsys):
    """Each form as --storage URL: the secret is in no line printed when the storage cannot be opened (no server
    here), and in no file and no line of a sweep that runs (its study kept in SQLite: no server in CI)."""
    from task_inaturalist import sweep
    from task_inaturalist import train as inat_train

    flags = [*SWEEP, "--storage", STORAGE_FORMS[form]]
    assert inat_train.main([*flags, "--out", str(tmp_path / "refused")]) == 2
    printed = capsys.readouterr()
    assert printed.err.startswith("error: --storage ") and SECRET not in printed.out + printed.err, printed.err
    monkeypatch.setattr(sweep, "storage_url", lambda args, out: f"sqlite:///{out / 'study.db'}")
    out = tmp_path / "sweep"
    assert inat_train.main([*flags, "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert SECRET not in printed.out + printed.err
    written = [p for p in out.rglob("*") if p.is_file() and p.name != "study.db"]
    assert {"config.json", "trials.csv", "metrics.json"} <= {p.name for p in written}
    assert [p for p in written if SECRET.encode() in p.read_bytes()] == []


@pytest.mark.parametrize("form", list(STORAGE_FORMS))
def test_a_storage_password_given_with_equals_or_in_the_environment_stays_out_of_the_error_line(
        form, tmp_path, monkeypatch, capsys):
    from task_inaturalist import train as inat_train

    assert inat_train.main([*SWEEP, f"--storage={STORAGE_FORMS[form]}", "--out", str(tmp_path / "a")]) == 2
    monkeypatch.setenv("OPTUNA_STORAGE", STORAGE_FORMS[form])
    assert inat_train.main([*SWEEP, "--out", str(tmp_path / "b")]) == 2
    printed = capsys.readouterr()
    assert printed.err.count("error: --storage ") == 2 and SECRET not in printed.out + printed.err, printed.err


def test_the_storage_url_can_come_from_the_environment(tmp_path, monkeypatch):
    from task_inaturalist.sweep import storage_url

    monkeypatch.setenv("OPTUNA_STORAGE", "postgresql://u:p@h/db")
    assert storage_url(argparse.Namespace(storage=None), tmp_path) == "postgresql+psycopg2://u:p@h/db"
    monkeypatch.delenv("OPTUNA_STORAGE")
    assert storage_url(argparse.Namespace(storage=None), tmp_path).startswith("sqlite:///")


# ----------------------------------------------------------------------------- what a terminal shows
def run_in_a_terminal(argv: list[str], columns: int = 150, timeout: float = 240) -> str:
    """Run a command with stdout and stderr on a pseudo-terminal, as a user's shell does; all it printed.
    columns=0: a terminal that reports no size (`script` without one, some CI consoles)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40 if columns else 0, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")} | {"PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(argv, cwd=REPO, stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], timeout)
            if not ready:
                raise TimeoutError("no output")
            try:
                data = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        proc.wait(timeout=timeout)
        os.close(leader)
    assert proc.returncode == 0, b"".join(chunks)[-3000:]
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize("columns", [150, 0])
def test_the_progress_bar_moves_on_a_terminal_with_the_reports_description(tmp_path, columns):
    """The bar reaches N/N and shows `Loss=… Batch_id=… LR=… Accuracy=…`, as the original reports' logs do."""
    out = run_in_a_terminal([sys.executable, "task_resnet_ln/train.py", "--dataset", "synthetic", "--epochs", "2",
                             "--subset", "512", "--width", "4", "--device", "cpu", "--misclassified", "2",
                             "--out", str(tmp_path / "run")], columns)
    frames = out.replace("\r", "\n").splitlines()
    bars = [f for f in frames if "Loss=" in f]
    assert bars, out[-3000:]
    assert all(k in bars[-1] for k in ("Batch_id=", "LR=", "Accuracy=")), bars[-1]
    train = int(re.search(r"; train (\d+), val", out).group(1))
    steps = train // 128  # full batches of the default 128
    assert steps > 1 and any(f"{steps}/{steps}" in f for f in bars), bars  # it moved, to the end


def test_make_does_not_echo_a_storage_password():
    """make inaturalist-sweep echoes its command with the password hidden (RUN=true: nothing is run)."""
    proc = subprocess.run(["make", "--no-print-directory", "-o", ".venv/.ready", "inaturalist-sweep", "RUN=true",
                           "ARGS=--storage postgresql://sweeper:s3cret-pw@127.0.0.1/sweeps"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "postgresql://sweeper:***@127.0.0.1/sweeps" in proc.stdout
    assert "s3cret-pw" not in proc.stdout + proc.stderr


SWEEP = ["--sweep", "--trials", "1", "--epochs", "1", "--dataset", "synthetic", "--subset", "200", "--image-size", "32",
         "--filters", "4", "--device", "cpu"]


def test_a_sweep_folder_is_continued_but_never_changed_by_a_refused_command(tmp_path, capsys):
    """The same command continues a study; another --study-name in the same folder, or other settings, is one
    line and changes no file (config.json and metrics.json included)."""
    from task_inaturalist import train as inat_train

    out = tmp_path / "sweep"
    assert inat_train.main([*SWEEP, "--out", str(out)]) == 0
    assert inat_train.main([*SWEEP, "--trials", "2", "--out", str(out)]) == 0  # continued: 2 trials in all
    capsys.readouterr()
    before = {k: v for k, v in snapshot(out).items() if k != "study.db"}
    assert inat_train.main([*SWEEP, "--study-name", "another", "--out", str(out)]) == 2
    assert "one study per folder" in one_error_line(capsys)
    assert inat_train.main([*SWEEP, "--trials", "2", "--out", str(out), "--epochs", "2"]) == 2
    assert "--epochs 1" in one_error_line(capsys)
    assert {k: v for k, v in snapshot(out).items() if k != "study.db"} == before


def test_make_clean_keeps_runs_and_clean_runs_says_what_it_deletes():
    clean = subprocess.run(["make", "-n", "clean"], cwd=REPO, capture_output=True, text=True, timeout=60).stdout
    assert "rm -rf" in clean and " runs" not in clean.replace("./runs", "")
    runs = subprocess.run(["make", "-n", "clean-runs"], cwd=REPO, capture_output=True, text=True, timeout=60).stdout
    assert "rm -rf runs" in runs
    help_text = subprocess.run(["make", "help"], cwd=REPO, capture_output=True, text=True, timeout=60).stdout
    assert "DELETE runs/" in help_text and "keeps runs/" in help_text
