"""Break the code's key lines one at a time and see whether the test suite notices: a check of the tests themselves.

    python tools/mutate.py                  # every break below, each against its tests, then a missed one against all
    python tools/mutate.py --only split     # the breaks whose file path contains "split"
    python tools/mutate.py --list           # what would be broken, without running anything

Each break replaces one snippet of one file (it must appear there exactly once), runs pytest on the test files
named for it, stopping at the first failure, and puts the file back whatever happens. A break no named test catches
is run against the whole suite before it counts as missed. Prints a line per break and the count caught; exits 1
when one is missed. Slow (minutes): it is a tool for developers, not part of the suite.
"""
import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (file, the snippet, what it becomes, the test files that should catch it)
BREAKS = [
    ("caltech/recipe.py", "(value > self.low if self.low_open else value >= self.low)",
     "(value >= self.low)", ["test_recipe_table.py"]),
    ("caltech/recipe.py", "(value < self.high if self.high_open else value <= self.high)", "(value <= self.high)",
     ["test_recipe_table.py"]),
    ("caltech/recipe.py", "and not (SETTINGS[name].optional and settings[name] == SETTINGS[name].old_value)}",
     "}", ["test_results_file.py"]),
    ("caltech/recipe.py", "if any(settings.get(other) != value for other, value in s.used_with.items())}",
     "if any(settings.get(other) == value for other, value in s.used_with.items())}", ["test_grid_product.py"]),
    ("caltech/recipe.py", 'limit=Range(0, text="a positive number, or 0 to freeze every layer but the head")',
     'limit=Range(0, low_open=True, text="a positive number, or 0 to freeze every layer but the head")',
     ["test_trust.py", "test_train.py"]),
    ("caltech/recipe.py", "return self.default() if callable(self.default) else self.default",
     "return self.default", ["test_train.py"]),
    ("caltech/cli.py", "if value is not None and value not in limit:", "if value not in limit:",
     ["test_recipe_table.py", "test_train.py"]),
    ("caltech/cli.py", 'setattr(namespace, self.dest, [v == "on" for v in values] or [True])',
     'setattr(namespace, self.dest, [v == "off" for v in values] or [True])', ["test_grid_product.py"]),
    ("caltech/cli.py", '        self.exit(2, f"error: {message}\\n")', "        super().error(message)",
     ["test_nothing_stale.py"]),
    ("caltech/names.py", "if s.tag and k in settings and settings[k] != default[k] and k not in skip)",
     "if s.tag and k in settings and k not in skip)", ["test_train.py", "test_recipe.py"]),
    ("caltech/names.py", 'return {"scratch": True} if name.startswith("scratch") else {}',
     "return {}", ["test_guards.py", "test_report.py"]),
    ("caltech/names.py", 'Metric("test_acc", "Test_Acc", "hparam/test_acc"',
     'Metric("test_acc", "Test_Acc", "hparam/test_mean_class_acc"', ["test_tensorboard.py"]),
    ("caltech/layout.py", "if results.resolve() == Path(DEFAULT_RESULTS).resolve():",
     "if results.name == DEFAULT_RESULTS:", ["test_results_file.py", "test_trust.py"]),
    ("caltech/disk.py", "    if not writable(base):", "    if False:", ["test_nothing_stale.py"]),
    ("caltech/disk.py", "        if free < size:", "        if free < 0:", ["test_nothing_stale.py"]),
    ("caltech/disk.py", '        raise UserError(f"{flag} {path} is a folder; pass a file name")', "        pass",
     ["test_guards.py"]),
    ("caltech/utils.py",
     "        yield Path(tmp)\n        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp's files are private; "
     "results are ordinary files\n        os.replace(tmp, path)", "        yield path", ["test_atomic.py"]),
    ("caltech/utils.py", 'return random.Random(":".join(map(str, parts))).getrandbits(31)',
     "return random.Random(str(parts[0])).getrandbits(31)", ["test_data.py"]),
    ("caltech/utils.py", "    if error.errno in FULL:", "    if False:", ["test_nothing_stale.py"]),
    ("caltech/data/images.py", "    if img.mode in WIDE:", "    if False:", ["test_images.py"]),
    ("caltech/data/images.py", 'if img.mode == "P" and "transparency" in img.info or img.mode in',
     'if img.mode in', ["test_images.py"]),
    ("caltech/data/images.py", "    if expected and fmt != expected:", "    if False:", ["test_split.py"]),
    ("caltech/data/images.py", "EXTENSIONS = tuple(FORMATS)", 'EXTENSIONS = tuple(e for e in FORMATS if e != ".gif")',
     ["test_predict.py", "test_images.py"]),
    ("caltech/data/split.py", 'random.Random(f"{seed}:{name}").shuffle(order)',
     'random.Random(f"{seed}").shuffle(order)', ["test_split.py"]),
    ("caltech/data/split.py", "if digest and digest != now]", "if False]", ["test_nothing_stale.py"]),
    ("caltech/data/split.py", 'return hashlib.sha256(self.manifest + "".join(self.contents).encode()).hexdigest()',
     "return hashlib.sha256(self.manifest).hexdigest()", ["test_guards.py", "test_nothing_stale.py"]),
    ("caltech/data/split.py", "    if not 0 < val_per_class < train_per_class:",
     "    if not 0 < val_per_class <= train_per_class:", ["test_split.py"]),
    ("caltech/data/split.py", "rows = [(*row, digests[row[0]]) for row in rows]", "rows = [(*row, '') for row in rows]",
     ["test_nothing_stale.py"]),
    ("caltech/data/cache.py", 'key = hashlib.sha256(f"{split.sha256}|{name}|{side}|{LAYOUT}".encode())',
     'key = hashlib.sha256(f"{split.listing_sha256}|{name}|{side}|{LAYOUT}".encode())', ["test_nothing_stale.py"]),
    ("caltech/data/cache.py", "            os.posix_fallocate(f.fileno(), 0, os.path.getsize(tmp))", "            pass",
     ["test_nothing_stale.py"]),
    ("caltech/data/cache.py", "        tmp.unlink(missing_ok=True)", "        pass",
     ["test_nothing_stale.py", "test_data.py"]),
    ("caltech/data/loaders.py", "    return args.eval_image_size or args.image_size", "    return args.image_size",
     ["test_recipe.py"]),
    ("caltech/data/loaders.py", "order = torch.randperm(n, generator=gen) if self.train else torch.arange(n)",
     "order = torch.randperm(n, generator=gen)", ["test_data.py"]),
    ("caltech/data/loaders.py", "str(e).strip().splitlines()[-1]", "str(e)", ["test_nothing_stale.py"]),
    ("caltech/data/transforms.py", "flip = torch.rand(n, generator=generator) < 0.5\n    return top, left, flip",
     "flip = torch.rand(n, generator=generator) < 0.0\n    return top, left, flip", ["test_data.py"]),
    ("caltech/training/model.py", "    if dropout:\n        new = nn.Sequential(nn.Dropout(dropout), new)", "",
     ["test_recipe.py", "test_recipe_table.py"]),
    ("caltech/training/model.py", 'return max(MIN_IMAGE_SIZE, *weights.meta.get("min_size", (0, 0)))',
     "return MIN_IMAGE_SIZE", ["test_recipe_table.py", "test_models.py"]),
    ("caltech/training/model.py", "base = [p for p in model.parameters() if id(p) not in head_ids]",
     "base = list(model.parameters())", ["test_train.py", "test_models.py"]),
    ("caltech/training/optim.py", "        return torch.optim.AdamW(groups, weight_decay=weight_decay)",
     "        return torch.optim.Adam(groups, weight_decay=weight_decay)", ["test_recipe.py"]),
    ("caltech/training/optim.py", "return lr_factors(short, **kwargs) == lr_factors(long, **kwargs)[:short]",
     "return True", ["test_prefix.py"]),
    ("caltech/training/engine.py", "        if after_step is not None:\n            after_step()", "",
     ["test_recipe.py"]),
    ("caltech/training/engine.py", "return torch.stack([logits.log_softmax(1), mirrored.log_softmax(1)])",
     "return torch.stack([logits.log_softmax(1), logits.log_softmax(1)])", ["test_recipe.py"]),
    ("caltech/training/engine.py", "        optimizer.zero_grad(set_to_none=True)\n", "", ["test_recipe.py"]),
    ("caltech/training/losses.py", "        if self.label_smoothing:", "        if False:", ["test_recipe.py"]),
    ("caltech/training/losses.py", "    return build_loss(run.loss)", "    return build_loss(run.loss, 0.1)",
     ["test_recipe.py"]),
    ("caltech/training/checkpoint.py", 'return argparse.Namespace(**{**OLDER, **ckpt["hparams"]})',
     'return argparse.Namespace(**ckpt["hparams"])', ["test_recipe_table.py", "test_train.py"]),
    ("caltech/training/checkpoint.py", 'state.get("format") != FORMAT or ', "", ["test_guards.py"]),
    ("caltech/training/setup.py", "    if not 0 <= args.warmup_epochs < args.epochs:",
     "    if not 0 <= args.warmup_epochs <= args.epochs:", ["test_recipe.py"]),
    ("caltech/training/setup.py", "value = saved.get(key, old[key])", "value = saved.get(key, defaults[key])",
     ["test_recipe_table.py"]),
    ("caltech/training/setup.py",
     '("logdir", "ckpt_dir", "cache_dir", "device", "workers", "threads", "eval_batch_size")',
     '("logdir", "ckpt_dir", "cache_dir", "device", "workers", "eval_batch_size")', ["test_trust.py"]),
    ("caltech/training/setup.py", "checkpoints = runs * weights * (2 + moments + (1 if args.ema else 0))",
     "checkpoints = runs * weights * 2", ["test_nothing_stale.py"]),
    ("caltech/training/fit.py", '                self.ema.n_averaged.fill_(resume["ema_steps"])\n', "",
     ["test_recipe.py"]),
    ("caltech/training/fit.py", 'is_best = val["acc"] > state["best_val_acc"]',
     'is_best = val["acc"] >= state["best_val_acc"]', ["test_grid.py", "test_selection.py"]),
    ("caltech/training/fit.py", "                saved = 0  # its first last.pth was the write that failed\n", "",
     ["test_nothing_stale.py"]),
    ("caltech/training/fit.py", 'or not split.describes(resume["hparams"].get("split_sha256", split.sha256))):',
     "):", ["test_nothing_stale.py", "test_train.py"]),
    ("caltech/training/fit.py", "validated = self.net if self.ema is None else self.ema.module",
     "validated = self.net", ["test_recipe.py"]),
    ("caltech/training/fit.py", "seed_everything(derive_seed(self.args.seed, epoch))",
     "seed_everything(self.args.seed)",
     ["test_train.py", "test_data.py"]),
    ("caltech/training/outputs.py", 'return patience > 0 and state["epoch"] - 1 - state["best_epoch"] >= patience',
     'return patience > 0 and state["epoch"] - state["best_epoch"] >= patience', ["test_patience.py"]),
    ("caltech/training/outputs.py", 'SHOWN = (*recipe.RECIPE, "num_classes", "split_sha256")',
     'SHOWN = (*recipe.RECIPE, "num_classes")', ["test_tensorboard.py"]),
    ("caltech/training/outputs.py",
     "        for folder in self.created:\n            shutil.rmtree(folder, ignore_errors=True)",
     "        pass", ["test_trust.py"]),
    ("caltech/training/tblog.py", "    differ = [name for name in hparams if len(seen.get(name, ())) > 1]",
     "    differ = []", ["test_tensorboard.py"]),
    ("caltech/training/evaluation.py", "        frame.to_csv(tmp, index=False, float_format=\"%.4f\", na_rep=\"nan\"",
     "        frame.to_csv(tmp, index=False, float_format=\"%.2f\", na_rep=\"nan\"",
     ["test_grid.py", "test_report.py"]),
    ("caltech/grid/trials.py", 'digest = hashlib.sha256(f"{self.settings_json}|{self.split}".encode())',
     'digest = hashlib.sha256(f"{self.settings_json}".encode())', ["test_trust.py"]),
    ("caltech/grid/trials.py", 'ascending=[False, True, True, False, True]',
     'ascending=[True, True, True, False, True]',
     ["test_grid.py"]),
    ("caltech/grid/trials.py", 'CONFIG = ["Epochs", "LR_FC", "LR_Base", "Scratch", "Recipe", "_recipe", "_split"]',
     'CONFIG = ["Epochs", "LR_FC", "LR_Base", "Scratch", "Recipe", "_recipe"]', ["test_nothing_stale.py"]),
    ("caltech/grid/trials.py", "    if not source.is_file():", "    if False:", ["test_nothing_stale.py"]),
    ("caltech/grid/results.py", "return (settings, split) if settings and split else None",
     "return (settings, '') if settings and split else None", ["test_trust.py", "test_nothing_stale.py"]),
    ("caltech/grid/results.py", "rows = [r for r in read_rows(path) if key is None or row_key(r) != key]",
     "rows = read_rows(path)", ["test_results_file.py"]),
    ("caltech/grid/results.py", "if row_key(r) is None or row_key(r) not in keys])",
     "if row_key(r) is not None and row_key(r) not in keys])", ["test_results_file.py"]),
    ("caltech/grid/results.py", "        if key is not None and key in seen:", "        if False:",
     ["test_results_file.py"]),
    ("caltech/grid/results.py", "        if settings and not isinstance(_json(settings), dict):", "        if False:",
     ["test_results_file.py"]),
    ("caltech/grid/results.py", "            if column in frame and not (cell == \"\" and column in LATER):",
     "            if False:", ["test_results_file.py", "test_report.py"]),
    ("caltech/grid/search.py", '                options.append(("weights_sha256", weights[targs.weights]))', "",
     ["test_results_file.py"]),
    ("caltech/grid/search.py", "            if distinct in seen:\n                continue", "",
     ["test_grid_product.py"]),
    ("caltech/grid/search.py", "                setattr(targs, key, defaults[key])", "                pass",
     ["test_grid_product.py"]),
    ("caltech/grid/search.py", '    check_file("--results", args.results)  # before the first run, not after the last',
     "", ["test_nothing_stale.py"]),
    ("caltech/grid/search.py", 'lrs = ([{"lr_fc": lr, "lr_base": lr} for lr in args.lr] if args.lr else',
     'lrs = ([{"lr_fc": lr, "lr_base": lr / 10} for lr in args.lr] if args.lr else', ["test_grid_product.py"]),
    ("caltech/grid/search.py", "            check_args(targs)\n", "", ["test_recipe_table.py", "test_trust.py"]),
    ("caltech/grid/search.py",
     'axes = [(k, getattr(args, k)) for k in OPTIONS] + [("epochs", args.epochs), ("lrs", lrs)]',
     'axes = [("epochs", args.epochs), ("lrs", lrs)] + [(k, getattr(args, k)) for k in OPTIONS]',
     ["test_grid_product.py"]),
    ("caltech/data/transforms.py", "pixels[k].copy_(view.flip(1) if flip else view)", "pixels[k].copy_(view)",
     ["test_precision.py"]),
    ("caltech/report/build.py", "        stale.unlink()", "        pass", ["test_nothing_stale.py"]),
    ("caltech/report/catalogue.py", '"Seed": catalogue.settings[run].get("seed", ""), "Split_SHA256": split,',
     '"Seed": catalogue.settings[run].get("seed", ""),', ["test_guards.py", "test_report.py"]),
    ("caltech/report/markdown.py", '    if recorded.get("other_split") is True:', "    if False:",
     ["test_nothing_stale.py"]),
    ("caltech/report/reproduce.py", "SPREAD = 2", "SPREAD = 3", ["test_report_sources.py"]),
    ("caltech/report/figures.py", "    if missing:", "    if False:", ["test_nothing_stale.py"]),
    ("report.py", "    path = Path(runs).parent / EVAL", "    path = Path(EVAL)", ["test_report_sources.py"]),
    ("evaluate.py", "    if other and not args.allow_other_split:", "    if False:", ["test_nothing_stale.py"]),
    ("predict.py", "    transform = eval_preset(eval_side(run), run.mean, run.std)",
     "    transform = eval_preset(run.image_size, run.mean, run.std)", ["test_recipe.py"]),
    ("split_dataset.py", '    check_folder("--out", args.out)', "", ["test_nothing_stale.py"]),
    ("train.py", "add_settings(parser, GROUPS)", 'add_settings(parser, [g for g in GROUPS if g != "options"])',
     ["test_readme.py", "test_recipe.py"]),
]


