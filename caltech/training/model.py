"""The network: a torchvision classification model (ResNet-18 by default) with a new head for the
split's classes, ImageNet weights or random initialisation.

    build_model(101)                                            # the published ResNet-18, ImageNet weights
    build_model(101, name="efficientnet_b0", pretrained=False)  # any model of torchvision's registry, random init
    build_model(4, name="tiny_cnn", pretrained=False)           # a small CNN, for tests and smoke runs

The model is built with `torchvision.models.get_model(name, weights=None)` and its ImageNet state dict
loaded afterwards, from torchvision's cache (downloading when it can) or a local file, so that both
roads and offline use behave alike. Its ImageNet classifier, found generically, is then replaced.
"""
import difflib
import re
import urllib.error
from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision.models import get_model, get_model_weights, list_models

from ..data.transforms import MEAN, STD
from ..recipe import MIN_IMAGE_SIZE, SETTINGS
from ..utils import UserError
from . import checkpoint, runtime

DEFAULT_MODEL = SETTINGS["model"].default  # with its DEFAULT weights, IMAGENET1K_V1: the published model
IMAGENET_CLASSES = 1000
EXAMPLES = ("resnet18", "resnet50", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny", "vit_b_16")
AUX_MODELS = ("googlenet", "inception_v3")  # models with auxiliary classifiers in training
# densenet weights predate dots being banned in module names: torchvision renames these keys on load
DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


class TinyCNN(nn.Module):
    """Three strided 3x3 convolutions and a linear head, about 0.09 M parameters (ResNet-18: 11.7 M): the model of
    the tests and smoke runs that check the wiring rather than the recipe. No ImageNet weights exist for it, so
    fine-tuning it needs --weights (a state dict of it with its 1000-class head)."""

    def __init__(self, num_classes=IMAGENET_CLASSES):
        super().__init__()
        layers = []
        for width_in, width in ((3, 16), (16, 32), (32, 64)):
            layers += [nn.Conv2d(width_in, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))


LOCAL_MODELS = {"tiny_cnn": TinyCNN}  # beside torchvision's registry: models without torchvision weights


def model_names():
    """The classification models of torchvision's registry (no detection, video or quantized ones) and ours."""
    return list_models(module=torchvision.models) + list(LOCAL_MODELS)


def resolve_weights(name=DEFAULT_MODEL, weights_name=None):
    """The torchvision weights of model `name`: the member `weights_name` of its enum, else its DEFAULT; None for
    a model of ours, which has none."""
    names = model_names()
    if name not in names:
        near = difflib.get_close_matches(name, names, n=4, cutoff=0.6) or EXAMPLES
        raise UserError(f"--model {name} is not a classification model of torchvision's registry; valid names "
                        f"include {', '.join(near)} (all {len(names)}: torchvision.models.list_models("
                        f"module=torchvision.models))")
    if name in LOCAL_MODELS:
        if weights_name is not None:
            raise UserError(f"--weights-name {weights_name}: {name} has no torchvision weights")
        return None
    enum = get_model_weights(name)
    if weights_name is None:
        return enum.DEFAULT
    try:
        return enum[weights_name]
    except KeyError:
        raise UserError(f"--weights-name {weights_name} is not one of {name}'s weights "
                        f"({', '.join(w.name for w in enum)})") from None


def preprocessing(name=DEFAULT_MODEL, weights_name=None):
    """(eval side, mean, std) of the weights' own preprocessing: (224, ImageNet's) for ResNet-18.

    Only these three are taken from torchvision: the resize geometry stays the published one for
    every model (square resizes, random crop for training), so that the cache and both loaders hold. A model
    without weights gets ResNet-18's."""
    weights = resolve_weights(name, weights_name)
    if weights is None:
        return 224, MEAN, STD
    preset = weights.transforms()
    return preset.crop_size[0], tuple(preset.mean), tuple(preset.std)


def cached_weights_path(name=DEFAULT_MODEL, weights_name=None):
    """Where torchvision keeps the downloaded ImageNet weights ($TORCH_HOME/hub/checkpoints/<file of the URL>)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(resolve_weights(name, weights_name).url).name


def load_imagenet_state(weights=None, name=DEFAULT_MODEL, weights_name=None):
    """The 1000-class torchvision state dict of model `name`: from `weights`, else torchvision's cache/download."""
    if weights is None and name in LOCAL_MODELS:
        raise UserError(f"{name} has no ImageNet weights to download; pass --weights PATH (a state dict of it with "
                        f"its {IMAGENET_CLASSES}-class head) or use --scratch")
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise UserError(f"--weights {path} does not exist")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # pickle, zip and EOF errors all mean the same thing to the user
            raise UserError(f"--weights {path} is not a readable PyTorch state dict ({type(e).__name__})") from None
        return state.get("state_dict", state) if isinstance(state, dict) else state
    member = resolve_weights(name, weights_name)
    try:
        return member.get_state_dict(progress=True, check_hash=True)
    except (urllib.error.URLError, OSError, RuntimeError) as e:
        raise UserError(
            f"could not load the ImageNet weights of {name} ({type(e).__name__}: {e}). Either pass "
            f"--weights PATH to a torchvision {name} state dict, or put {Path(member.url).name} "
            f"(from {member.url}) at {cached_weights_path(name, weights_name)} (torchvision's cache; set "
            f"TORCH_HOME to move it), or use --scratch") from None


def min_image_size(model, weights_name=None):
    """The smallest --image-size `model` takes: MIN_IMAGE_SIZE, or more where torchvision's weights say so
    (Inception: 75); ViTs are resized to any multiple of their patch (arch_kwargs)."""
    weights = resolve_weights(model, weights_name)
    if weights is None or model.startswith(("vit_", "maxvit_")):
        return MIN_IMAGE_SIZE
    return max(MIN_IMAGE_SIZE, *weights.meta.get("min_size", (0, 0)))


def arch_kwargs(name, image_size=None, pretrained=True):
    """Builder arguments that make the architecture fit this use; the same for training and for rebuilding."""
    kwargs = {}
    if image_size and name.startswith("vit_"):  # position embeddings are sized for the input
        kwargs["image_size"] = image_size
    if image_size and name.startswith("maxvit_"):
        kwargs["input_size"] = (image_size, image_size)
    if name in AUX_MODELS:
        # One output in training too (the loop has no auxiliary losses); their ImageNet weights expect
        # transform_input, which torchvision's own builders switch on with them.
        kwargs.update(aux_logits=False, transform_input=pretrained, init_weights=not pretrained)
    return kwargs


def fit_state(state, name, model):
    """The ImageNet state dict adapted as torchvision's builders adapt it: old densenet key names,
    no auxiliary classifiers, ViT position embeddings interpolated to the model's image size."""
    if not isinstance(state, dict):
        return state
    state = dict(state)
    if name.startswith("densenet"):
        state = {DENSENET_KEY.sub(r"\1\2", k): v for k, v in state.items()}
    if name in AUX_MODELS:
        state = {k: v for k, v in state.items() if not k.startswith(("aux1.", "aux2.", "AuxLogits."))}
    pos = state.get("encoder.pos_embedding")
    if name.startswith("vit_") and isinstance(pos, torch.Tensor) and pos.shape != model.encoder.pos_embedding.shape:
        from torchvision.models.vision_transformer import interpolate_embeddings
        state = interpolate_embeddings(model.image_size, model.patch_size, state)
    return state


def replace_head(model, num_classes, dropout=0.0):
    """Replace the model's ImageNet classifier by a new layer for `num_classes` (after a dropout of `dropout`, if
    any); returns its module name.

    The classifier is the last layer with 1000 outputs: ResNet's `fc`, `classifier[-1]` of EfficientNet,
    MobileNet, ConvNeXt and VGG, ViT's `heads.head`, Swin's `head`, SqueezeNet's 1x1 convolution. Its
    name is kept as `model.head_name` for param_groups."""
    found = [(n, m) for n, m in model.named_modules()
             if isinstance(m, nn.Linear) and m.out_features == IMAGENET_CLASSES
             or isinstance(m, nn.Conv2d) and m.out_channels == IMAGENET_CLASSES and m.kernel_size == (1, 1)]
    if not found:
        raise UserError(f"{type(model).__name__} has no layer with {IMAGENET_CLASSES} outputs to replace by a new head")
    name, old = found[-1]
    bias = old.bias is not None
    new = (nn.Linear(old.in_features, num_classes, bias=bias) if isinstance(old, nn.Linear)
           else nn.Conv2d(old.in_channels, num_classes, 1, bias=bias))
    if dropout:
        new = nn.Sequential(nn.Dropout(dropout), new)
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent), child, new)
    model.head_name = name
    return name


