"""The published transforms, as named presets shared by training, evaluation and the cache.

Train: resize to 256x256, random 224 crop, random horizontal flip, ImageNet normalisation.
Eval:  resize to 224x224 (a square resize, not resize-and-centre-crop: that is what was published).
`image_size` scales both (train resize = round(image_size * 256 / 224)).

Two equivalent implementations:
- PIL presets (`train_preset`, `eval_preset`) for the `--loader pil` path, per image in workers;
- `resize_uint8` + `BatchTransform`: the deterministic resize once (its uint8 result is cached),
  then crop, flip and normalisation on whole batches on the training device.
"""
import numpy as np
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as F

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def resize_sizes(image_size):
    """(train resize side, eval side = crop side) for a given crop size; (256, 224) at 224."""
    return round(image_size * 256 / 224), image_size


def train_preset(image_size=224):
    resize, crop = resize_sizes(image_size)
    return T.Compose([T.Resize((resize, resize)), T.RandomCrop(crop), T.RandomHorizontalFlip(),
                      T.ToTensor(), T.Normalize(MEAN, STD)])


def eval_preset(image_size=224):
    return T.Compose([T.Resize((image_size, image_size)), T.ToTensor(), T.Normalize(MEAN, STD)])


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


def random_crop_flip(images, size, generator):
    """Random crop + horizontal flip of every image of a uint8 NCHW batch."""
    params = crop_flip_params(images.shape[0], images.shape[2], size, generator)
    return gather_crops(images, torch.arange(images.shape[0]), params, size)


class BatchTransform:
    """images[index] of a uint8 NCHW tensor -> normalised float NCHW on the images' device.

    With `crop`, each image is randomly cropped and flipped first (crop_flip_params); without, it
    is used whole. On the GPU one gather does it; on the CPU a copy per image straight into the
    float batch is several times faster than fancy indexing.
    """

    def __init__(self, device, crop=None, channels_last=False):
        self.crop = crop
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
        # ToTensor then Normalize, folded into one multiply-add: x * scale + shift.
        self.scale = 1.0 / (255.0 * std)
        self.shift = -torch.tensor(MEAN, device=device).view(1, 3, 1, 1) / std

    def __call__(self, images, index, generator=None):
        n, side = len(index), images.shape[2]
        size = self.crop or side
        params = crop_flip_params(n, side, size, generator) if self.crop else None
        if images.device.type != "cpu":
            x = gather_crops(images, index, params, size) if params else images[index.to(images.device)]
            return x.float().mul_(self.scale).add_(self.shift).contiguous(memory_format=self.memory_format)
        x = torch.empty((n, 3, size, size), memory_format=self.memory_format)
        scale, shift = self.scale[0], self.shift[0]
        offsets = [p.tolist() for p in params] if params else ([0] * n, [0] * n, [False] * n)
        for k, (i, top, left, flip) in enumerate(zip(index.tolist(), *offsets, strict=True)):
            view = images[i, :, top:top + size, left:left + size]
            # normalised image by image while it is still in cache: faster than a pass over the batch
            x[k].copy_(view.flip(2) if flip else view).mul_(scale).add_(shift)
        return x
