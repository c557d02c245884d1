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
    """The presets' deterministic resize of an RGB PIL image, as an HxWx3 uint8 array (what the cache holds)."""
    return np.asarray(F.resize(img, [side, side]), dtype=np.uint8)


def random_crop_flip(images, size, generator):
    """Per-sample random crop and horizontal flip of a uint8 NHWC batch, as one gather.

    Offsets are uniform over every valid position and flips have probability 1/2, drawn from
    `generator` (on the CPU, so the stream is the same on every device): the distribution of
    torchvision's RandomCrop + RandomHorizontalFlip.
    """
    n, h, w, _ = images.shape
    top = torch.randint(0, h - size + 1, (n,), generator=generator)
    left = torch.randint(0, w - size + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    steps = torch.arange(size)
    rows = top[:, None] + steps
    cols = left[:, None] + torch.where(flip[:, None], steps.flip(0), steps)
    batch = torch.arange(n)[:, None, None]
    index = [t.to(images.device) for t in (batch, rows[:, :, None], cols[:, None, :])]
    return images[index[0], index[1], index[2]]


class BatchTransform:
    """uint8 NHWC batch -> normalised float NCHW; random crop + flip first when `crop` is set."""

    def __init__(self, device, crop=None, channels_last=False):
        self.crop = crop
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
        # ToTensor then Normalize, folded into one multiply-add: x * scale + shift.
        self.scale = 1.0 / (255.0 * std)
        self.shift = -torch.tensor(MEAN, device=device).view(1, 3, 1, 1) / std

    def __call__(self, images, generator=None):
        if self.crop is not None:
            images = random_crop_flip(images, self.crop, generator)
        x = images.permute(0, 3, 1, 2).float()
        return (x * self.scale + self.shift).contiguous(memory_format=self.memory_format)
