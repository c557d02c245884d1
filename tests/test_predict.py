"""predict.py end to end: files, folders and globs, the checkpoint's own transform, bad files, bad input."""
import argparse
import shutil

import pytest
import torch

import predict
import train
from caltech.data.loaders import build_loader
from caltech.training import checkpoint, engine, runtime
from caltech.training.model import from_checkpoint
from caltech.utils import UserError
from conftest import cpu_runtime, read_rows, run_script, train_args

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def trained(tiny_split, tmp_path_factory):
    """best.pth of a 1-epoch from-scratch run on the tiny split, in fp32: predict.py reads images with PIL,
    evaluate.py from the cache, and bf16 would turn their last-bit differences into 1e-4 on probabilities."""
    out = tmp_path_factory.mktemp("predict_run")
    train.main(train_args(out, tiny_split.root, "--scratch", "--epochs", 1, "--run-name", "r", "--threads", 1,
                          "--no-amp"))
    return out / "ckpt" / "r" / "best.pth"


def evaluate_path(ckpt_path, split, name, tta=False, **hparams):
    """{image path: class probabilities} for split `name` through evaluate.py's loader and model."""
    ckpt = checkpoint.load(ckpt_path)
    run = argparse.Namespace(**{**ckpt["hparams"], **hparams})
    rt = runtime.decide(CPU, run.amp)  # the precision and memory format evaluate.py and predict.py use here
    model = from_checkpoint(ckpt, ckpt_path).eval().to(memory_format=rt.memory_format)
    with torch.no_grad():
        logits = torch.cat([engine.predict_logits(model, x, rt.ctx, tta)
                            for x, _ in build_loader(split, name, run, cpu_runtime(run), train=False)])
    return {str(path): p for (path, _), p in zip(split.samples[name], logits.softmax(1), strict=True)}


def run_predict(*flags):
    return predict.main(predict.get_args_parser().parse_args([*map(str, flags), "--device", "cpu", "--workers", 0]))


def test_files_folders_and_globs_get_evaluates_predictions(trained, tiny_split, tmp_path):
    root = tiny_split.root
    one_file = tiny_split.samples["val"][0][0]
    out = tmp_path / "preds.csv"
    rows = run_predict(one_file, root / "test", root / "val" / "b*" / "*.jpg", root / "val" / "**" / "*.jpg",
                       "--ckpt", trained, "--topk", 10, "--out", out)
    val, test = (sorted(str(p) for p, _ in tiny_split.samples[s]) for s in ("val", "test"))
    bee = [p for p in val if "/bee/" in p and p != str(one_file)]
    # in order, each file once: the file, the folder (recursively), the globs (the 2nd adds only what is new)
    assert [r["path"] for r in rows] == [str(one_file), *test, *bee,
                                         *[p for p in val if p not in bee and p != str(one_file)]]

    csv_rows = read_rows(out)
    assert list(csv_rows[0]) == ["path", "class_1", "prob_1", "class_2", "prob_2", "class_3", "prob_3",
                                 "class_4", "prob_4"]  # --topk 10 capped at the 4 classes
    reference = {**evaluate_path(trained, tiny_split, "test"), **evaluate_path(trained, tiny_split, "val")}
    for row in csv_rows:
        probs = [float(row[f"prob_{j}"]) for j in range(1, 5)]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-5
        expected = reference[row["path"]]
        assert row["class_1"] == tiny_split.classes[int(expected.argmax())]
        assert [float(p) for p in probs] == pytest.approx(sorted(expected.tolist(), reverse=True), abs=1e-5)


