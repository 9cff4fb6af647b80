"""The HTML audit report renders its charts in a real browser (issue 8 "Done when"): headless Chromium (Debian's
``chromium`` package, installed by `make install`) opens the exported page from a file:// URL with the network
off and takes a screenshot; the PNG is decoded here (stdlib zlib + numpy, no Pillow) and must show the charts:
the right size, and enough non-white pixels, in the chart colours, inside the page's chart area.
"""
from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from offerlab.service.report_html import render_html
from tests.e2e.test_report_html import export_html, full_report, killed_with_analyses

WIDTH, HEIGHT = 1280, 2000
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def screenshot(html_path: Path, png_path: Path) -> None:
    with tempfile.TemporaryDirectory() as profile:
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", f"--screenshot={png_path}", f"--window-size={WIDTH},{HEIGHT}",
                 "--hide-scrollbars", html_path.resolve().as_uri()]
        done = subprocess.run([CHROMIUM, *flags], capture_output=True, text=True, timeout=120)
    assert png_path.exists(), done.stderr[-2000:]


def decode_png(data: bytes) -> np.ndarray:
    """An 8-bit RGB/RGBA PNG as an (height, width, channels) array (PNG spec, ISO/IEC 15948 §9 filters)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    channels = 3 if colour == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8).reshape(height, 1 + width * channels)
    out = np.zeros((height, width * channels), dtype=np.uint8)
    prev = np.zeros(width * channels, dtype=np.int32)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if kind == 0:
            row = line
        elif kind == 2:
            row = (line + prev) & 0xFF
        elif kind == 1:  # Sub: a running sum per channel
            row = (np.cumsum(line.reshape(width, channels), axis=0) & 0xFF).reshape(-1)
        else:  # Average, Paeth: sequential within the row
            row = np.zeros_like(line)
            for x in range(len(line)):
                left = int(row[x - channels]) if x >= channels else 0
                up = int(prev[x])
                if kind == 3:
                    row[x] = (line[x] + (left + up) // 2) & 0xFF
                else:
                    upleft = int(prev[x - channels]) if x >= channels else 0
                    p = left + up - upleft
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - upleft)
                    pred = left if pa <= pb and pa <= pc else up if pb <= pc else upleft
                    row[x] = (line[x] + pred) & 0xFF
        out[y] = row
        prev = row
    return out.reshape(height, width, channels)[:, :, :3]


def assert_charts_rendered(png: Path, orange_min: int = 200) -> None:
    pixels = decode_png(png.read_bytes())
    assert pixels.shape == (HEIGHT, WIDTH, 3)
    non_white = (pixels < 240).any(axis=2)
    assert non_white.mean() > 0.02, f"the page is (nearly) blank: {non_white.mean():.4f} non-white"
    # The charts' colours (report_html.py): the lift line/over-limit red and the treatment orange.
    def near(rgb):
        return (np.abs(pixels.astype(int) - np.array(rgb)).sum(axis=2) < 40).sum()
    assert near((0xc0, 0x39, 0x2b)) > 200, "no red chart marks (lift line, breached guardrail)"
    assert near((0xf5, 0x85, 0x18)) > orange_min, "no orange chart marks (treatment bars, approvals)"


@pytest.fixture
def workdir():
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


def test_headless_chromium_renders_every_chart_of_a_full_report(workdir):
    html_path = workdir / "report.html"
    html_path.write_text(render_html(full_report()), encoding="utf-8")
    png = workdir / "report.png"
    screenshot(html_path, png)
    assert_charts_rendered(png)
    pixels = decode_png(png.read_bytes())
    blue = (np.abs(pixels.astype(int) - np.array((0x4c, 0x78, 0xa8))).sum(axis=2) < 40).sum()
    assert blue > 200, "no control bars in the exposures chart"


def test_headless_chromium_renders_the_report_exported_over_http(clients, firestore_db, workdir):
    eid = killed_with_analyses(clients, firestore_db)
    html_path = workdir / f"audit-{eid}.html"
    html_path.write_text(export_html(clients, eid), encoding="utf-8")
    png = workdir / "exported.png"
    screenshot(html_path, png)
    # One stage at 100 % (no rollout steps): the orange is the two approval dots only.
    assert_charts_rendered(png, orange_min=100)
