"""split_dataset.py: sources, the deterministic split, rejected files, and messages for people."""
import csv
import hashlib
import http.server
import json
import random
import shutil
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest
from PIL import Image

import split_dataset
from caltech.data import source
from caltech.data.split import build_split, read_split
from caltech.utils import UserError
from conftest import REAL_DATA, REAL_URLOPEN, make_image_folder, run_script


def split_rows(out):
    with open(Path(out) / "split.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def messy(tmp_path):
    """Four good classes plus every kind of bad file, a too-small class and a background folder."""
    root = make_image_folder(tmp_path / "101_ObjectCategories", classes=("ant", "bee", "cat", "dog"), per_class=12)
    make_image_folder(root, classes=("tiny",), per_class=8)  # 8 < train 8 + 1
    make_image_folder(root, classes=("BACKGROUND_Google",), per_class=10)
    (root / "BACKGROUND_Google" / "tmp").write_text("not an image")
    Image.new("CMYK", (40, 30), (10, 200, 30, 0)).save(root / "ant" / "image_cmyk.JPG")  # upper-case extension
    (root / "bee" / "image_empty.jpg").write_bytes(b"")
    (root / "bee" / "image_noise.jpg").write_bytes(bytes(range(256)) * 4)
    good = (root / "cat" / "image_0001.jpg").read_bytes()
    (root / "cat" / "image_half.jpg").write_bytes(good[: len(good) // 2])
    Image.new("RGB", (40, 30)).save(root / "dog" / "image_png.jpg", format="PNG")
    (root / "dog" / "notes.txt").write_text("a stray file")
    return root


def test_split_sizes_rejects_and_warnings(messy, tmp_path, capsys):
    summary = build_split(messy, tmp_path / "split", train_per_class=8, val_per_class=3, workers=1)
    err = capsys.readouterr().err
    assert summary.classes == ["ant", "bee", "cat", "dog"]
    assert summary.skipped == {"tiny": 8} and "skipped class tiny" in err
    # ant keeps its CMYK image (13 usable), the others have 12 good ones each
    assert summary.counts == {"train": 20, "val": 12, "test": 13 + 3 * 12 - 32}
    reasons = {Path(p).name: r for p, r in summary.rejected}
    assert reasons["image_empty.jpg"] == "empty file"
    assert reasons["image_noise.jpg"].startswith("not an image")
    assert reasons["image_half.jpg"].startswith("truncated")
    assert reasons["image_png.jpg"].startswith("mislabelled")
    for name in reasons:
        assert name in err  # each excluded file is named in a warning
    rejected = {Path(r["path"]).name: r["reason"] for r in csv.DictReader(open(tmp_path / "split" / "rejected.csv"))}
    assert rejected.keys() == set(reasons) | {"notes.txt"}
    assert summary.ignored == ["dog/notes.txt"]
    assert (tmp_path / "split" / "classes.txt").read_text() == "ant\nbee\ncat\ndog\n"


def test_split_is_disjoint_per_class_and_on_disk(messy, tmp_path):
    build_split(messy, tmp_path / "split", train_per_class=8, val_per_class=3, workers=1)
    rows = split_rows(tmp_path / "split")
    assert [r["path"] for r in rows] == sorted(r["path"] for r in rows)
    assert len({r["path"] for r in rows}) == len(rows)  # each image in exactly one split
    for cls in ("ant", "bee", "cat", "dog"):
        mine = [r for r in rows if r["class"] == cls]
        assert sum(r["split"] == "train" for r in mine) == 5
        assert sum(r["split"] == "val" for r in mine) == 3
    on_disk = sorted(str(p.relative_to(tmp_path / "split")) for p in (tmp_path / "split").glob("*/*/*"))
    assert on_disk == sorted(f"{r['split']}/{r['class']}/{Path(r['path']).name}" for r in rows)
    split = read_split(tmp_path / "split")
    seen = [p for s in split.samples.values() for p, _ in s]
    assert len(seen) == len(set(seen)) == len(rows)


def test_same_arguments_same_bytes_new_seed_replaces_everything(messy, tmp_path):
    out = tmp_path / "split"
    build_split(messy, out, train_per_class=8, val_per_class=3, workers=1)
    first = (out / "split.csv").read_bytes()
    build_split(messy, out, train_per_class=8, val_per_class=3, workers=2)
    assert (out / "split.csv").read_bytes() == first
    build_split(messy, out, seed=1, train_per_class=8, val_per_class=3)
    assert (out / "split.csv").read_bytes() != first
    rows = split_rows(out)
    files = sorted(str(p.relative_to(out)) for p in out.glob("*/*/*"))
    assert files == sorted(f"{r['split']}/{r['class']}/{Path(r['path']).name}" for r in rows)  # nothing stale
    assert not list(tmp_path.glob(".split*"))  # no temporary folders left behind


def test_include_background_adds_a_class(messy, tmp_path):
    summary = build_split(messy, tmp_path / "split", train_per_class=8, val_per_class=3, include_background=True)
    assert "BACKGROUND_Google" in summary.classes and len(summary.classes) == 5
    assert "BACKGROUND_Google/tmp" in summary.ignored


def test_cli_flags_reach_the_split(messy, tmp_path, monkeypatch):
    """--seed, --train-per-class, --val-per-class, --include-background and --workers all reach build_split."""
    calls = []
    real = split_dataset.build_split
    monkeypatch.setattr(split_dataset, "build_split", lambda *a, **k: (calls.append(k), real(*a, **k))[1])
    out = tmp_path / "cli"
    split_dataset.main(split_dataset.get_args_parser().parse_args(
        ["--source", str(messy), "--out", str(out), "--seed", "5", "--train-per-class", "8", "--val-per-class", "3",
         "--include-background", "--workers", "1"]))
    assert calls[0]["workers"] == 1
    build_split(messy, tmp_path / "ref", seed=5, train_per_class=8, val_per_class=3, include_background=True, workers=1)
    assert (out / "split.csv").read_bytes() == (tmp_path / "ref" / "split.csv").read_bytes()
    assert "BACKGROUND_Google" in (out / "classes.txt").read_text().split()
    assert json.loads((out / "split.json").read_text()) == {
        "source": str(messy.resolve()), "seed": 5, "train_per_class": 8, "val_per_class": 3,
        "include_background": True}
    # the split's files are hard links to the source images, not copies (same filesystem here)
    row = split_rows(out)[0]
    linked = out / row["split"] / row["class"] / Path(row["path"]).name
    assert linked.stat().st_ino == (messy / row["path"]).stat().st_ino


def test_a_class_needs_train_per_class_plus_one_usable_images(tmp_path):
    root = make_image_folder(tmp_path / "src", classes=("also", "enough"), per_class=9)  # 8 + 1: kept, one test image
    make_image_folder(root, classes=("short",), per_class=8, seed=1)  # 8: skipped
    summary = build_split(root, tmp_path / "split", train_per_class=8, val_per_class=3, workers=1)
    assert summary.classes == ["also", "enough"] and summary.skipped == {"short": 8}
    assert summary.counts == {"train": 10, "val": 6, "test": 2}


def test_each_class_is_its_seeded_shuffle_first_train_then_val_then_test(tmp_path):
    """The documented protocol: per class, the sorted file list shuffled with the seed (and the class name,
    so classes are independent); the first train-val images train, the next val ones validate, the rest test."""
    root = make_image_folder(tmp_path / "src", classes=("ant", "bee"), per_class=12)
    build_split(root, tmp_path / "split", seed=7, train_per_class=8, val_per_class=3, workers=1)
    assigned = {r["path"]: r["split"] for r in split_rows(tmp_path / "split")}
    for cls in ("ant", "bee"):
        order = sorted(p for p in assigned if p.startswith(f"{cls}/"))
        random.Random(f"7:{cls}").shuffle(order)
        assert [assigned[p] for p in order] == ["train"] * 5 + ["val"] * 3 + ["test"] * 4, cls


def test_refuses_to_replace_a_folder_that_is_not_a_split(messy, tmp_path):
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    with pytest.raises(UserError, match="not a split"):
        build_split(messy, precious, train_per_class=8, val_per_class=3)
    assert (precious / "thesis.tex").exists()


def make_archives(folder, tmp_path):
    """The official layout: caltech-101.zip holding caltech-101/101_ObjectCategories.tar.gz."""
    tgz = tmp_path / "archives" / "101_ObjectCategories.tar.gz"
    tgz.parent.mkdir()
    with tarfile.open(tgz, "w:gz") as tf:
        tf.add(folder, arcname="101_ObjectCategories")
    zpath = tmp_path / "archives" / "caltech-101.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.write(tgz, "caltech-101/101_ObjectCategories.tar.gz")
        zf.writestr("caltech-101/show_annotation.m", "% not needed")
    return tgz, zpath


@pytest.mark.parametrize("kind", ["folder", "tar.gz", "zip"])
def test_every_source_kind_gives_the_same_split(kind, tmp_path):
    folder = make_image_folder(tmp_path / "src" / "101_ObjectCategories", per_class=10)
    tgz, zpath = make_archives(folder, tmp_path)
    src = {"folder": folder, "tar.gz": tgz, "zip": zpath}[kind]
    ref = tmp_path / "ref"
    build_split(folder, ref, train_per_class=6, val_per_class=2)
    out = tmp_path / "data" / "split"
    args = split_dataset.get_args_parser().parse_args(
        ["--source", str(src), "--out", str(out), "--train-per-class", "6", "--val-per-class", "2"])
    split_dataset.main(args)
    assert (out / "split.csv").read_bytes() == (ref / "split.csv").read_bytes()
    if kind != "folder":  # archives are unpacked under the output's parent (data/), nowhere else
        assert (tmp_path / "data" / "101_ObjectCategories").is_dir()
        assert not list((tmp_path / "data").glob(".unpack-*"))


def test_without_source_it_looks_in_data_then_downloads(tmp_path, monkeypatch):
    folder = make_image_folder(tmp_path / "src" / "101_ObjectCategories", per_class=10)
    _, zpath = make_archives(folder, tmp_path)
    # Serve the zip from localhost: the real download code, checksum included, without the internet.
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(zpath, served / "caltech-101.zip")
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(served), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr("urllib.request.urlopen", REAL_URLOPEN)
    monkeypatch.setattr(source, "URL", f"http://127.0.0.1:{server.server_port}/caltech-101.zip")
    monkeypatch.setattr(source, "ZIP_MD5", hashlib.md5(zpath.read_bytes()).hexdigest())
    try:
        data = tmp_path / "data"
        found = source.resolve_source(None, data_root=data)
        assert found == data / "101_ObjectCategories" and (data / "caltech-101.zip").is_file()
        assert source.resolve_source(None, data_root=data) == found  # second time: found locally
        monkeypatch.setattr(source, "ZIP_MD5", "0" * 32)
        with pytest.raises(UserError, match="checksum mismatch"):
            source.resolve_source(None, data_root=tmp_path / "other")
        assert not (tmp_path / "other" / "caltech-101.zip").exists()  # the bad download is not kept
    finally:
        server.shutdown()


def test_offline_download_says_where_to_put_the_data(tmp_path, capsys):
    args = split_dataset.get_args_parser().parse_args(["--out", str(tmp_path / "data" / "split")])
    with pytest.raises(SystemExit) as exit_info:
        split_dataset.run_cli(split_dataset.main, args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "could not download Caltech-101" in err and "--source" in err and "caltech-101.zip" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("counts", [("--train-per-class", "0"), ("--val-per-class", "30"), ("--val-per-class", "0")])
def test_bad_per_class_counts_are_refused_before_the_data_is_looked_for(tmp_path, monkeypatch, counts):
    monkeypatch.setattr(split_dataset, "resolve_source", lambda *a, **k: pytest.fail("looked for the data"))
    args = split_dataset.get_args_parser().parse_args([*counts, "--out", str(tmp_path / "data" / "split")])
    with pytest.raises(UserError, match=r"--val-per-class \(\d+\) must be at least 1 and below --train-per-class"):
        split_dataset.main(args)


def test_cli_messages_for_a_missing_path_an_empty_folder_and_a_corrupt_image(tmp_path):
    missing = run_script("split_dataset.py", "--source", tmp_path / "nope", "--out", tmp_path / "o")
    (tmp_path / "empty").mkdir()
    empty = run_script("split_dataset.py", "--source", tmp_path / "empty", "--out", tmp_path / "o")
    for result, phrase in ((missing, "does not exist"), (empty, "holds no class folders")):
        assert result.returncode == 2
        assert result.stderr.startswith("error:") and phrase in result.stderr and "Traceback" not in result.stderr
    root = make_image_folder(tmp_path / "src", classes=("ant", "bee"), per_class=10)
    (root / "ant" / "image_0003.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    corrupt = run_script("split_dataset.py", "--source", root, "--out", tmp_path / "o",
                         "--train-per-class", "6", "--val-per-class", "2")
    assert corrupt.returncode == 0, corrupt.stderr
    assert "warning: excluded ant/image_0003.jpg" in corrupt.stderr and "Traceback" not in corrupt.stderr
    assert "rejected files: 1" in corrupt.stdout


def test_two_processes_write_byte_identical_splits(messy, tmp_path):
    """Per-class shuffles seeded by name, never by Python's per-process hash seed or file order."""
    outs = [tmp_path / "a", tmp_path / "b"]
    for out, hash_seed in zip(outs, ("1", "2"), strict=True):
        result = run_script("split_dataset.py", "--source", messy, "--out", out, "--train-per-class", 8,
                            "--val-per-class", 3, "--workers", 1, env={"PYTHONHASHSEED": hash_seed})
        assert result.returncode == 0, result.stderr
    assert (outs[0] / "split.csv").read_bytes() == (outs[1] / "split.csv").read_bytes()


# The SHA-256 of split.csv for the real Caltech-101 at the default settings: any change of the split,
# on any machine or Python version, must be a deliberate one.
REAL_SPLIT_SHA256 = "ef04a26462bf0ae97bb226bfe9fa4b63a5a056e4ad98b7408ee0d238efa8fc83"
REAL_SPLIT_CONTENT_SHA256 = "6fe257d67dc52c424cf67c77cf792e8fd0abcbfcc0c48380692101409e236c82"


@pytest.mark.skipif(not REAL_DATA.is_dir(), reason="real Caltech-101 not beside the checkout")
def test_real_caltech101_split_sizes(tmp_path):
    summary = build_split(REAL_DATA, tmp_path / "split")
    assert len(summary.classes) == 101 and not summary.skipped
    assert summary.counts == {"train": 2424, "val": 606, "test": 5647}
    assert summary.rejected == [] and "BACKGROUND_Google" not in summary.classes
    test_per_class = {}
    for row in split_rows(tmp_path / "split"):
        if row["split"] == "test":
            test_per_class[row["class"]] = test_per_class.get(row["class"], 0) + 1
    largest = sorted(test_per_class.values())[-4:]
    assert min(test_per_class.values()) == 1 and largest[-1] == 770
    assert 0.41 < sum(largest) / 5647 < 0.42  # the unbalance that makes mean per-class accuracy matter
    # the published protocol's file list, pinned before split.csv recorded each file's content, and with it
    split = read_split(tmp_path / "split")
    assert split.listing_sha256 == REAL_SPLIT_SHA256 and split.sha256 == REAL_SPLIT_CONTENT_SHA256
    assert hashlib.sha256((tmp_path / "split" / "split.csv").read_bytes()).hexdigest() == split.sha256
