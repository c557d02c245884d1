"""Shared fixtures: tiny generated datasets, a planted weights file, and no network ever."""
import os
import random
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REAL_DATA = ROOT.parent / "shared" / "caltech101" / "101_ObjectCategories"
ORIGINAL_RUNS = ROOT.parent / "shared" / "original_runs"
REAL_URLOPEN = urllib.request.urlopen  # for the one test that serves a download from localhost
# The model of the tests that check the wiring rather than the recipe: a small CNN (caltech.training.model.TinyCNN,
# 0.09 M parameters) whose checkpoints weigh about 1 MB, where ResNet-18's weigh 180 MB. Tests that pin the recipe
# or torchvision's models pass --model themselves.
TEST_MODEL = "tiny_cnn"

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One test process per core (pyproject.toml): one torch thread each, and in the scripts they start, since
    # OpenMP threads waiting for a core that another process holds slow a run many times over.
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


def make_image_folder(root, classes=("ant", "bee", "cat"), per_class=12, size=(48, 40), seed=0, grey_every=5):
    """Class folders of small JPEGs; each class has its own colour so a tiny model can learn it.

    Every `grey_every`-th image is greyscale (mode L), as 411 real Caltech images are.
    """
    rng = random.Random(seed)
    root = Path(root)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        base = np.array([(c * 97) % 256, (c * 57 + 80) % 256, (c * 31 + 160) % 256], dtype=np.float32)
        for i in range(per_class):
            noise = np.array([[rng.uniform(-40, 40) for _ in range(3)]], dtype=np.float32)
            pixels = np.clip(base + noise + np.random.default_rng(seed * 1000 + c * 100 + i)
                             .normal(0, 20, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
            img = Image.fromarray(pixels)
            if grey_every and i % grey_every == grey_every - 1:
                img = img.convert("L")
            img.save(root / name / f"image_{i + 1:04d}.jpg", quality=90)
    return root


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path_factory):
    """Every test runs with an empty private torch cache and no way to download anything."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))

    def refuse(*args, **kwargs):
        raise OSError("network disabled in tests")
    monkeypatch.setattr("urllib.request.urlopen", refuse)
    monkeypatch.setattr("torch.hub.download_url_to_file", refuse)


@pytest.fixture
def planted_weights(tmp_path):
    """A randomly initialised TEST_MODEL state dict with its 1000-class head, saved to a file: what --weights
    fine-tunes in the tests that check the wiring."""
    from caltech.training.model import TinyCNN
    torch.manual_seed(0)
    path = tmp_path / f"{TEST_MODEL}-random.pth"
    torch.save(TinyCNN().state_dict(), path)
    return path


@pytest.fixture
def planted_resnet18(tmp_path):
    """A randomly initialised torchvision resnet18 state dict (1000 classes) saved to a file: the published model,
    for the tests that pin the recipe or torchvision's weights."""
    from torchvision.models import resnet18
    torch.manual_seed(0)
    path = tmp_path / "resnet18-random.pth"
    torch.save(resnet18(weights=None).state_dict(), path)
    return path


@pytest.fixture(scope="session")
def tiny_split(tmp_path_factory):
    """A 4-class split of generated 48x40 JPEGs: 5 train, 3 val, 6 test per class. Read-only for tests."""
    from caltech.data.split import build_split, read_split
    base = tmp_path_factory.mktemp("tiny")
    make_image_folder(base / "src", classes=("ant", "bee", "cat", "dog"), per_class=14)
    build_split(base / "src", base / "split", seed=107, train_per_class=8, val_per_class=3)
    return read_split(base / "split")


def train_args(tmp_path, data, *flags):
    """train.py's parsed flags for a tiny CPU run writing under tmp_path."""
    import train
    model = [] if "--model" in flags else ["--model", TEST_MODEL]
    return train.get_args_parser().parse_args(
        ["--data", str(data), "--image-size", "32", "--batch-size", "8", "--device", "cpu", "--workers", "0",
         "--logdir", str(tmp_path / "runs"), "--ckpt-dir", str(tmp_path / "ckpt"), *model, *map(str, flags)])


def cpu_runtime(args):
    """The Runtime train.py decides for `args` on the CPU (its precision, memory format and eval batch)."""
    from caltech.training import runtime
    return runtime.decide(torch.device("cpu"), getattr(args, "amp", True), args.batch_size,
                          getattr(args, "eval_batch_size", None))


def read_scalars(run_dir):
    """{tag: [(step, value), ...]} from a run's event files, as TensorBoard resolves them, in step order (a resumed
    run's files written within one second may be read in either order; a repeated step stays visible)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: sorted(((e.step, e.value) for e in acc.Scalars(tag)), key=lambda point: point[0])
            for tag in acc.Tags()["scalars"]}


def run_script(script, *args, env=None, cwd=ROOT):
    """Run one of the top-level scripts as a user would; returns the CompletedProcess."""
    import subprocess
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=600)


def kill_on_call(monkeypatch, owner, name, n):
    """Make owner.name raise KeyboardInterrupt (a Ctrl-C or kill) on its n-th call; returns the calls' args.

    Pass a `pytest.MonkeyPatch.context()` to end the patch early.
    """
    real = getattr(owner, name)
    calls = []

    def wrapper(*args, **kwargs):
        calls.append(args)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real(*args, **kwargs)
    monkeypatch.setattr(owner, name, wrapper)
    return calls


def grid_flags(out, data, *extra):
    """grid_search.py flags for a tiny 1-epoch scratch CPU grid of TEST_MODEL writing everything under `out`."""
    model = [] if "--model" in extra else ["--model", TEST_MODEL]
    return ["--data", str(data), "--image-size", "32", "--batch-size", "8", "--device", "cpu", "--workers", "0",
            "--logdir", str(out / "runs"), "--ckpt-dir", str(out / "ckpt"), "--results", str(out / "results.csv"),
            "--scratch", "--epochs", "1", "--lr-fc", "1e-3", *model, *map(str, extra)]


def read_rows(path):
    """The rows of a CSV file as dicts of strings."""
    import csv
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def planned_validation(monkeypatch, accuracies):
    """Make the validation accuracy of epoch e `accuracies[e]`; the rest of every pass is real."""
    from caltech.training import engine
    real = engine.evaluate

    def evaluate_(model, loader, criterion, rt, num_classes, desc="eval", **kwargs):
        meter = real(model, loader, criterion, rt, num_classes, desc=desc, **kwargs)
        if not desc.endswith(" val"):
            return meter
        summary = {**meter.summary(), "acc": accuracies[int(desc.split()[1].split("/")[0]) - 1]}
        return type("PlannedMeter", (), {"summary": lambda self: summary})()
    monkeypatch.setattr(engine, "evaluate", evaluate_)
