"""Where everything lives: the one home of the folder layout (README, "Data and outputs").

    data/caltech101_split/          the split (DEFAULT_SPLIT); data/cache/ beside it (cache_dir)
    runs/RUN/                       TensorBoard events and hparams.json (LOGDIR)
    checkpoints/RUN/                best.pth, last.pth, metrics.json (CKPT_DIR; run_paths)
    checkpoints/best.pth            the grid's choice (chosen_path), best_scratch.pth from scratch
    grid_search_results.csv         the grid's rows (DEFAULT_RESULTS)
"""
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SPLIT = "data/caltech101_split"  # where split_dataset.py writes and train.py looks, unless told otherwise
CACHE = "cache"  # the cached loader's folder, beside the split folder
LOGDIR = "runs"  # the TensorBoard root: one folder per run
CKPT_DIR = "checkpoints"  # the checkpoint root: one folder per run, the same name
# the grid's choice on validation, copied into CKPT_DIR: what evaluate.py and predict.py read by default
CHOSEN = {False: "best.pth", True: "best_scratch.pth"}  # fine-tuned, from scratch
DEFAULT_RESULTS = "grid_search_results.csv"  # the grid's results CSV
EVAL = "eval"  # evaluate.py --out tables, looked for beside --runs by report.py
REPORTS = "reports"  # report.py's figures and RESULTS.md


@dataclass(frozen=True)
class RunPaths:
    """Where run RUN keeps its files: CKPT_DIR/RUN/{last,best}.pth and metrics.json, LOGDIR/RUN/hparams.json
    beside its TensorBoard events."""
    ckpt_dir: Path
    logdir: Path

    @property
    def last(self):
        return self.ckpt_dir / "last.pth"

    @property
    def best(self):
        return self.ckpt_dir / "best.pth"

    @property
    def metrics(self):
        return self.ckpt_dir / "metrics.json"

    @property
    def hparams(self):
        return self.logdir / "hparams.json"


def run_paths(run_name, ckpt_dir=CKPT_DIR, logdir=LOGDIR):
    return RunPaths(Path(ckpt_dir) / run_name, Path(logdir) / run_name)


def cache_dir(data_dir):
    """Where a split's caches go unless --cache-dir says otherwise: cache/ beside the split folder."""
    return str(Path(data_dir).parent / CACHE)


def chosen_path(results, ckpt_dir, scratch):
    """Where a grid keeps its chosen run's best.pth: CKPT_DIR/best.pth (best_scratch.pth) for the default results
    file, which evaluate.py and predict.py read by default; beside any other results file, named after it
    (other.csv: other_best.pth), so that a throwaway grid never replaces the real grid's choice."""
    name = CHOSEN[bool(scratch)]
    results = Path(results)
    if results.resolve() == Path(DEFAULT_RESULTS).resolve():
        return Path(ckpt_dir) / name
    return results.with_name(f"{results.stem}_{name}")
