"""Static checks, as pyproject.toml's [tool.ruff] sets them: ruff's rules (pyflakes, syntax, statements,
warnings, import order, pyupgrade, bugbear) and its formatter — both must be clean."""

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUFF = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
TREES = ["ravasd", "tests", "avatars"]


def test_ruff_check_clean():
    r = subprocess.run([RUFF, "check", "--output-format", "concise", *TREES], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_ruff_format_clean():
    r = subprocess.run([RUFF, "format", "--check", *TREES], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, "run `ruff format ravasd tests avatars`:\n" + r.stdout + r.stderr
