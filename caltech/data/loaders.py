"""Loaders that yield ready batches `(images, labels)` on the training device, one per split.

Two interchangeable paths (`--loader`):
- `cached` (default): uint8 images resized once into a memory-mapped cache (caltech.data.cache), then
  gathered, cropped, flipped and normalised per batch on the device (on the GPU when there is one).
- `pil`: the classic Dataset of files + PIL transforms in DataLoader workers. Needs no cache.

Each split gets its own transform, so training augments and evaluation never does (the published
code set `.transform` on Subsets sharing one ImageFolder: its training set got the eval transform).
Call `set_epoch(e)` before iterating: the shuffle and the augmentation are seeded per epoch, which
makes a resumed run identical to an uninterrupted one.
"""
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..utils import UserError, derive_seed
from . import cache
from .images import UNREADABLE, open_rgb
from .transforms import MEAN, STD, BatchTransform, auto_augment_policy, eval_preset, resize_sizes, train_preset


class ImageList(Dataset):
    """(path, label) pairs read with PIL and passed through `transform`."""

    def __init__(self, samples, transform):
        self.samples, self.transform = samples, transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        path, label = self.samples[i]
        try:
            return self.transform(open_rgb(path)), label
        except UNREADABLE as e:
            raise UserError(f"could not decode {path} ({e}); rebuild the split with split_dataset.py") from None


class CachedLoader:
    """Batches from a uint8 NCHW array; augmentation (if any) runs batched on `device`."""

    def __init__(self, images, labels, batch_size, device, seed, train, crop, channels_last=False,
                 on_device=False, resized=None, policy=None, mean=MEAN, std=STD):
        self.images = torch.from_numpy(images)
        if on_device:  # a few hundred MB of uint8: gathering on the GPU beats any host pipeline
            self.images = self.images.to(device)
        elif train and channels_last and not resized and not policy:
            # stored NHWC once (the training cache is in memory anyway): each crop is then copied into the
            # channels_last batch row by row, 1.4x the speed of copying from NCHW and converting the batch
            self.images = self.images.contiguous(memory_format=torch.channels_last)
        self.labels = torch.as_tensor(labels)
        self.batch_size, self.device, self.seed, self.train = batch_size, device, seed, train
        self.transform = BatchTransform(self.images.device, crop if train else None, channels_last,
                                        resized=resized if train else None, policy=policy if train else None,
                                        mean=mean, std=std, one_gather=on_device)
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return (len(self.labels) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        gen = torch.Generator().manual_seed(derive_seed(self.seed, "cached", self.epoch))
        n = len(self.labels)
        order = torch.randperm(n, generator=gen) if self.train else torch.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            images = self.transform(self.images, idx, gen)  # on the images' device: the GPU, or the CPU
            yield images.to(self.device, non_blocking=True), self.labels[idx].to(self.device, non_blocking=True)


class PILLoader:
    """A DataLoader over files with per-image PIL transforms, moving each batch to `device`."""

    def __init__(self, dataset, batch_size, device, seed, train, workers, channels_last=False):
        self.generator = torch.Generator()
        self.loader = DataLoader(dataset, batch_size=batch_size, shuffle=train, num_workers=workers,
                                 pin_memory=device.type == "cuda", generator=self.generator,
                                 persistent_workers=False)
        self.device, self.seed = device, seed
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.set_epoch(0)

    def set_epoch(self, epoch):
        # Seeds the shuffle and the workers' augmentation; with workers=0 the transforms draw from
        # the global torch generator, which the training loop seeds per epoch.
        self.generator.manual_seed(derive_seed(self.seed, "pil", epoch))

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        try:
            for images, labels in self.loader:
                images = images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
                yield images, labels.to(self.device, non_blocking=True)
        except UserError as e:  # from a worker, its message follows the worker's traceback: keep the sentence
            raise UserError(str(e).strip().splitlines()[-1].removeprefix(f"{UserError.__module__}.UserError: ")) \
                from None


def eval_side(args):
    """The side validation and test images are resized to: --eval-image-size, else the training crop's."""
    return args.eval_image_size or args.image_size


def build_loader(split, name, args, rt, train=None):
    """The loader for split `name` ('train', 'val' or 'test') as `args` asks (train.py's flags, or the settings
    of a checkpoint: `checkpoint.settings`), on `rt`'s device and memory format (runtime.decide).

    `train` (default: name == 'train') decides shuffling and augmentation.
    """
    train = name == "train" if train is None else train
    samples = split.samples[name]
    batch_size = args.batch_size if train else rt.eval_batch_size
    device, channels_last = rt.device, rt.memory_format == torch.channels_last
    resize, crop = resize_sizes(args.image_size)
    side = eval_side(args)
    train_crop, min_scale, auto_augment = args.train_crop, args.min_scale, args.auto_augment
    norm = {"mean": args.mean, "std": args.std}  # the model weights' own
    if args.loader == "pil":
        preset = train_preset(args.image_size, train_crop, min_scale, auto_augment, **norm) if train else \
            eval_preset(side, **norm)
        dataset = ImageList(samples, preset)
        return PILLoader(dataset, batch_size, device, args.seed, train, args.workers, channels_last)
    images = cache.load_or_build(args.cache_dir, split, name, resize if train else side, in_memory=train)
    labels = np.array([label for _, label in samples], dtype=np.int64)
    return CachedLoader(images, labels, batch_size, device, args.seed, train, crop, channels_last,
                        on_device=rt.cache_on_device,
                        resized=min_scale if train_crop == "resized" else None,
                        policy=auto_augment_policy(auto_augment), **norm)
