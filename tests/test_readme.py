"""The README documents every flag of every script, and CI runs exactly the README's test command."""
import importlib
import re

import pytest

from conftest import ROOT

README = (ROOT / "README.md").read_text()
SCRIPTS = ["split_dataset", "train", "grid_search", "evaluate", "bench", "report"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_flag_is_documented(script):
    parser = importlib.import_module(script).get_args_parser()
    flags = [s for action in parser._actions for s in action.option_strings if s.startswith("--") and s != "--help"]
    missing = [f for f in flags if not re.search(re.escape(f) + r"(?![\w-])", README)]
    assert not missing, f"{script}.py flags missing from README.md: {missing}"


def test_every_flag_has_help_stating_its_default():
    for script in SCRIPTS:
        for action in importlib.import_module(script).get_args_parser()._actions:
            if action.option_strings and action.dest != "help":
                assert action.help and "default" in action.help, (script, action.option_strings)


def test_ci_runs_the_readme_test_command():
    command = re.search(r"^(pip install -r requirements-dev\.txt && python -m pytest)\b", README, re.M).group(1)
    ci = (ROOT / ".ci" / "run").read_text()
    assert command in ci.splitlines()
