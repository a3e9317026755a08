"""The HTML report rendered by a real headless browser (Debian's chromium): the screenshot is not
blank and shows the heat map's colours, and the DOM the browser built has the expected elements.

Skipped, with the reason, only when no chromium binary is installed
(``apt-get install -y chromium``; or set $LSTM_CONFORMANCE_CHROMIUM to a Chromium/Chrome binary).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
import report_samples

from conformance.cli import main as cli_main

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WIDTH, HEIGHT = 1280, 1300


def find_browser() -> str | None:
    explicit = os.environ.get("LSTM_CONFORMANCE_CHROMIUM")
    if explicit:
        return explicit
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def browser(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    binary = find_browser()
    if binary is None:
        pytest.skip(f"no headless browser binary: none of {', '.join(BROWSERS)} is on PATH "
                    f"(install it with: apt-get install -y chromium)")
    cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
           "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc


def read_png(path: Path) -> np.ndarray:
    """The (height, width, 3) RGB pixels of an 8-bit, non-interlaced RGB or RGBA PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, f"unexpected PNG format {header}"
    bpp = 3 if colour == 2 else 4
    stride = width * bpp
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, stride + 1)
    out = np.zeros((height, stride), np.uint8)
    prev = np.zeros(stride, np.uint8)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:]
        if kind == 0:
            row = line.copy()
        elif kind == 1:  # Sub: a running sum per channel
            row = (np.cumsum(line.reshape(width, bpp).astype(np.uint32), axis=0) & 255).astype(np.uint8).ravel()
        elif kind == 2:  # Up
            row = line + prev
        else:  # Average, Paeth: sequential along the row
            cur, up = line.tolist(), prev.tolist()
            for i in range(stride):
                a = cur[i - bpp] if i >= bpp else 0
                b = up[i]
                if kind == 3:
                    cur[i] = (cur[i] + (a + b) // 2) & 255
                else:
                    c = up[i - bpp] if i >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    cur[i] = (cur[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            row = np.array(cur, np.uint8)
        out[y] = prev = row
    return out.reshape(height, width, bpp)[:, :, :3]


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    results = report_samples.write_results(tmp / "results")
    path = tmp / "report.html"
    assert cli_main(["report", str(results), "--html", str(path)]) == 1  # the samples fail, no baseline
    return path


def test_screenshot_is_not_blank_and_shows_the_heat_map(page, tmp_path):
    png = tmp_path / "report.png"
    browser(tmp_path, f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={png}", page.as_uri())
    pixels = read_png(png)
    assert pixels.shape == (HEIGHT, WIDTH, 3)
    flat = pixels.reshape(-1, 3).astype(np.int32)
    r, g, b = flat.T
    white = int((flat.min(axis=1) >= 245).sum())
    assert white < 0.97 * len(flat), "the screenshot is (almost) blank"
    assert len(np.unique(flat, axis=0)) > 50, "the screenshot has almost no colours: nothing was drawn"
    green = int(((g > r + 40) & (g > b + 20)).sum())
    red = int(((r > 150) & (g < 90) & (b < 90)).sum())
    amber = int(((r > 200) & (g > 120) & (g < 200) & (b < 90)).sum())
    assert green > 200, f"no green pass cells in the rendered heat map ({green} green pixels)"
    assert red > 30, f"no red fail cells in the rendered heat map ({red} red pixels)"
    assert amber > 20, f"no amber known-issue cell in the rendered heat map ({amber} amber pixels)"
    keep = os.environ.get("LSTM_CONFORMANCE_SCREENSHOT")
    if keep:
        shutil.copyfile(png, keep)


def test_browser_dom_has_the_expected_elements(page, tmp_path):
    dom = browser(tmp_path, "--dump-dom", page.as_uri()).stdout
    for element_id in ("heatmap", "fixture-heatmap", "error-by-step-long_sequence", "error-by-step-forward_parity",
                       "backend-table", "details", "d-alpha--lengths"):
        assert re.search(rf'id="{element_id}"', dom), f"the rendered page has no element #{element_id}"
    assert dom.count('class="cell status-') == 3 * 8 + 3 * 2  # backends x (properties + fixtures)
    assert len(re.findall(r"<polyline ", dom)) == 6
    assert "<title>LSTM conformance matrix</title>" in dom


@pytest.mark.parametrize("width", [1366, 400])
def test_the_page_fits_a_laptop_and_a_narrow_window(page, tmp_path, width):
    """At a laptop's width and at a phone's, the page itself never scrolls sideways: wide tables
    and heat maps scroll inside their own boxes.  (The page has no script; the probe is added to
    a copy of it.)"""
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace(
        "</body>", "<script>document.body.setAttribute('data-overflow', String(document.documentElement"
                   ".scrollWidth - window.innerWidth));</script></body>"))
    dom = browser(tmp_path, f"--window-size={width},900", "--dump-dom", probe.as_uri()).stdout
    overflow = re.search(r'data-overflow="(-?\d+)"', dom)
    assert overflow, "the probe did not run"
    assert int(overflow.group(1)) <= 0, f"the page is {overflow.group(1)} px wider than a {width} px window"
