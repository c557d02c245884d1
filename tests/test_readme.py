"""docs/FLAGS.md documents every flag of every script with the parser's default, and CI runs exactly the README's
test command."""
import importlib
import re

import pytest

from conftest import ROOT

README = (ROOT / "README.md").read_text()
FLAGS = (ROOT / "docs" / "FLAGS.md").read_text()
SCRIPTS = ["split_dataset", "train", "grid_search", "evaluate", "predict", "bench", "report"]


def section(script):
    """The text of docs/FLAGS.md's section for `script`: from its heading to the next level-2 heading."""
    match = re.search(r"^## `" + re.escape(script) + r"\.py`[^\n]*\n(.*?)(?=^## |\Z)", FLAGS, re.M | re.S)
    assert match, f"docs/FLAGS.md has no section for {script}.py"
    return match.group(1)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_flag_is_documented(script):
    parser = importlib.import_module(script).get_args_parser()
    flags = [s for action in parser._actions for s in action.option_strings if s.startswith("--") and s != "--help"]
    text = section(script)
    missing = [f for f in flags if not re.search(re.escape(f) + r"(?![\w-])", text)]
    assert not missing, f"{script}.py flags missing from its section of docs/FLAGS.md: {missing}"


def test_every_flag_has_help_stating_its_default():
    for script in SCRIPTS:
        for action in importlib.import_module(script).get_args_parser()._actions:
            if action.option_strings and action.dest != "help":
                assert action.help and "default" in action.help, (script, action.option_strings)


def test_every_flag_is_shown_in_a_named_group():
    """--help groups the flags (argparse's untitled default groups hold only --help)."""
    for script in SCRIPTS:
        parser = importlib.import_module(script).get_args_parser()
        for group in parser._action_groups:
            if group.title in ("options", "optional arguments", "positional arguments"):
                assert [a.dest for a in group._group_actions] in ([], ["help"]), (script, group.title)
        assert "default" in parser.format_help()


def test_ci_runs_the_readme_test_command():
    command = re.search(r"^(pip install -r requirements-dev\.txt && python -m pytest)\b", README, re.M).group(1)
    ci = (ROOT / ".ci" / "run").read_text()
    assert command in ci.splitlines()


MACHINE_DEPENDENT = {"--workers": "CPU count"}  # computed from os.cpu_count(): the table names the rule


def flag_rows(script):
    """{flag: default cell} of the flag tables in docs/FLAGS.md's section for `script`."""
    rows = {}
    for line in section(script).splitlines():
        if not line.startswith("| `--"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        for flag in re.findall(r"`(--[\w-]+)", cells[0]):
            rows.setdefault(flag, cells[1])
    return rows


def numbers(text):
    return {float(t) for t in re.findall(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e-?\d+)?(?![\w.])", text.replace(",", ""))}


@pytest.mark.parametrize("script", [s for s in SCRIPTS if s != "bench"])
def test_flag_tables_state_each_parsers_default(script):
    rows = flag_rows(script)
    assert rows, f"no flag table for {script}.py"
    wrong = []
    for action in importlib.import_module(script).get_args_parser()._actions:
        flag = next((s for s in action.option_strings if s.startswith("--") and s in rows), None)
        if flag is None or action.dest == "help":
            continue
        cell, default = rows[flag], action.default
        if flag in MACHINE_DEPENDENT and isinstance(default, int):
            ok = MACHINE_DEPENDENT[flag] in cell
        elif isinstance(default, bool) or (default is False and action.nargs == 0):
            ok = re.search(r"\b" + ("on" if default else "off") + r"\b", cell.lower()) is not None
        elif isinstance(default, (int, float)):
            ok = float(default) in numbers(cell)
        elif isinstance(default, list):
            ok = {float(v) for v in default} <= numbers(cell) if all(isinstance(v, (int, float)) for v in default) \
                else all(str(v) in cell for v in default)
        elif isinstance(default, str):
            ok = default in cell
        else:  # None: worked out at run time; the cell must say how, not show a number that is not the default,
            # and give the figures the help states (grid_search.py's published --lr-fc 1e-3 5e-4, 256 on CUDA, ...)
            stated = re.findall(r"\(default: ([^)]*)\)", action.help or "")
            ok = not re.fullmatch(r"`?-?[\d.e-]+`?", cell) and numbers(stated[-1] if stated else "") <= numbers(cell)
        if not ok:
            wrong.append(f"{flag}: docs/FLAGS.md says {cell!r}, the parser {default!r}")
    assert not wrong, f"{script}.py: " + "; ".join(wrong)


def generated(name):
    """docs/FLAGS.md's block generated for `name` (between its markers)."""
    block = rf"<!-- generated: {re.escape(name)} flags -->\n(.*?)\n<!-- end generated -->"
    return re.search(block, FLAGS, re.S).group(1)


def test_the_flag_tables_generated_from_the_recipe_are_current():
    """docs/FLAGS.md's train.py table and grid_search.py's flag lists are what `python -m caltech.cli` writes from
    caltech/recipe.py: a new setting is documented by regenerating them."""
    import train
    from caltech.cli import flag_table, generated_blocks
    blocks = generated_blocks()
    assert generated("train.py") == blocks["train.py"] == flag_table(train.get_args_parser())
    assert generated("grid_search.py") == blocks["grid_search.py"]
