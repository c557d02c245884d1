"""The published transforms, as named presets shared by training, evaluation and the cache.

Train: resize to 256x256, random 224 crop, random horizontal flip, ImageNet normalisation.
Eval:  resize to 224x224 (a square resize, not resize-and-centre-crop: that is what was published).
`image_size` scales both (train resize = round(image_size * 256 / 224)). `mean` and `std` are
ImageNet's unless a model's weights were trained with others (caltech.training.model.preprocessing).

Options (off by default), both after the same 256x256 resize so that the cache stays exact:
`crop="resized"` replaces the random crop by torchvision's RandomResizedCrop (scale, ratio), and
`auto_augment` ("trivial" or "randaugment") applies torchvision's TrivialAugmentWide / RandAugment
after crop and flip, as torchvision's classification reference does.

Two equivalent implementations:
- PIL presets (`train_preset`, `eval_preset`) for the `--loader pil` path, per image in workers;
- `resize_uint8` + `BatchTransform`: the deterministic resize once (its uint8 result is cached),
  then crop, flip and normalisation on whole batches on the training device. The resized crop is
  one `torchvision.ops.roi_align` call per batch; the augmentation policy runs per image on uint8.
"""
import math

import numpy as np
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as F
import torchvision.transforms.v2 as v2
from torchvision.ops import roi_align

from ..recipe import SETTINGS

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def resize_sizes(image_size):
    """(train resize side, eval side = crop side) for a given crop size; (256, 224) at 224."""
    return round(image_size * 256 / 224), image_size


CROPS = SETTINGS["train_crop"].choices
AUTO_AUGMENT = SETTINGS["auto_augment"].choices
RATIO = (3 / 4, 4 / 3)  # RandomResizedCrop's default aspect-ratio range


def auto_augment_policy(name):
    """torchvision's policy for `name` (None for "none"): works on PIL images and uint8 tensors alike."""
    if name == "trivial":
        return v2.TrivialAugmentWide()
    if name == "randaugment":
        return v2.RandAugment()
    if name not in (None, "none"):
        raise ValueError(f"unknown auto-augment policy {name!r}; choose from {AUTO_AUGMENT}")
    return None


def train_preset(image_size=224, crop="random", min_scale=0.08, auto_augment="none", mean=MEAN, std=STD):
    resize, size = resize_sizes(image_size)
    cropper = T.RandomCrop(size) if crop == "random" else T.RandomResizedCrop(size, scale=(min_scale, 1.0),
                                                                               ratio=RATIO, antialias=True)
    policy = auto_augment_policy(auto_augment)
    return T.Compose([T.Resize((resize, resize)), cropper, T.RandomHorizontalFlip(), *([policy] if policy else []),
                      T.ToTensor(), T.Normalize(mean, std)])


def eval_preset(image_size=224, mean=MEAN, std=STD):
    return T.Compose([T.Resize((image_size, image_size)), T.ToTensor(), T.Normalize(mean, std)])


def resize_uint8(img, side):
    """The presets' deterministic resize of an RGB PIL image, as a 3xHxW uint8 array (what the cache holds).

    Channels first, so that a crop copies whole rows of one channel into the float batch."""
    return np.asarray(F.resize(img, [side, side]), dtype=np.uint8).transpose(2, 0, 1)


