"""The two input paths: same eval tensors, augmentation only in training, the crop/flip distribution, the cache."""

import numpy as np
import pytest
import torch
import torchvision.transforms as T
from PIL import Image

import train
from caltech.data import cache
from caltech.data.images import open_rgb as pil_loader
from caltech.data.loaders import build_loader
from caltech.data.split import build_split, read_split
from caltech.data.transforms import MEAN, STD, BatchTransform, eval_preset
from caltech.training import setup
from caltech.utils import UserError
from conftest import cpu_runtime, make_image_folder, train_args

CPU = torch.device("cpu")


def loader_args(tmp_path, split, loader, image_size=32):
    args = train_args(tmp_path, split.root, "--loader", loader, "--image-size", image_size)
    args.cache_dir, args.eval_batch_size = str(tmp_path / "cache"), 8
    setup.resolve_model(args)  # the normalisation of the model's weights, as train.py resolves it
    return args


def one_epoch(loader, epoch):
    loader.set_epoch(epoch)
    torch.manual_seed(epoch)  # what the training loop does per epoch (the PIL path with workers=0 uses it)
    xs, ys = zip(*loader, strict=True)
    return torch.cat(xs), torch.cat(ys)


def unnormalise(x):
    return x * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)


def test_cached_eval_tensors_equal_pil_eval_tensors(tiny_split, tmp_path):
    cached_args, pil_args = (loader_args(tmp_path, tiny_split, loader) for loader in ("cached", "pil"))
    cached, _ = one_epoch(build_loader(tiny_split, "test", cached_args, cpu_runtime(cached_args)), 0)
    pil, _ = one_epoch(build_loader(tiny_split, "test", pil_args, cpu_runtime(pil_args)), 0)
    direct = torch.stack([eval_preset(32)(pil_loader(p)) for p, _ in tiny_split.samples["test"]])
    assert cached.shape == pil.shape == (24, 3, 32, 32)
    assert (unnormalise(cached) - unnormalise(pil)).abs().max() <= 1 / 255
    assert (unnormalise(pil) - unnormalise(direct)).abs().max() <= 1e-6


@pytest.mark.parametrize("kind", ["cached", "pil"])
def test_only_the_training_loader_augments(tiny_split, tmp_path, kind):
    args = loader_args(tmp_path, tiny_split, kind)
    train_loader = build_loader(tiny_split, "train", args, cpu_runtime(args))
    # the train images through the eval transform
    eval_of_train = build_loader(tiny_split, "train", args, cpu_runtime(args), train=False)
    x0, y0 = one_epoch(train_loader, 0)
    x1, y1 = one_epoch(train_loader, 1)
    e0, ey = one_epoch(eval_of_train, 0)
    e1, _ = one_epoch(eval_of_train, 5)
    assert x0.shape == e0.shape == (20, 3, 32, 32)
    assert torch.equal(e0, e1) and torch.equal(ey, torch.tensor([y for _, y in tiny_split.samples["train"]]))
    assert not torch.equal(y0, y1)  # reshuffled each epoch
    # every augmented image differs from the plain eval view of every training image
    distance = torch.cdist(x0.flatten(1), e0.flatten(1))
    assert distance.min() > 1e-3
    assert torch.equal(one_epoch(train_loader, 1)[0], x1)  # but an epoch is reproducible on its own
    val = build_loader(tiny_split, "val", args, cpu_runtime(args))
    assert torch.equal(one_epoch(val, 0)[0], one_epoch(val, 3)[0])


@pytest.mark.parametrize("one_gather", [True, False])  # the GPU's one gather, the CPU's copy per image
def test_crop_and_flip_have_torchvision_distribution(one_gather):
    side, crop, n = 12, 8, 4000
    ii, jj = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    coords = torch.stack([ii, jj, torch.zeros_like(ii)]).to(torch.uint8)  # pixel = its own position
    # the training loader's transform, normalising with mean 0 and std 1/255: the pixel values unchanged
    augment = BatchTransform(CPU, crop=crop, mean=(0, 0, 0), std=(1 / 255,) * 3, one_gather=one_gather)
    out = augment(coords.expand(n, 3, side, side), torch.arange(n), torch.Generator().manual_seed(0))
    out = out.round().to(torch.uint8)
    top, left_or_right = out[:, 0, 0, 0].long(), out[:, 1, 0, 0].long()
    flipped = out[:, 1, 0, 0] > out[:, 1, 0, -1]
    left = torch.where(flipped, left_or_right - crop + 1, left_or_right)
    # the gather equals slicing (and reversing columns when flipped)
    for k in range(20):
        ref = coords[:, top[k]:top[k] + crop, left[k]:left[k] + crop]
        assert torch.equal(out[k], ref.flip(2) if flipped[k] else ref)
    # uniform over all (side - crop + 1)^2 offsets, like RandomCrop; flips with probability 1/2
    counts = torch.bincount(top * (side - crop + 1) + left, minlength=(side - crop + 1) ** 2).float()
    assert (counts > 0).all()
    expected = n / counts.numel()
    assert ((counts - expected) ** 2 / expected).sum() < 60  # chi-square, 24 d.o.f.: p < 1e-4 to fail
    assert 0.45 < flipped.float().mean() < 0.55
    # torchvision's own transforms on the same image: the same support and flip rate
    img = T.functional.to_pil_image(coords)
    ref_tf = T.Compose([T.RandomCrop(crop), T.RandomHorizontalFlip()])
    torch.manual_seed(0)
    refs = [np.asarray(ref_tf(img)) for _ in range(1000)]
    assert {int(r[0, 0, 0]) for r in refs} == set(range(side - crop + 1))
    assert 0.4 < np.mean([r[0, 0, 1] > r[0, -1, 1] for r in refs]) < 0.6


