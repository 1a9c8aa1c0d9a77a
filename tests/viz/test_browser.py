"""The HTML explorer in a real browser: headless Chromium loads the page with no console
error, and a screenshot shows the pictures rendered.

A tiny script injected at the top of the page records `window.onerror` and `console.error`
into a DOM element; `--dump-dom` prints the DOM after the page ran, and the element must be
empty. Skipped, with the reason, where Chromium or Graphviz is missing.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from cortexlang.cli import main

from .conftest import EXAMPLES, SMALL_TREES, needs_graphviz

CHROMIUM = next((path for path in (shutil.which(name) for name in (
    "chromium", "chromium-browser", "google-chrome")) if path), None)
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")
RECORDER = """<script>
(function () {
  var errors = [];
  function note(text) {
    errors.push(String(text));
    var box = document.getElementById("recorded-errors");
    if (box) { box.textContent = errors.join("\\n"); }
  }
  window.addEventListener("error", function (event) { note(event.message); });
  var original = console.error;
  console.error = function () { note(Array.prototype.join.call(arguments, " "));
                                original.apply(console, arguments); };
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.createElement("pre");
    box.id = "recorded-errors";
    box.textContent = errors.join("\\n");
    document.body.appendChild(box);
  });
})();
</script>"""

# Run after the page's own script: search as a user would, so its code runs too.
SEARCH = """<script>
window.addEventListener("load", function () {
  var box = document.getElementById("search");
  box.value = "child1";
  box.dispatchEvent(new Event("input"));
});
</script>"""

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed "
                                    "(apt-get install chromium, or make setup)")


def _chromium(profile: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *arguments],
                          capture_output=True, text=True, timeout=90, check=False)


def _distinct_colours(png: bytes) -> int:
    """How many distinct pixel values a (non-interlaced, 8-bit RGB/RGBA) PNG holds."""
    width, height, depth, colour_type = struct.unpack(">IIBB", png[16:26])
    data = b"".join(png[start + 8:start + 8 + length] for start, length in _chunks(png, b"IDAT"))
    raw = zlib.decompress(data)
    channels = {2: 3, 6: 4}[colour_type]
    stride = width * channels + 1
    rows = [raw[row * stride + 1:(row + 1) * stride] for row in range(0, height, 7)]
    pixels = {row[index:index + 3] for row in rows for index in range(0, len(row), 7 * channels)}
    assert depth == 8
    return len(pixels)


def _chunks(png: bytes, kind: bytes) -> list[tuple[int, int]]:
    found, position = [], 8
    while position < len(png):
        (length,) = struct.unpack(">I", png[position:position + 4])
        if png[position + 4:position + 8] == kind:
            found.append((position, length))
        position += length + 12
    return found


@needs_chromium
@needs_graphviz
def test_page_runs_without_errors_and_shows_pictures(tmp_path: Path) -> None:
    trees = tmp_path / "trees.ptb"
    trees.write_text(SMALL_TREES, encoding="utf-8")
    out = tmp_path / "out"
    assert main(["viz", str(EXAMPLES / "sentiment.cx"), "-D", "H=8", "-D", "V=16", "--trees",
                 str(trees), "--no-run", "-o", str(out)]) == 0
    page = (out / "index.html").read_text(encoding="utf-8")
    instrumented = out / "instrumented.html"
    instrumented.write_text(page.replace("<head>", "<head>" + RECORDER, 1)
                            .replace("</body>", SEARCH + "</body>", 1), encoding="utf-8")
    profile = tmp_path / "profile"
    dumped = _chromium(profile, "--virtual-time-budget=3000", "--dump-dom",
                       instrumented.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = dumped.stdout
    match = re.search(r'<pre id="recorded-errors">(.*?)</pre>', dom, re.DOTALL)
    assert match is not None, "the page did not run to DOMContentLoaded"
    assert match.group(1).strip() == "", f"console errors: {match.group(1)}"
    assert dom.count('<mark class="found">') >= 3             # the search marked matches
    assert 'class="view hidden"' in dom                        # ... and hid the others
    assert re.search(r'id="search-count">\d+ matches in \d+ views<', dom)
    pictures = page.count('<div class="canvas"><svg')
    assert pictures >= 10 and dom.count("<svg") >= pictures
    assert "&quot;&lt;b&gt;&amp;" in dom or "\"&lt;b&gt;&amp;" in dom   # the token, as text
    screenshot = tmp_path / "explorer.png"
    shot = _chromium(profile, "--window-size=1400,1000", "--hide-scrollbars",
                     f"--screenshot={screenshot}", (out / "index.html").as_uri())
    assert shot.returncode == 0 and screenshot.exists(), shot.stderr[-2000:]
    png = screenshot.read_bytes()
    assert png.startswith(b"\x89PNG")
    assert _distinct_colours(png) > 20     # pictures, not a blank or a bare text page
    keep = Path(__file__).resolve().parents[2] / "build" / "viz-screenshot.png"
    keep.parent.mkdir(exist_ok=True)
    shutil.copyfile(screenshot, keep)
