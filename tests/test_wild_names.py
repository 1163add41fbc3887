"""File and class names are data, not markup: bytes that are not UTF-8, newlines and "$...$" in a name
never break a report line, a CSV or a plot."""
import csv
import os

import pytest
import torch
from PIL import Image

from common.folders import load_folder, printable
from common.plots import bar_chart, confusion_matrix_png, image_grid, labelled_rows
from task_catsdogs.augmentations import write_augmentations_csv

NOT_UTF8 = os.fsdecode(b"caf\xe9 \xff.jpg")  # Latin-1 bytes, as a file name copied from an old disk
NEWLINE = "a\nskipped 0 unreadable files of 1 in forged.jpg"
MATH = r"$\notacommand{x}$ and $x^2$"


def test_printable_escapes_what_would_break_a_line_and_keeps_the_rest():
    assert printable(NOT_UTF8) == r"caf\xe9 \xff.jpg"
    assert printable(b"\xff") == r"\xff"
    assert printable("a\nb\r\tc\x1b[31m\u2028") == r"a\nb\r\tc\x1b[31m\u2028"
    assert printable("chat noir é 猫 $x$.jpg") == "chat noir é 猫 $x$.jpg"


def test_skipped_report_lines_escape_names(tmp_path, capsys):
    cls = tmp_path / "photos" / "cat"
    cls.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(cls / "good.png")
    for name in (NOT_UTF8, NEWLINE):
        (cls / name).write_text("not an image")
    data = load_folder(tmp_path / "photos", 8)
    assert len(data) == 1 and len(data.skipped) == 2
    err = capsys.readouterr().err
    err.encode("utf-8")  # no lone surrogate: the log is valid UTF-8
    lines = err.splitlines()
    assert len(lines) == 3  # one per skipped file, one count: no forged line
    assert any(r"caf\xe9 \xff.jpg: " in line for line in lines)
    assert any(r"a\nskipped 0 unreadable files of 1 in forged.jpg: " in line for line in lines)
    assert not any(line.startswith("skipped 0") for line in lines)


def test_augmentations_csv_takes_any_file_or_class_name(tmp_path):
    records = [{"source": i, "call": 1, "applied": [("blur", "sigma=1.00px")]} for i in range(2)]
    path = tmp_path / "augmentations.csv"
    write_augmentations_csv(path, records, [NOT_UTF8, NEWLINE], ["cat\n$x$", MATH], [0, 1])
    text = path.read_bytes().decode("utf-8")  # strict: the file is valid UTF-8
    assert len(text.splitlines()) == 3  # header and two rows, one line each
    rows = list(csv.DictReader(text.splitlines()))
    assert [r["file"] for r in rows] == [r"caf\xe9 \xff.jpg", printable(NEWLINE)]
    assert [r["class"] for r in rows] == [r"cat\n$x$", MATH]


@pytest.mark.filterwarnings("ignore:Tight layout not applied")  # long names in a small figure
def test_plots_draw_names_as_text_not_mathtext(tmp_path, monkeypatch):
    from matplotlib.figure import Figure
    from matplotlib.text import Text

    parse_math_of_names = []  # per saved figure: parse_math of every text that shows the name
    real_savefig = Figure.savefig

    def savefig(fig, *args, **kwargs):
        real_savefig(fig, *args, **kwargs)  # with mathtext on, "$\\notacommand$" fails right here
        parse_math_of_names.append({t.get_parse_math() for t in fig.findobj(Text) if t.get_text() == MATH})

    monkeypatch.setattr(Figure, "savefig", savefig)
    images = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    image_grid(images, [MATH, "dog"], tmp_path / "grid.png", suptitle=MATH)
    confusion_matrix_png([[1, 0], [0, 1]], [MATH, "dog"], tmp_path / "cm.png", title=MATH)
    labelled_rows({MATH: images, "dog": images}, tmp_path / "rows.png", title=MATH)
    bar_chart({MATH: {MATH: 1.0, "dog": 2.0}}, tmp_path / "bars.png", "accuracy", title=MATH)
    assert parse_math_of_names == [{False}] * 4


