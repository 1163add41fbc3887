"""The check outside CI: render a report's index.html in a real browser, headless, and fail on a blank page.

    apt-get install -y chromium                          # Debian's; once
    python -m report.check_browser runs/report/index.html --png runs/report/screenshot.png

It prints PASS or FAIL with what it saw, and exits 0 or 1 (2 when no browser is installed). Then look at the
PNG yourself: are the tables readable, are the images sized sensibly? The page is loaded from file://, with
networking off, so a page that needs the internet shows it.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common.cli import HelpFormatter

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def screenshot(index: Path, png: Path, width: int = 1280, height: int = 4000, timeout: float = 120) -> None:
    browser = next((b for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        raise FileNotFoundError(f"no browser found ({', '.join(BROWSERS)}): apt-get install -y chromium")
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:  # a fresh profile: nothing from earlier sessions
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}",
                        "--hide-scrollbars", f"--window-size={width},{height}", f"--screenshot={png.resolve()}",
                        index.resolve().as_uri()],
                       check=True, capture_output=True, timeout=timeout)


def blank_reason(png: Path) -> str | None:
    """Why the screenshot looks blank, or None: one colour only, or almost nothing but the background."""
    from PIL import Image

    with Image.open(png) as image:
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 16)
        if colours is not None and len(colours) < 2:
            return "the page is a single colour"
        small = rgb.resize((rgb.width // 4, rgb.height // 4))
        background = max(small.getcolors(maxcolors=1 << 20) or [(0, (255, 255, 255))])[1]
        data = small.tobytes()  # R, G, B bytes, pixel after pixel
        inked = sum(1 for i in range(0, len(data), 3)
                    if sum(abs(data[i + c] - background[c]) for c in range(3)) > 60)
        share = inked / (small.width * small.height)
        if share < 0.01:
            return f"only {100 * share:.2f}% of the page differs from its background"
    return None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m report.check_browser", description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("index", help="the report's index.html")
    p.add_argument("--png", default=None, help="where the screenshot goes (default: screenshot.png beside "
                   "index.html)")
    p.add_argument("--width", type=int, default=1280, help="the window's width in px")
    p.add_argument("--height", type=int, default=4000, help="the window's height in px")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    index = Path(args.index)
    png = Path(args.png) if args.png else index.with_name("screenshot.png")
    try:
        screenshot(index, png, args.width, args.height)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as e:
        print(f"FAIL: the browser exited with {e.returncode}: {e.stderr.decode(errors='replace')[-500:]}")
        return 1
    reason = blank_reason(png) if png.exists() else "no screenshot was written"
    if reason:
        print(f"FAIL: {index}: {reason} ({png})")
        return 1
    print(f"PASS: {index} rendered in a headless browser, not blank; look at it: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
