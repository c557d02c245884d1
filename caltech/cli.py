"""What every script shares on its command line: flags built from the recipe table, and refusals in one sentence.

    add_settings(parser, ["data", "model", "options"], several=True)  # grid_search.py: one or more values each
    check("topk", args.topk, Range(1, text="at least 1"))             # error: --topk 0 is out of range: ...
"""
import argparse

from .recipe import GROUPS, SETTINGS
from .utils import UserError


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
    s, kwargs = setting, {"help": setting.help, "default": setting.value, **override}
    if s.switch and s.default is True:
        return group.add_argument(s.flag, action=argparse.BooleanOptionalAction, **kwargs)
    if s.switch and several and s.recipe:
        return group.add_argument(s.flag, nargs="*", choices=("on", "off"), action=Switches, metavar="on|off",
                                  **{**kwargs, "default": [s.value]})
    if s.switch:
        return group.add_argument(s.flag, action="store_true", **kwargs)
    kwargs.update({k: v for k, v in (("type", s.type), ("choices", s.choices), ("metavar", s.metavar)) if v})
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
