"""The packaged app: a PyInstaller one-folder build that starts headless and passes its self-test.

Slow (minutes, ~1.3 GB): kept out of the default run; `make test-slow` or `make dist` run it.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_frozen_app_builds_and_passes_its_selftest(tmp_path):
    pyinstaller = shutil.which("pyinstaller", path=str(Path(sys.executable).parent))
    if pyinstaller is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "pyinstaller==6.22.0"], check=True)
        pyinstaller = str(Path(sys.executable).parent / "pyinstaller")
    subprocess.run([pyinstaller, "--noconfirm", "--distpath", str(tmp_path / "dist"),
                    "--workpath", str(tmp_path / "build"), str(REPO / "build.spec")],
                   cwd=REPO, check=True, capture_output=True, timeout=1800)
    frozen = tmp_path / "dist" / "Aeolus" / "Aeolus"
    result = subprocess.run([str(frozen), "selftest"], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "selftest ok: 4 frames" in result.stdout
