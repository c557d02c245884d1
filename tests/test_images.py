"""Every image either read correctly or refused by name: each mode PIL opens gives the same RGB pixels to the split's
check, the cache, the PIL loader and predict.py; a mode without a faithful conversion is refused in one sentence."""
import numpy as np
import pytest
import torch
from PIL import Image

import predict
from caltech.data.images import EXTENSIONS, open_rgb
from caltech.data.loaders import build_loader
from caltech.data.split import build_split, read_split
from conftest import cpu_runtime, train_args

GRADIENT = np.linspace(0, 65535, 48 * 40).reshape(40, 48).astype(np.uint16)


def save_mode(path, mode):
    """An image of `mode` at `path` (its extension says the format); returns the RGB pixels it should read as."""
    rgb = np.random.default_rng(len(mode)).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    if mode == "I;16":  # a 16-bit greyscale PNG: a plain conversion would clip most of it to white
        Image.fromarray(GRADIENT).save(path)
        grey = np.floor(GRADIENT / 65535 * 255 + 0.5).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "RGBA":  # half transparent: laid over white
        alpha = np.full((40, 48, 1), 128, np.uint8)
        Image.fromarray(np.concatenate([rgb, alpha], axis=2), "RGBA").save(path)
        return None
    if mode == "P":  # a palette with a transparent colour: white where transparent
        img = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
        img.info["transparency"] = 0
        img.save(path, transparency=0)
        return None
    if mode == "CMYK":
        Image.fromarray(rgb).convert("CMYK").save(path, quality=95)
        return None
    if mode == "L":
        Image.fromarray(rgb).convert("L").save(path, quality=95)
        return None
    if mode == "GIF":  # animated: the first frame
        frames = [Image.fromarray(rgb).convert("P"), Image.fromarray(255 - rgb).convert("P")]
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
        return np.asarray(frames[0].convert("RGB"))
    raise ValueError(mode)


MODES = {"I;16": ".png", "RGBA": ".png", "P": ".png", "CMYK": ".jpg", "L": ".jpg", "GIF": ".gif"}


def test_sixteen_bit_transparent_and_animated_images_read_as_their_pixels(tmp_path):
    for mode, ext in MODES.items():
        path = tmp_path / f"{mode.replace(';', '')}{ext}"
        expected = save_mode(path, mode)
        got = np.asarray(open_rgb(path))
        assert got.shape == (40, 48, 3) and got.dtype == np.uint8, mode
        if expected is not None:
            assert np.array_equal(got, expected), mode
    grey = np.asarray(open_rgb(tmp_path / "I16.png"))
    assert (grey == 255).mean() < 0.01 and grey[0, 0, 0] == 0  # not clipped to white
    with Image.open(tmp_path / "RGBA.png") as img:
        rgba = np.asarray(img).astype(float)
    over_white = rgba[..., :3] * 128 / 255 + 255 * (1 - 128 / 255)
    assert np.abs(np.asarray(open_rgb(tmp_path / "RGBA.png")).astype(float) - over_white).max() <= 1
    with Image.open(tmp_path / "P.png") as img:
        transparent = np.asarray(img) == 0
    assert transparent.any() and (np.asarray(open_rgb(tmp_path / "P.png"))[transparent] == 255).all()


def test_every_mode_gives_the_cache_the_pil_loader_and_predict_the_same_pixels(tmp_path):
    source = tmp_path / "src"
    for c, name in enumerate(("ant", "bee", "cat")):
        (source / name).mkdir(parents=True)
        for i in range(12):
            mode = list(MODES)[(i + c) % len(MODES)]
            save_mode(source / name / f"image_{i:04d}{MODES[mode]}", mode)
    summary = build_split(source, tmp_path / "split", train_per_class=8, val_per_class=3)
    assert summary.rejected == []  # every mode is usable
    split = read_split(tmp_path / "split")
    for kind in ("cached", "pil"):
        args = train_args(tmp_path, split.root, "--loader", kind)
        args.mean, args.std, args.cache_dir = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), str(tmp_path / "cache")
        loader = build_loader(split, "test", args, cpu_runtime(args))
        images = torch.cat([batch for batch, _ in loader])
        if kind == "cached":
            cached = images
    assert torch.allclose(cached, images, atol=1e-6)  # ToTensor's x / 255 and the cache's uint8, alike
    rows = predict.main(predict.get_args_parser().parse_args([str(split.root), "--ckpt", str(
        trained(tmp_path, split)), "--device", "cpu", "--workers", 0]))
    assert len(rows) == 36 and all(row["top"] is not None for row in rows)
    assert any(str(row["path"]).endswith(".gif") for row in rows)  # the extensions the split accepts


def trained(tmp_path, split):
    import train
    train.main(train_args(tmp_path, split.root, "--scratch", "--epochs", 1, "--run-name", "m"))
    return tmp_path / "ckpt" / "m" / "best.pth"


def test_a_mode_without_a_faithful_conversion_is_refused_by_name(tmp_path, capsys):
    source = tmp_path / "src"
    for name in ("ant", "bee"):
        (source / name).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(np.full((40, 48, 3), 25 * i, np.uint8)).save(source / name / f"i{i}.png")
    Image.fromarray(np.random.default_rng(0).random((40, 48), dtype=np.float32)).save(source / "ant" / "float.tif")
    summary = build_split(source, tmp_path / "split", train_per_class=8, val_per_class=3)
    assert [(path, reason) for path, reason in summary.rejected] == [
        ("ant/float.tif", "image mode F cannot be read as RGB faithfully")]
    assert ".tif" in EXTENSIONS and "excluded ant/float.tif: image mode F" in capsys.readouterr().err


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_predict_looks_for_every_extension_the_split_takes(tmp_path, ext):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / f"x{ext}").touch()
    assert predict.find_images([str(tmp_path / "photos")]) == [tmp_path / "photos" / f"x{ext}"]


def test_an_image_over_pils_bomb_limit_is_one_warning_line_of_ours_not_pils(tmp_path, monkeypatch, capsys):
    import warnings
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # below 48 x 40: every image counts as a bomb
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(path)
    with warnings.catch_warnings(record=True) as raw:
        warnings.simplefilter("always")
        with pytest.raises(Exception, match="exceeds limit"):
            open_rgb(path)
    assert not [w for w in raw if issubclass(w.category, Image.DecompressionBombWarning)]