def build_model(num_classes, pretrained=True, weights=None, name=DEFAULT_MODEL, weights_name=None, image_size=None,
                load_weights=True, dropout=0.0):
    """Model `name` (ResNet-18 by default) with its head replaced for `num_classes`.

    `pretrained`: the ImageNet-initialised network (fine-tuning), else a randomly initialised one (from
    scratch); for a few models the two differ in architecture too (Inception's input transform).
    `load_weights`: load the ImageNet weights now, from `weights` (a file) or torchvision's cache;
    False builds the same network without loading anything, for weights that come next from one of
    our checkpoints."""
    resolve_weights(name, weights_name)  # an unknown name fails here, in one sentence
    try:
        model = LOCAL_MODELS[name]() if name in LOCAL_MODELS else \
            get_model(name, weights=None, **arch_kwargs(name, image_size, pretrained))
    except (AssertionError, ValueError, RuntimeError) as e:  # e.g. a ViT image size that is no multiple of its patch
        raise UserError(f"{name} cannot be built for --image-size {image_size} ({str(e).strip()})") from None
    if pretrained and load_weights:
        state = load_imagenet_state(weights, name, weights_name)
        try:
            model.load_state_dict(fit_state(state, name, model))
        except (RuntimeError, TypeError, AttributeError, ValueError, KeyError) as e:
            first = str(e).strip().splitlines()[0]
            raise UserError(f"the ImageNet weights are not a torchvision {name} state dict ({first})") from None
    replace_head(model, num_classes, dropout)
    return model