def crop_flip_params(n, side, size, generator):
    """Per-sample crop offsets, uniform over every valid position, and flips with probability 1/2:
    the distribution of torchvision's RandomCrop + RandomHorizontalFlip. Drawn from a CPU
    `generator`, so the augmentation stream is the same on every device."""
    top = torch.randint(0, side - size + 1, (n,), generator=generator)
    left = torch.randint(0, side - size + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    return top, left, flip


def gather_crops(images, index, params, size):
    """Crops (flipped where asked) of images[index] from a uint8 NCHW tensor, as one gather: for GPUs."""
    top, left, flip = (t.to(images.device) for t in params)
    steps = torch.arange(size, device=images.device)
    rows = top[:, None] + steps
    cols = left[:, None] + torch.where(flip[:, None], steps.flip(0), steps)
    channels = torch.arange(images.shape[1], device=images.device)
    return images[index.to(images.device)[:, None, None, None], channels[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]


def resized_crop_params(n, side, min_scale, generator, ratio=RATIO, attempts=10):
    """Per-sample (top, left, height, width) boxes of a side x side image, and flips with probability
    1/2: RandomResizedCrop.get_params' distribution (up to `attempts` draws of area and log-ratio, the
    first that fits wins, else the whole image), vectorised over the batch and drawn from `generator`."""
    area = side * side
    scale = torch.empty(n, attempts).uniform_(min_scale, 1.0, generator=generator)
    log_ratio = torch.empty(n, attempts).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator)
    aspect = torch.exp(log_ratio)
    w = torch.round(torch.sqrt(area * scale * aspect)).long()
    h = torch.round(torch.sqrt(area * scale / aspect)).long()
    fits = (w > 0) & (w <= side) & (h > 0) & (h <= side)
    first = fits.int().argmax(dim=1)  # the first attempt that fits (0 when none does: masked below)
    w, h = w.gather(1, first[:, None])[:, 0], h.gather(1, first[:, None])[:, 0]
    found = fits.any(dim=1)
    # the fallback for a square image with 1 inside the ratio range: the whole image
    w, h = torch.where(found, w, side), torch.where(found, h, side)
    top = (torch.rand(n, generator=generator) * (side - h + 1)).floor().long()
    left = (torch.rand(n, generator=generator) * (side - w + 1)).floor().long()
    flip = torch.rand(n, generator=generator) < 0.5
    return top, left, h, w, flip


def resized_crops(images, params, size):
    """Bilinear crops (flipped where asked) of a uint8 NCHW batch, resized to size x size, as float
    0-255: one roi_align call (continuous pixel boxes, `aligned=True`), adaptive sampling for antialiasing."""
    top, left, h, w, flip = (t.to(images.device) for t in params)
    boxes = torch.stack([torch.arange(len(top), device=images.device), left, top, left + w, top + h], dim=1)
    x = roi_align(images.float(), boxes.float(), output_size=size, spatial_scale=1.0, sampling_ratio=-1,
                  aligned=True)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


class BatchTransform:
    """images[index] of a uint8 NCHW tensor -> normalised float NCHW on the images' device.

    With `crop`, each image is randomly cropped and flipped first (crop_flip_params); without, it
    is used whole. On the GPU one gather does it; on the CPU a copy per image straight into the
    float batch is several times faster than fancy indexing (from an NHWC source into a channels_last
    batch, row by row: `from_nhwc`). With `resized` (a minimum scale), the
    crop is a RandomResizedCrop instead; with `policy`, an auto-augment policy follows per image.
    """

    def __init__(self, device, crop=None, channels_last=False, resized=None, policy=None, mean=MEAN, std=STD,
                 one_gather=None):
        self.crop, self.resized, self.policy = crop, resized, policy
        # the GPU's one-gather path (default: off the CPU); forcing it on the CPU lets tests run it
        self.one_gather = torch.device(device).type != "cpu" if one_gather is None else one_gather
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        std = torch.tensor(std, device=device).view(1, 3, 1, 1)
        # ToTensor then Normalize, folded into one multiply-add: x * scale + shift.
        self.scale = 1.0 / (255.0 * std)
        self.shift = -torch.tensor(mean, device=device).view(1, 3, 1, 1) / std
        self.pixel_norm = {}  # crop side -> (scale, shift) per pixel of an NHWC image, for channels_last sources

    def __call__(self, images, index, generator=None):
        if self.crop and (self.resized or self.policy):
            return self.augmented(images, index, generator)
        n, side = len(index), images.shape[2]
        size = self.crop or side
        params = crop_flip_params(n, side, size, generator) if self.crop else None
        if self.one_gather:
            x = gather_crops(images, index, params, size) if params else images[index.to(images.device)]
            return x.float().mul_(self.scale).add_(self.shift).contiguous(memory_format=self.memory_format)
        # per image: (cache index, top, left, flip)
        crops = zip(index.tolist(), *([p.tolist() for p in params] if params else ([0] * n, [0] * n, [False] * n)),
                    strict=True)
        if self.memory_format == torch.channels_last and images.is_contiguous(memory_format=torch.channels_last):
            return self.from_nhwc(images, crops, n, size)
        # Filled contiguous, one block per image, and converted to channels_last once: copying each image
        # into a channels_last batch went one strided channel slice at a time, 4x slower.
        x = torch.empty((n, 3, size, size))
        scale, shift = self.scale[0], self.shift[0]
        for k, (i, top, left, flip) in enumerate(crops):
            view = images[i, :, top:top + size, left:left + size]
            # normalised image by image while it is still in cache: faster than a pass over the batch
            x[k].copy_(view.flip(2) if flip else view).mul_(scale).add_(shift)
        return x.contiguous(memory_format=self.memory_format)

    def from_nhwc(self, images, crops, n, size):
        """The CPU path for a channels_last source (CachedLoader's training cache): each crop's pixel rows are
        copied straight into the channels_last batch, which is then normalised in its own memory order with
        per-pixel factors (a (1, 3, 1, 1) factor over NHWC memory has an inner loop of 3). The same values as
        the NCHW path, without its final conversion of the whole batch."""
        x = torch.empty((n, 3, size, size), memory_format=torch.channels_last)
        pixels = x.permute(0, 2, 3, 1)  # the batch's memory in its own order: (n, size, size, 3)
        for k, (i, top, left, flip) in enumerate(crops):
            view = images[i, :, top:top + size, left:left + size].permute(1, 2, 0)
            pixels[k].copy_(view.flip(1) if flip else view)
        if size not in self.pixel_norm:
            self.pixel_norm[size] = tuple(f[0].permute(1, 2, 0).expand(size, size, 3).contiguous()
                                          for f in (self.scale, self.shift))
        scale, shift = self.pixel_norm[size]
        pixels.mul_(scale).add_(shift)
        return x

    def augmented(self, images, index, generator):
        """The optional augmentations: crop (resized or not) and flip, then the policy per uint8 image.

        The policy draws from torch's global generator (seeded per epoch by the training loop), as
        it does on the PIL path."""
        n, side = len(index), images.shape[2]
        batch = images[index.to(images.device)]
        if self.resized:
            x = resized_crops(batch, resized_crop_params(n, side, self.resized, generator), self.crop)
            if self.policy:
                x = x.round_().clamp_(0, 255).to(torch.uint8)  # what PIL's resize hands the policy
        else:
            x = gather_crops(batch, torch.arange(n), crop_flip_params(n, side, self.crop, generator), self.crop)
        if self.policy:
            x = torch.stack([self.policy(img) for img in x])
        return x.float().mul_(self.scale).add_(self.shift).contiguous(memory_format=self.memory_format)