def test_tta_flag_and_checkpoint_normalisation_are_followed(trained, tiny_split, tmp_path):
    folder = tiny_split.root / "test"
    plain = {r["path"]: dict(r["top"]) for r in run_predict(folder, "--ckpt", trained)}
    flipped = {r["path"]: dict(r["top"]) for r in run_predict(folder, "--ckpt", trained, "--tta")}
    expected = evaluate_path(trained, tiny_split, "test", tta=True)
    for path, probs in flipped.items():
        assert [probs[c] for c in tiny_split.classes] == pytest.approx(expected[path].tolist(), abs=1e-5)
    assert any(plain[p] != pytest.approx(flipped[p], abs=1e-4) for p in plain)

    # a checkpoint whose weights were trained with another normalisation is read with it
    ckpt = torch.load(trained, weights_only=True)
    ckpt["hparams"].update(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    other = tmp_path / "other.pth"
    torch.save(ckpt, other)
    renormed = {r["path"]: dict(r["top"]) for r in run_predict(folder, "--ckpt", other)}
    expected = evaluate_path(other, tiny_split, "test")
    for path, probs in renormed.items():
        assert [probs[c] for c in tiny_split.classes] == pytest.approx(expected[path].tolist(), abs=1e-5)
    assert any(plain[p] != pytest.approx(renormed[p], abs=1e-4) for p in plain)


def test_cli_warns_once_per_unreadable_file_and_goes_on(trained, tiny_split, tmp_path):
    photos = tmp_path / "work" / "photos"
    (photos / "nested").mkdir(parents=True)
    good = [p for p, _ in tiny_split.samples["test"][:3]]
    for i, src in enumerate(good):
        shutil.copy(src, (photos / "nested" if i == 2 else photos) / f"good{i}.jpg")
    (photos / "broken.jpg").write_bytes(b"not a jpeg at all")
    (photos / "truncated.jpg").write_bytes(good[0].read_bytes()[:300])
    (photos / "notes.txt").write_text("skipped in folders: not an image extension")
    (tmp_path / "work" / "checkpoints").mkdir()
    shutil.copy(trained, tmp_path / "work" / "checkpoints" / "best.pth")

    # a bare --ckpt name is looked up in checkpoints/ of the working directory
    result = run_script("predict.py", "photos", "--ckpt", "best.pth", "--out", "preds.csv", "--device", "cpu",
                        "--topk", 2, cwd=tmp_path / "work")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2 and "broken.jpg" in warnings[0] and "truncated.jpg" in warnings[1]
    rows = read_rows(tmp_path / "work" / "preds.csv")
    assert [r["path"] for r in rows] == ["photos/broken.jpg", "photos/good0.jpg", "photos/good1.jpg",
                                         "photos/nested/good2.jpg", "photos/truncated.jpg"]
    assert [bool(r["class_1"]) for r in rows] == [False, True, True, True, False]
    assert all(r["prob_1"] == r["class_2"] == "" for r in rows if not r["class_1"])
    assert "photos/good0.jpg: " in result.stdout and "3 image(s) classified, 2 unreadable" in result.stdout


def test_missing_path_empty_glob_and_bad_checkpoint_are_one_sentence(trained, tiny_split, tmp_path):
    missing = run_script("predict.py", tmp_path / "nope.jpg", "--ckpt", trained)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip() == f"error: {tmp_path / 'nope.jpg'} does not exist"
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"junk")
    with pytest.raises(UserError, match="junk.pth is truncated or not a PyTorch checkpoint"):
        run_predict(tiny_split.root / "test", "--ckpt", junk)
    with pytest.raises(UserError, match=r"no file matches .*\*\.png"):
        run_predict(tiny_split.root / "*.png", "--ckpt", trained)
    with pytest.raises(UserError, match="checkpoint nothing.pth not found"):
        run_predict(tiny_split.root / "test", "--ckpt", "nothing.pth")


def test_folders_are_searched_for_every_documented_image_extension(tmp_path):
    # README, predict.py's PATH row: every extension the split accepts (GIFs too: Caltech's split holds none, but a
    # user's may)
    documented = ".jpg .jpeg .png .bmp .gif .ppm .pgm .pbm .tif .tiff .webp".split()
    folder = tmp_path / "photos"
    (folder / "deeper").mkdir(parents=True)
    images = [folder / "deeper" / f"a{ext}" for ext in documented] + [folder / "UPPER.JPG"]
    for path in [*images, folder / "notes.txt", folder / "anim.svg"]:
        path.touch()
    assert predict.find_images([str(folder)]) == sorted(images)


def test_tta_default_is_the_runs(trained, tiny_split, tmp_path):
    ckpt = torch.load(trained, weights_only=True)
    ckpt["hparams"]["tta"] = True  # a run trained with --tta
    tta_run = tmp_path / "tta_run.pth"
    torch.save(ckpt, tta_run)
    folder = tiny_split.root / "test"
    by_default = {r["path"]: dict(r["top"]) for r in run_predict(folder, "--ckpt", tta_run)}
    turned_off = {r["path"]: dict(r["top"]) for r in run_predict(folder, "--ckpt", tta_run, "--no-tta")}
    for probs, tta in ((by_default, True), (turned_off, False)):
        expected = evaluate_path(tta_run, tiny_split, "test", tta=tta)
        for path, top in probs.items():
            assert [top[c] for c in tiny_split.classes] == pytest.approx(expected[path].tolist(), abs=1e-5), tta


def test_prints_top_k_per_image_best_first_and_batches_as_asked(trained, tiny_split, monkeypatch, capsys):
    made = []
    real = predict.DataLoader

    def loader(*args, **kwargs):
        made.append(kwargs)
        return real(*args, **{**kwargs, "num_workers": 0})  # recorded, but no worker process started here
    monkeypatch.setattr(predict, "DataLoader", loader)
    rows = predict.main(predict.get_args_parser().parse_args(
        [str(tiny_split.root / "test"), "--ckpt", str(trained), "--topk", "3", "--batch-size", "5", "--workers", "2",
         "--device", "cpu"]))
    assert (made[0]["batch_size"], made[0]["num_workers"]) == (5, 2)  # 24 files: more than one batch
    lines = {line.split(": ")[0]: line.split(": ", 1)[1] for line in capsys.readouterr().out.splitlines()
             if line.startswith(str(tiny_split.root))}
    assert len(lines) == len(rows) == 24
    for row in rows:
        pairs = [cell.rsplit(" ", 1) for cell in lines[row["path"]].split(", ")]
        assert [(c, float(p)) for c, p in pairs] == [(c, pytest.approx(p, abs=1e-4)) for c, p in row["top"]]
        probs = [float(p) for _, p in pairs]
        assert len(pairs) == 3 and probs == sorted(probs, reverse=True)
    predict.main(predict.get_args_parser().parse_args(
        [str(tiny_split.samples["test"][0][0]), "--ckpt", str(trained), "--workers", "2", "--device", "cpu"]))
    assert (made[1]["batch_size"], made[1]["num_workers"]) == (64, 0)  # one batch: decoded in this process
