"""Shared fixtures: tiny generated datasets, a planted weights file, and no network ever."""
import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REAL_DATA = ROOT.parent / "shared" / "caltech101" / "101_ObjectCategories"
ORIGINAL_RUNS = ROOT.parent / "shared" / "original_runs"


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
    """A randomly initialised torchvision resnet18 state dict (1000 classes) saved to a file."""
    from torchvision.models import resnet18
    torch.manual_seed(0)
    path = tmp_path / "resnet18-random.pth"
    torch.save(resnet18(weights=None).state_dict(), path)
    return path
