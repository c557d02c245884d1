"""ResNet-18 with a new `fc` for the split's classes, ImageNet weights or random initialisation."""
import urllib.error
from pathlib import Path

import torch
from torch import nn
from torchvision.models import ResNet18_Weights, resnet18

from .utils import UserError

WEIGHTS = ResNet18_Weights.IMAGENET1K_V1


def cached_weights_path():
    """Where torchvision keeps the downloaded ImageNet weights ($TORCH_HOME/hub/checkpoints/...)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(WEIGHTS.url).name


def load_imagenet_state(weights=None):
    """The 1000-class torchvision ResNet-18 state dict: from `weights`, else torchvision's cache/download."""
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise UserError(f"--weights {path} does not exist")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # pickle, zip and EOF errors all mean the same thing to the user
            raise UserError(f"--weights {path} is not a readable PyTorch state dict ({type(e).__name__})") from None
        return state.get("state_dict", state) if isinstance(state, dict) else state
    try:
        return WEIGHTS.get_state_dict(progress=True, check_hash=True)
    except (urllib.error.URLError, OSError, RuntimeError) as e:
        raise UserError(
            f"could not load the ImageNet weights ({type(e).__name__}: {e}). Either pass "
            f"--weights PATH to a torchvision resnet18 state dict, or put {Path(WEIGHTS.url).name} "
            f"(from {WEIGHTS.url}) at {cached_weights_path()} (torchvision's cache; set TORCH_HOME "
            f"to move it), or use --scratch") from None


def build_model(num_classes, scratch=False, weights=None):
    """ResNet-18; unless `scratch`, ImageNet weights first; then `fc` replaced for `num_classes`."""
    model = resnet18(weights=None)
    if not scratch:
        state = load_imagenet_state(weights)
        try:
            model.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as e:
            first = str(e).strip().splitlines()[0]
            raise UserError(f"the ImageNet weights are not a torchvision resnet18 state dict ({first})") from None
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def param_groups(model, lr_fc, lr_base):
    """Two Adam groups: the new `fc` at lr_fc, every other (pretrained) parameter at lr_base."""
    fc = list(model.fc.parameters())
    fc_ids = {id(p) for p in fc}
    base = [p for p in model.parameters() if id(p) not in fc_ids]
    return [{"params": base, "lr": lr_base, "name": "base"}, {"params": fc, "lr": lr_fc, "name": "fc"}]