# Markdown that holds data (common.markdown): every string below is shown as its text, on one line, in every place
# the report puts one, and adds no element.
MARKDOWN_NAMES = [
    "<img src=x onerror=alert(1)> `code` [x](javascript:alert(1)) a\\|b|c *em* __init__ ![x](y)",
    "~~x~~ $x$ &amp; &#60; = - + 1. 1) --- <!-- c --> <https://x.y> [a]: http://x [TOC] [^1] text}{: .cls}",
    "| a | b |", "    indented", "* item", "> q", "#h", "\\", "a\\", "x_", "_x", "- x", "1. y", "2) z", "===", "---",
    "+", "**", "_", "__", "`", "``", "\\`", "5 < 6 > 4", "a*b*c", "snake_case_name", "2*3*4", "\\*not em\\*",
    "a\nb\r\nc\u2028d\te\x1b[31m \x02 0 \x03", NOT_UTF8, NEWLINE, MATH,
]
PLACES = ["{}", "> {}", "| h |\n|---|\n| {} |", "**{}**", "a {} b", "- {}", "### {}", "<code>{}</code>", "*({})*"]


def rendered(text: str) -> tuple[list[str], str]:
    """(the tags, the text) of Markdown as the report renders it (Python-Markdown, tables and toc)."""
    import html
    import re

    import markdown

    page = markdown.markdown(text, extensions=["tables", "toc"])
    return re.findall(r"</?\w+", page), html.unescape(re.sub(r"<[^>]+>", "", page)).strip()


@pytest.mark.parametrize("name", MARKDOWN_NAMES)
def test_an_escaped_name_is_its_text_on_one_line_wherever_it_goes(name):
    from common.markdown import attribute, escape, one_line

    shown = one_line(name)
    assert "\n" not in shown and shown.isprintable()
    for place in PLACES:
        tags, text = rendered(place.format(escape(name)))
        plain_tags, plain_text = rendered(place.format("WORD"))
        assert (tags, text) == (plain_tags, plain_text.replace("WORD", shown)), place
    for image in ("![{}](x.png)", '<a href="x.png"><img src="x.png" alt="{}" width="7"></a>'):
        import html
        import re

        import markdown

        alt = html.unescape(re.search(r'alt="([^"]*)"', markdown.markdown(
            image.format(escape(name) if image.startswith("!") else attribute(name)), extensions=["tables"]))[1])
        assert alt == shown, image


def github_cells(line: str) -> int:
    """The number of cells in a Markdown table row as GitHub splits it: `\\|` is a pipe, an unescaped | ends a cell."""
    cells, escaped = 1, False
    for ch in line.strip()[1:-1]:
        cells += ch == "|" and not escaped
        escaped = ch == "\\" and not escaped
    return cells


def test_a_table_keeps_its_columns_whatever_its_cells_hold():
    from common.tables import markdown

    rows = [{"file": name, "n": 1} for name in MARKDOWN_NAMES]
    md = markdown(rows)
    lines = md.splitlines()
    assert len(lines) == 2 + len(rows)  # header, rule, one line per row
    assert [github_cells(line) for line in lines] == [2] * len(lines)
    tags, text = rendered(md)
    assert tags.count("<tr") == 1 + len(rows) and tags.count("<td") == 2 * len(rows)
    assert "<a" not in tags and "<img" not in tags and "<em" not in tags and "<code" not in tags


def test_no_escape_sequence_in_a_class_name_reaches_the_terminal(tmp_path, capsys):
    """A twin run whose class folders are named with terminal escape sequences (a colour, a window title): every
    line it prints (the image statistics table, the per-seed confusion lines, the results) shows them escaped,
    and no raw ESC or BEL byte reaches the terminal."""
    from common.export_folder import export_synthetic
    from task_catsdogs import train as cd_train

    photos = tmp_path / "photos"
    export_synthetic(photos, per_class=8, seed=0)
    (photos / "horizontal").rename(photos / "cat\x1b[31mred")
    (photos / "vertical").rename(photos / "dog\x1b]0;pwned\x07")
    assert cd_train.main(["--dataset", "folder", "--data-dir", str(photos), "--image-size", "32", "--train-size", "4",
                          "--val-size", "2", "--test-size", "4", "--epochs", "1", "--batch-size", "4", "--seeds", "0",
                          "--device", "cpu", "--no-checkpoints", "--misclassified", "2", "--examples", "2",
                          "--out", str(tmp_path / "run")]) == 0
    printed = capsys.readouterr()
    text = printed.out + printed.err
    assert "\x1b" not in text and "\x07" not in text
    assert r"cat\x1b[31mred" in text and r"dog\x1b]0;pwned\x07" in text
