"""What every script shares on its command line: flags built from the recipe table, and refusals in one sentence.

    add_settings(parser, ["data", "model", "options"], several=True)  # grid_search.py: one or more values each
    check("topk", args.topk, Range(1, text="at least 1"))             # error: --topk 0 is out of range: ...

    python -m caltech.cli        # rewrites docs/FLAGS.md's train.py flag table and grid_search.py flag lists
"""
import argparse
import re
from pathlib import Path

from .recipe import GROUPS, SETTINGS
from .utils import UserError


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser for every script, but a value argparse itself refuses (a word where a number belongs, an
    unknown choice) is one sentence too, `error: ...` and exit status 2, without the usage block (--help has it)."""

    def error(self, message):
        self.exit(2, f"error: {message}\n")


def flag(name):
    return "--" + name.replace("_", "-")


def out_of_range(name, value, valid):
    """The one sentence that refuses a flag's value: `--lr-fc -1.0 is out of range: it must be a positive number`."""
    return UserError(f"{flag(name)} {value} is out of range: it must be {valid}")


def check(name, value, limit):
    """Refuse `value` of flag `name` unless it lies in `limit` (a recipe.Range); None (a default worked out at run
    time) passes."""
    if value is not None and value not in limit:
        raise out_of_range(name, value, limit.text)


def check_limits(args, names=None):
    """Every flag of `args` whose recipe entry has limits, checked (those of `names` only, if given)."""
    for name in names or SETTINGS:
        limit = SETTINGS[name].limit
        if limit is not None and hasattr(args, name):
            check(name, getattr(args, name), limit)


class Switches(argparse.Action):
    """grid_search.py's form of an on/off recipe flag: `--tta` is [True], `--tta off on` one run with each."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, [v == "on" for v in values] or [True])


def add_setting(group, setting, several=False, **override):
    """One entry of the recipe table as a flag of `group`: one value, or with `several` (a grid) one or more, of
    which the grid runs the Cartesian product. Help and defaults are the same either way."""
    s, kwargs = setting, {"help": setting.full_help, "default": setting.value, **override}
    if s.switch and s.default is True:
        return group.add_argument(s.flag, action=argparse.BooleanOptionalAction, **kwargs)
    if s.switch and several and s.recipe:
        return group.add_argument(s.flag, nargs="*", choices=("on", "off"), action=Switches, metavar="on|off",
                                  **{**kwargs, "default": [s.value]})
    if s.switch:
        return group.add_argument(s.flag, action="store_true", **kwargs)
    metavar = s.metavar or (None if s.choices else {int: "N", float: "F"}.get(s.type))
    kwargs.update({k: v for k, v in (("type", s.type), ("choices", s.choices), ("metavar", metavar)) if v})
    if several and s.recipe and s.several:
        kwargs.update(nargs="+", default=[kwargs["default"]])
    return group.add_argument(s.flag, **kwargs)


def add_settings(parser, groups, several=False, skip=()):
    """The entries of the recipe table in `groups` (keys of recipe.GROUPS), each group under its title, but those
    named in `skip`; with `several`, the recipe settings take one or more values (grid_search.py)."""
    for key in groups:
        group = parser.add_argument_group(GROUPS[key])
        for setting in SETTINGS.values():
            if setting.group == key and setting.name not in skip:
                add_setting(group, setting, several)


# ---- docs/FLAGS.md, from the parsers ----

def flag_cell(action):
    """`--flag METAVAR`, `--flag a|b`, `--flag` or `--flag` / `--no-flag`, as docs/FLAGS.md writes a flag."""
    if isinstance(action, argparse.BooleanOptionalAction):
        return " / ".join(f"`{s}`" for s in action.option_strings)
    flag = action.option_strings[0]
    if action.nargs == 0:
        return f"`{flag}`"
    value = "\\|".join(map(str, action.choices)) if action.choices else action.metavar or action.dest.upper()
    return f"`{flag} {value}`"


def flag_table(parser):
    """A markdown table of `parser`'s flags, `| flag | default | meaning |`, from their help texts."""
    rows = ["| flag | default | meaning |", "| --- | --- | --- |"]
    for action in parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        meaning, default = re.fullmatch(r"(.*) \(default: (.*)\)", action.help, re.S).groups()
        rows.append(f"| {flag_cell(action)} | {default} | {meaning} |".replace("\n", " "))
    return "\n".join(rows)


def grid_flag_lists():
    """The train.py flags grid_search.py takes, as docs/FLAGS.md lists them: those with several values (the
    recipe's, beside the grid's own axes), and those passed to every run."""
    several = [s.flag for s in SETTINGS.values() if s.recipe and s.group in ("data", "model", "options")]
    once = [s.flag if s.default is not True else f"{s.flag}/--no-{s.flag[2:]}" for s in SETTINGS.values()
            if not s.recipe and s.group in ("data", "model", "runtime", "outputs")]
    return ", ".join(f"`{f}`" for f in several), ", ".join(f"`{f}`" for f in once)


def generated_blocks():
    """{name: text} of docs/FLAGS.md's generated blocks: train.py's flag table and grid_search.py's flag lists."""
    parser = argparse.ArgumentParser()
    add_settings(parser, GROUPS)  # train.py's flags
    several, once = grid_flag_lists()
    return {"train.py": flag_table(parser),
            "grid_search.py": f"Several values each: {several}.\n\nOne value, passed to every run: {once}."}


def write_generated(path):
    """Rewrite the generated blocks of the markdown file `path` in place (between their markers)."""
    text = Path(path).read_text()
    for name, block in generated_blocks().items():
        text = re.sub(rf"(<!-- generated: {re.escape(name)} flags -->\n).*?(\n<!-- end generated -->)",
                      lambda m, block=block: m.group(1) + block + m.group(2), text, flags=re.S)
    Path(path).write_text(text)


if __name__ == "__main__":
    write_generated("docs/FLAGS.md")  # python -m caltech.cli, from the repository root
