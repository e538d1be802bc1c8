from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import autoft

from .helpers import synthetic_texts

SPACE = {"frozen_layers": {"type": "int", "low": 0, "high": "L"},
         "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
         "head_learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
         "pooling": "mean", "epochs": 2, "batch_size": 16}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=10000"]


@pytest.fixture(scope="module")
def report_dir(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html")
    autoft.search(synthetic_texts(160), model=str(tiny_bert), space=SPACE, out=out, n_trials=6,
                  device="cpu", validation_size=40)
    return out


def test_html_report_is_self_contained(report_dir: Path) -> None:
    page = (report_dir / "report.html").read_text()
    assert not re.search(r"<script[^>]+src=", page)  # plotly.js inlined, nothing fetched
    assert not re.search(r"<link[^>]+href=[\"']?https?:", page)  # no remote stylesheet or font
    assert "@import" not in page.split("</style>")[0]
    plots = re.findall(r"data-plot='(\w+)'", page)
    assert plots == ["history", "intermediate", "frozen_layers", "learning_rate", "pareto",
                     "training_progress", "confusion"]  # importances only from 10 finished trials
    assert len(re.findall(r"\* plotly\.js v\d", page)) == 1  # plotly.js inlined, once
    assert "Recommendation" in page and "<table>" in page


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_html_report_renders_plots_in_headless_chromium(report_dir: Path) -> None:
    assert CHROMIUM is not None
    url = (report_dir / "report.html").resolve().as_uri()
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                             capture_output=True, text=True, timeout=180).stdout
    # every plot div was drawn by plotly.js into SVG
    assert dom.count('class="plot-container plotly"') == 7
    assert dom.count('class="main-svg"') >= 6
    png = report_dir / "report.png"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--window-size=1200,4800",
                        f"--screenshot={png}", url], capture_output=True, timeout=180, check=True)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000