def test_cache_is_rebuilt_when_the_split_changes(tmp_path):
    src = make_image_folder(tmp_path / "src", classes=("a", "b"), per_class=10)
    build_split(src, tmp_path / "split", train_per_class=6, val_per_class=2)
    first = read_split(tmp_path / "split")
    cache.load_or_build(tmp_path / "cache", first, "val", 16)
    build_split(src, tmp_path / "split", seed=5, train_per_class=6, val_per_class=2)
    second = read_split(tmp_path / "split")
    images = cache.load_or_build(tmp_path / "cache", second, "val", 16)
    key = cache.cache_file
    assert key(tmp_path / "cache", first, "val", 16) != key(tmp_path / "cache", second, "val", 16)
    expected = np.stack([np.asarray(T.functional.resize(pil_loader(p), [16, 16])).transpose(2, 0, 1)
                         for p, _ in second.samples["val"]])
    assert np.array_equal(images, expected)
    assert key(tmp_path / "cache", second, "val", 16) != key(tmp_path / "cache", second, "val", 20)


def test_a_half_written_cache_is_never_loaded(tiny_split, tmp_path, monkeypatch):
    path = cache.cache_file(tmp_path, tiny_split, "test", 16)
    real = cache._load_resized
    seen = []

    def dies_midway(job):
        seen.append(job)
        if len(seen) == 10:
            raise UserError("simulated crash while caching")
        return real(job)
    monkeypatch.setattr(cache, "_load_resized", dies_midway)
    with pytest.raises(UserError, match="simulated"):
        cache.load_or_build(tmp_path, tiny_split, "test", 16, workers=1)
    monkeypatch.setattr(cache, "_load_resized", real)
    assert not path.exists() and not list(tmp_path.glob(".*.tmp-*"))
    # a kill (no cleanup) leaves a temporary file, and a damaged final file can exist too: both are survived
    path.with_name(f".{path.name}.tmp-99999").write_bytes(b"\x93NUMPY half")
    path.write_bytes(path.with_name(f".{path.name}.tmp-99999").read_bytes())
    images = cache.load_or_build(tmp_path, tiny_split, "test", 16, workers=1)
    assert images.shape == (24, 3, 16, 16) and images.any()


def test_optimizer_steps_once_per_batch(tiny_split, tmp_path, monkeypatch):
    steps = []
    real = torch.optim.Adam.step
    monkeypatch.setattr(torch.optim.Adam, "step", lambda self, *a, **k: (steps.append(1), real(self, *a, **k))[1])
    train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 2, "--run-name", "s"))
    assert len(steps) == 2 * 3  # 20 images at batch 8: 3 batches per epoch


def test_both_loaders_learn_the_same(tmp_path):
    """Training results are unchanged in kind: a short scratch run reaches the same accuracy band."""
    src = make_image_folder(tmp_path / "src", classes=("a", "b", "c", "d"), per_class=24, seed=3)
    build_split(src, tmp_path / "split", train_per_class=16, val_per_class=4)
    accs = {}
    for kind in ("cached", "pil"):
        # 6 epochs: after 4 the PIL run's accuracy still swung with the thread count (0.69 with one, 0.88 with two)
        metrics = train.main(train_args(tmp_path, tmp_path / "split", "--scratch", "--epochs", 6, "--loader", kind,
                                        "--lr-base", 1e-3, "--run-name", kind))
        accs[kind] = metrics["test_acc"]
    assert min(accs.values()) >= 0.6, accs  # chance is 0.25
    assert abs(accs["cached"] - accs["pil"]) <= 0.25, accs


def test_cpu_and_gpu_batch_paths_agree(tiny_split, tmp_path):
    """The per-image CPU path and the one-gather GPU path give the same crops, flips and values."""
    from caltech.data.transforms import BatchTransform, crop_flip_params, gather_crops
    images = torch.from_numpy(cache.load_or_build(tmp_path, tiny_split, "train", 37))
    index = torch.tensor([4, 0, 19, 7, 7, 12])
    cpu = BatchTransform(CPU, crop=32)(images, index, torch.Generator().manual_seed(3))
    params = crop_flip_params(len(index), 37, 32, torch.Generator().manual_seed(3))
    assert params[2].any() and not params[2].all()  # both flipped and unflipped images are compared
    gpu_style = gather_crops(images, index, params, 32).float()
    transform = BatchTransform(CPU)
    assert torch.allclose(cpu, gpu_style * transform.scale + transform.shift, atol=1e-6)
    whole = BatchTransform(CPU)(images, index)  # eval: no crop, no flip, just normalisation
    assert torch.allclose(unnormalise(whole) * 255, images[index].float(), atol=1e-3)


