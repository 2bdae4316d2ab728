"""The examples run as their docstrings say and write their pictures."""
import os
import subprocess
import sys
from pathlib import Path

import cv2
from conftest import examples_once

ROOT = Path(__file__).resolve().parent.parent


@examples_once
def test_rotated_moons_writes_its_picture(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "rotated_moons.py"),
                          "--epochs", "2", "-o", str(tmp_path)], capture_output=True,
                         text=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "held-out NLL" in out.stdout
    picture = cv2.imread(str(tmp_path / "rotated_moons.png"))
    assert picture.shape == (240, 4 * 246, 3)
    assert (picture != 255).any(axis=2).mean() > 0.05          # points were drawn
