"""README, --help and the config reference must say what the code does."""

import re
import subprocess
import sys
from pathlib import Path

from ravasd import config
from ravasd.cli import COMMANDS, build_parser

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_readme_config_reference_is_current():
    block = re.search(r"<!-- config-reference:start.*?-->\n(.*?)<!-- config-reference:end -->", README, re.S)
    assert block and block.group(1).strip() == config.reference().strip()


def test_readme_has_the_two_commands_and_ci_uses_the_test_one():
    assert "./bootstrap.sh run" in README and "./bootstrap.sh test" in README
    ci = (Path(__file__).parents[1] / ".ci" / "run").read_text()
    assert "./bootstrap.sh test" in ci


def test_every_command_is_documented_and_has_help():
    for name in COMMANDS:
        assert f"ravasd {name}" in README or (name == "run" and "`ravasd`" in README)
    r = subprocess.run([sys.executable, "-m", "ravasd", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and all(name in r.stdout for name in COMMANDS)
    build_parser().parse_args(["anonymize", "in.mp4", "-o", "out.mp4", "--voice", "ringmod"])