@pytest.fixture(scope="module")
def ramp_split(tmp_path_factory):
    """Lossless 37x37 images (the train resize at --image-size 32): red = 6 x column, green = 6 x row,
    blue = the image's identity. A crop's top-left pixel then gives its offsets, the red ramp's
    direction the flip, and blue which image it is, whatever the order."""
    root = tmp_path_factory.mktemp("ramps")
    cols, rows = np.meshgrid(np.arange(37), np.arange(37))
    for k in range(24):
        folder = root / "src" / f"class{k % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.stack([cols * 6, rows * 6, np.full_like(cols, 10 * k)], axis=2).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"image_{k:04d}.png")
    build_split(root / "src", root / "split", seed=107, train_per_class=8, val_per_class=3, workers=1)
    return read_split(root / "split")


def views(loader, epoch):
    """{image identity: (top, left, flipped)} of one epoch, and the order the images came in."""
    x, _ = one_epoch(loader, epoch)
    pixels = (unnormalise(x) * 255).round()
    ids = (pixels[:, 2, 0, 0] / 10).round().long().tolist()
    red = pixels[:, 0, 0]  # the top row's red values
    flipped = (red[:, 0] > red[:, -1]).tolist()
    left = (torch.minimum(red[:, 0], red[:, -1]) / 6).round().long().tolist()
    top = (pixels[:, 1, 0, 0] / 6).round().long().tolist()
    return {i: (t, le, f) for i, t, le, f in zip(ids, top, left, flipped, strict=True)}, ids


@pytest.mark.parametrize("kind", ["cached", "pil"])
def test_each_training_image_gets_new_crops_and_flips_every_epoch_and_eval_images_never_change(ramp_split,
                                                                                                   tmp_path, kind):
    args = loader_args(tmp_path, ramp_split, kind)
    train_loader = build_loader(ramp_split, "train", args, cpu_runtime(args))
    epochs = [views(train_loader, e) for e in range(8)]
    n_train = len(ramp_split.samples["train"])
    assert all(len(v) == n_train for v, _ in epochs)  # every image exactly once per epoch
    for image in epochs[0][0]:
        crops = [v[image] for v, _ in epochs]
        assert all(0 <= t <= 5 and 0 <= le <= 5 for t, le, _ in crops)  # inside the 37 px image
        assert len({(t, le) for t, le, _ in crops}) >= 3, (image, crops)  # new crops epoch after epoch
    flips = [f for v, _ in epochs for _, _, f in v.values()]
    assert 0.3 < sum(flips) / len(flips) < 0.7  # mirrored in about half of the epochs
    orders = [tuple(order) for _, order in epochs]
    assert len(set(orders)) == len(orders)  # reshuffled every epoch
    for name in ("val", "test"):
        loader = build_loader(ramp_split, name, args, cpu_runtime(args))
        first, order = one_epoch(loader, 0)
        again, order_again = one_epoch(loader, 3)
        assert torch.equal(first, again) and torch.equal(order, order_again)
        plain = views(loader, 0)[0]
        assert all(v == (0, 0, False) for v in plain.values())  # the whole image, never mirrored


def test_eval_preset_is_the_published_square_resize_and_normalisation():
    assert repr(eval_preset(224)) == repr(T.Compose([T.Resize((224, 224)), T.ToTensor(),
                                                     T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]))


def test_pil_loader_runs_in_workers_processes_at_its_batch_sizes_and_builds_no_cache(tiny_split, tmp_path):
    args = loader_args(tmp_path, tiny_split, "pil")
    args.workers, args.eval_batch_size = 2, 5
    train_loader, val_loader = (build_loader(tiny_split, name, args, cpu_runtime(args)) for name in ("train", "val"))
    assert (train_loader.loader.num_workers, train_loader.loader.batch_size) == (2, 8)
    assert (val_loader.loader.num_workers, val_loader.loader.batch_size) == (2, 5)
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("kind", ["cached", "pil"])
def test_seed_reaches_the_training_shuffle(tiny_split, tmp_path, kind):
    def first_epoch(seed):
        args = loader_args(tmp_path, tiny_split, kind)
        args.seed = seed
        torch.manual_seed(0)  # the global generator alike: only --seed differs
        return one_epoch(build_loader(tiny_split, "train", args, cpu_runtime(args)), 0)
    (x1, y1), (x1_again, _), (_, y2) = first_epoch(1), first_epoch(1), first_epoch(2)
    assert torch.equal(x1, x1_again)
    assert not torch.equal(y1, y2)  # another order