def run(tests):
    """pytest on `tests` (every test file when empty), stopping at the first failure; True if it failed."""
    paths = [str(ROOT / "tests" / t) for t in tests] or [str(ROOT / "tests")]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *paths],
                          cwd=ROOT, capture_output=True, text=True)
    return proc.returncode != 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="only the breaks whose file path contains this (default: all)")
    parser.add_argument("--list", action="store_true", help="list the breaks, run nothing (default: off)")
    parser.add_argument("numbers", nargs="*", type=int, help="only these breaks, by their number (default: all)")
    args = parser.parse_args()
    chosen = [(i, b) for i, b in enumerate(BREAKS, 1) if args.only in b[0] and (not args.numbers or i in args.numbers)]
    missed = []
    for number, (name, old, new, tests) in chosen:
        path = ROOT / name
        text = path.read_text()
        if text.count(old) != 1:
            sys.exit(f"break {number}: {name} holds {text.count(old)} copies of {old!r}, not one; update the list")
        if args.list:
            print(f"{number:3d} {name}: {old.strip()[:70]!r}")
            continue
        start = time.perf_counter()
        try:
            path.write_text(text.replace(old, new))
            caught = (run(tests) if tests else False) or run([])
        finally:
            path.write_text(text)
        print(f"{number:3d} {'caught' if caught else 'MISSED'} {time.perf_counter() - start:5.0f}s {name}: "
              f"{old.strip()[:60]!r}", flush=True)
        if not caught:
            missed.append(number)
    if not args.list:
        print(f"\n{len(chosen) - len(missed)} of {len(chosen)} breaks caught" +
              (f"; missed: {', '.join(map(str, missed))}" if missed else ""))
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
