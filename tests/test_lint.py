"""Static checks: no undefined names, unused imports or syntax errors anywhere (ruff's F and E9)."""
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_pyflakes_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    r = subprocess.run([ruff, "check", "--select", "F,E9", "--output-format", "concise", "ravasd", "tests", "avatars"],
                       cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