def from_checkpoint(ckpt, path):
    """The trained model of checkpoint `ckpt` (read from `path`), rebuilt from its settings alone:
    nothing is downloaded."""
    run, n = checkpoint.settings(ckpt), len(ckpt["classes"])
    if run.model not in model_names():
        raise UserError(f"{path} holds a {run.model}, a model this version of torchvision does not have")
    model = build_model(n, pretrained=not run.scratch, name=run.model, weights_name=run.weights_name,
                        image_size=run.image_size, load_weights=False, dropout=run.dropout)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError:
        raise UserError(f"{path}'s weights do not fit a {run.model} with {n} classes") from None
    return model


def load_for_inference(name, device=None, eval_batch_size=None):
    """evaluate.py's and predict.py's start: checkpoint `name` (checkpoint.resolve) read safely, its settings
    (checkpoint.settings), its model rebuilt on the device in the run's memory format, and the Runtime
    (runtime.decide) with the run's precision and eval batch unless `eval_batch_size` is given.
    Returns (path, checkpoint, settings, model, runtime)."""
    path = checkpoint.resolve(name)
    ckpt = checkpoint.load(path)
    run = checkpoint.settings(ckpt)
    rt = runtime.decide(device, run.amp, run.batch_size, eval_batch_size or run.eval_batch_size)
    model = from_checkpoint(ckpt, path)
    model.to(rt.device, memory_format=rt.memory_format)
    return path, ckpt, run, model, rt


def param_groups(model, lr_fc, lr_base):
    """Two optimizer groups: "fc", the new head (ResNet's `fc`; `model.head_name` for any model), at lr_fc,
    and "base", every other (pretrained) parameter, at lr_base."""
    head = list(model.get_submodule(getattr(model, "head_name", "fc")).parameters())
    head_ids = {id(p) for p in head}
    base = [p for p in model.parameters() if id(p) not in head_ids]
    return [{"params": base, "lr": lr_base, "name": "base"}, {"params": head, "lr": lr_fc, "name": "fc"}]
