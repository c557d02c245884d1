"""Nothing stale, nothing silent: a split known by its content, evaluation on the split that trained the checkpoint,
seeds never pooled across recipes or splits, and one sentence for every unwritable or full output location."""
import contextlib
import errno
import json
import multiprocessing
import os
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import evaluate
import grid_search
import predict
import report
import split_dataset
import train
from caltech.data import cache
from caltech.data.split import build_split, read_split
from caltech.grid import trials
from caltech.training import checkpoint, setup
from caltech.utils import UserError, writing_failed
from conftest import grid_flags, make_image_folder, read_rows, run_script, train_args


def split_of(source, out, seed=107):
    build_split(source, out, seed=seed, train_per_class=8, val_per_class=3)
    return read_split(out)


def repaint(folder, colour):
    """Every image of `folder` replaced by another picture under the same name."""
    for path in sorted(folder.iterdir()):
        Image.fromarray(np.full((40, 48, 3), colour, np.uint8)).save(path, quality=90)


def grid(out, data, *flags):
    return grid_search.main(grid_search.get_args_parser().parse_args(grid_flags(out, data, "--lr-base", 1e-4,
                                                                                *flags)))


def test_a_split_is_known_by_its_content_in_its_fingerprint_cache_and_rows(tmp_path, capsys):
    source = make_image_folder(tmp_path / "src", classes=("ant", "bee", "cat", "dog"), per_class=14)
    first = split_of(source, tmp_path / "split")
    grid(tmp_path, first.root)
    repaint(source / "bee", (10, 200, 30))  # new files, the same names: the file list is unchanged
    second = split_of(source, tmp_path / "split")
    assert second.listing_sha256 == first.listing_sha256 and second.sha256 != first.sha256
    capsys.readouterr()
    grid(tmp_path, second.root)
    assert "grid: 1 runs, 0 already in" in capsys.readouterr().out  # the old row is another split's
    rows = read_rows(tmp_path / "results.csv")
    assert [r["Split_SHA256"] for r in rows] == [first.sha256, second.sha256] and rows[0]["Run"] != rows[1]["Run"]
    weights = [torch.load(tmp_path / "ckpt" / r["Run"] / "last.pth", weights_only=True)["model"] for r in rows]
    assert not torch.equal(weights[0]["fc.weight"], weights[1]["fc.weight"])  # trained on the new pixels
    caches = {p.name for p in (tmp_path / "cache").iterdir()}
    assert len(caches) == 6  # train, val and test caches of each split: the first ones are never read again
    assert cache.cache_file(tmp_path / "cache", first, "val", 32) != cache.cache_file(tmp_path / "cache", second,
                                                                                       "val", 32)


def test_a_split_whose_files_changed_after_it_was_made_is_refused(tiny_split, tmp_path):
    data = tmp_path / "split"
    shutil.copytree(tiny_split.root, data)
    victim = next((data / "train" / "ant").iterdir())
    Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(victim, format="JPEG")  # edited in place
    with pytest.raises(UserError, match=r"1 files of .* changed since split_dataset.py made it .*ant"):
        read_split(data)
    with pytest.raises(UserError, match="changed since"):
        train.main(train_args(tmp_path, data, "--scratch", "--epochs", 1))
    assert not (tmp_path / "runs").exists()


def test_a_resumed_run_refuses_a_split_whose_pixels_changed(tmp_path):
    source = make_image_folder(tmp_path / "src", classes=("ant", "bee", "cat"), per_class=12)
    split = split_of(source, tmp_path / "split")
    args = train_args(tmp_path, split.root, "--scratch", "--epochs", 2, "--run-name", "r")
    train.main(args)
    repaint(source / "cat", (250, 250, 0))
    split_of(source, tmp_path / "split")
    with pytest.raises(UserError, match="differs from the one run r was trained on"):
        train.main(train_args(tmp_path, split.root, "--run-name", "r", "--resume"))


def test_evaluate_scores_a_checkpoint_only_on_the_split_it_was_trained_on(tmp_path, monkeypatch, capsys):
    source = make_image_folder(tmp_path / "src", classes=("ant", "bee", "cat", "dog"), per_class=14)
    split = split_of(source, tmp_path / "data" / "split")
    train.main(train_args(tmp_path, split.root, "--scratch", "--epochs", 1, "--run-name", "r"))
    best = tmp_path / "ckpt" / "r" / "best.pth"
    trained_on = split.sha256
    other = split_of(source, tmp_path / "data" / "split", seed=108)  # the quick start's re-split, another seed
    with pytest.raises(UserError) as refused:
        evaluate.main(evaluate.get_args_parser().parse_args(["--ckpt", str(best)]))
    message = str(refused.value)
    assert trained_on[:12] in message and other.sha256[:12] in message and "--allow-other-split" in message
    scored = evaluate.main(evaluate.get_args_parser().parse_args(
        ["--ckpt", str(best), "--allow-other-split", "--out", str(tmp_path / "eval")]))
    assert scored["other_split"] is True and scored["trained_on_split"] == trained_on
    assert "warning:" in capsys.readouterr().err
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["other_split"] is True
    monkeypatch.chdir(tmp_path)
    report.main(report.get_args_parser().parse_args(["--runs", "runs", "--eval", "eval", "--out", "reports"]))
    assert "on a split other than the one the model was trained on" in (tmp_path / "reports" / "RESULTS.md").read_text()
    # a checkpoint from before fingerprints covered the content names its split by the file list: still scored
    ckpt = torch.load(best, weights_only=True)
    split_of(source, tmp_path / "data" / "split")  # the split it was trained on, again
    ckpt["hparams"]["split_sha256"] = read_split(tmp_path / "data" / "split").listing_sha256
    torch.save(ckpt, tmp_path / "older.pth")
    assert evaluate.main(evaluate.get_args_parser().parse_args(["--ckpt", str(tmp_path / "older.pth")]))[
        "other_split"] is False


def test_seed_statistics_never_pool_another_split_or_recipe_and_say_what_tells_them_apart(tiny_split, tmp_path):
    rows = []
    for split, size, seed, acc in (("a" * 64, 32, 107, 0.5), ("a" * 64, 32, 108, 0.7), ("b" * 64, 32, 108, 0.1),
                                   ("a" * 64, 48, 107, 0.9), ("a" * 64, 48, 108, 0.9)):
        settings = {"epochs": 1, "lr_fc": 1e-3, "lr_base": 1e-3, "seed": seed, "scratch": True, "image_size": size}
        rows.append({"Experiment": "1", "Epochs": "1", "LR_FC": "0.001", "LR_Base": "0.001", "Best_Val_Acc": acc,
                     "Test_Acc": acc, "Test_Mean_Class_Acc": acc, "Seed": str(seed), "Scratch": "True",
                     "Recipe": "", "Split_SHA256": split, "Settings": json.dumps(settings)})
    stats = trials.seed_stats(rows)
    assert [(e["n"], round(e["Best_Val_Acc"][0], 4)) for e in stats] == [(2, 0.6), (1, 0.1), (2, 0.9)]
    assert trials.apart(stats) == ["image_size", "Split"]
    from caltech.report.markdown import seed_table
    header = seed_table(stats).splitlines()[0]
    assert "image_size" in header and "Split" in header


@contextlib.contextmanager
def read_only(folder):
    """`folder` made unwritable for this user (root: immutable, as permission bits do not stop root)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        undo = ["chmod", "755", str(folder)]
    else:
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
            pytest.skip("cannot make a folder read-only for root here (chattr +i)")
        undo = ["chattr", "-i", str(folder)]
    try:
        yield folder
    finally:
        subprocess.run(undo, check=True)


@pytest.mark.parametrize("where", ["--logdir", "--ckpt-dir", "--cache-dir"])
def test_an_unwritable_output_folder_of_a_run_is_one_sentence_before_any_work(tiny_split, tmp_path, where):
    with read_only(tmp_path / "locked"):
        flags = {"--logdir": tmp_path / "runs", "--ckpt-dir": tmp_path / "ckpt", "--cache-dir": tmp_path / "cache"}
        flags[where] = tmp_path / "locked" / "sub"
        with pytest.raises(UserError) as refused:
            train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 1,
                                  *(x for pair in flags.items() for x in pair)))
        assert str(refused.value) == f"{where} {tmp_path / 'locked' / 'sub'} is not writable ({tmp_path / 'locked'} " \
            "does not let this user write in it)"
        assert not any(p.exists() for p in (tmp_path / "runs", tmp_path / "ckpt", tmp_path / "cache"))


def test_every_script_refuses_an_unwritable_output_before_any_work(tiny_split, tmp_path):
    trained = tmp_path / "r.pth"
    train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 1, "--run-name", "r"))
    shutil.copy(tmp_path / "ckpt" / "r" / "best.pth", trained)
    with read_only(tmp_path / "locked") as locked:
        commands = {
            grid_search: [*grid_flags(tmp_path / "g", tiny_split.root), "--results", locked / "results.csv"],
            split_dataset: ["--source", tmp_path / "nowhere", "--out", locked / "split"],
            evaluate: ["--ckpt", trained, "--out", locked / "eval"],
            predict: [tiny_split.root / "test", "--ckpt", trained, "--out", locked / "p.csv"],
            report: ["--runs", tmp_path / "runs", "--out", locked / "reports"],
        }
        for script, argv in commands.items():
            with pytest.raises(UserError, match=r"^--(results|out) .* is not writable") as refused:
                script.main(script.get_args_parser().parse_args(list(map(str, argv))))
            assert str(locked) in str(refused.value), script
    assert not (tmp_path / "g" / "runs").exists()  # the grid trained nothing


def test_too_little_room_is_refused_before_the_cache_or_the_first_epoch(tiny_split, tmp_path, monkeypatch):
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=10_000))
    with pytest.raises(UserError, match=r"--ckpt-dir .* need about .* MB and the disk holding .* has 0 MB free"):
        train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 1, "--cache-dir", tmp_path / "c"))
    assert not (tmp_path / "c").exists() and not (tmp_path / "runs").exists()
    monkeypatch.setattr(shutil, "disk_usage", real)
    needs = {}
    monkeypatch.setattr(setup, "check_room", lambda asked: needs.update(asked))
    train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 1, "--run-name", "room",
                          "--cache-dir", tmp_path / "fresh"))
    weights = sum(t.numel() * t.element_size() for t in torch.load(
        tmp_path / "ckpt" / "room" / "best.pth", weights_only=True)["model"].values())
    assert needs["--ckpt-dir"][1] == 4 * weights  # best.pth, and last.pth with Adam's two moments
    sizes = {"train": 37, "val": 32, "test": 32}  # the train resize of 32 px crops, the eval side
    assert needs["--cache-dir"][1] == sum(len(tiny_split.samples[n]) * 3 * s * s for n, s in sizes.items())


def full_after(writes):
    """torch.save on a disk that fills after `writes` files."""
    real, calls = torch.save, []

    def save(state, path):
        calls.append(path)
        if len(calls) > writes:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(state, path)
    return save


def test_a_disk_that_fills_during_a_run_is_one_sentence_and_leaves_nothing_half_written(tiny_split, tmp_path,
                                                                                      monkeypatch):
    monkeypatch.setattr(checkpoint.torch, "save", full_after(2))  # epoch 1's best.pth and last.pth, then full
    with pytest.raises(UserError) as failed:
        train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 3, "--run-name", "full"))
    message = str(failed.value)
    assert message.startswith("could not write") and "the disk is full" in message and "--resume" in message
    folder = tmp_path / "ckpt" / "full"
    assert sorted(p.name for p in folder.iterdir()) == ["best.pth", "last.pth"]  # no temporary file left
    assert torch.load(folder / "last.pth", weights_only=True)["epoch"] == 1
    monkeypatch.setattr(checkpoint.torch, "save", full_after(0))
    with pytest.raises(UserError, match="saved nothing and its folders were removed"):
        train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 2, "--run-name", "none"))
    assert not (tmp_path / "ckpt" / "none").exists() and not (tmp_path / "runs" / "none").exists()


def test_a_cache_that_cannot_be_written_whole_leaves_no_file_and_no_worker(tiny_split, tmp_path, monkeypatch):
    images = [p for p, _ in tiny_split.samples["test"]] * 4  # 96: decoded by a pool of workers
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(images[0].read_bytes()[:300])  # a truncated JPEG among them
    with pytest.raises(UserError, match=f"could not decode {broken}"):
        cache.build(tmp_path / "cache" / "x.npy", images[:20] + [broken] + images[20:], 32, workers=2)
    assert list((tmp_path / "cache").iterdir()) == [] and multiprocessing.active_children() == []
    monkeypatch.setattr(os, "posix_fallocate", full_fallocate)  # a disk too full for the cache
    with pytest.raises(OSError) as failed:
        cache.build(tmp_path / "cache" / "x.npy", images, 32, workers=2)
    assert str(writing_failed(failed.value)).endswith(": the disk is full")
    assert list((tmp_path / "cache").iterdir()) == [] and multiprocessing.active_children() == []


def full_fallocate(fd, offset, size):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_truncated_image_on_the_pil_loader_is_one_sentence(tiny_split, tmp_path):
    data = tmp_path / "split"
    shutil.copytree(tiny_split.root, data)
    victim = next((data / "train" / "bee").iterdir())
    victim.write_bytes(victim.read_bytes()[:300])
    (data / "split.csv").write_text("".join(line.rsplit(",", 1)[0] + "\n" if i else "path,class,split\n"
                                            for i, line in enumerate((data / "split.csv").read_text().splitlines())))
    proc = run_script("train.py", "--data", data, "--scratch", "--epochs", 1, "--image-size", 32, "--device", "cpu",
                      "--model", "tiny_cnn", "--loader", "pil", "--workers", 1, "--logdir", tmp_path / "runs",
                      "--ckpt-dir", tmp_path / "ckpt")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: could not decode {victim}")


def test_a_reused_row_whose_checkpoint_folder_was_deleted_is_one_sentence(tiny_split, tmp_path):
    grid(tmp_path, tiny_split.root)
    (row,) = read_rows(tmp_path / "results.csv")
    shutil.rmtree(tmp_path / "ckpt" / row["Run"])
    with pytest.raises(UserError, match=f"run {row['Run']}, chosen on validation, has no .*best.pth"):
        grid(tmp_path, tiny_split.root)


def test_split_dataset_refuses_an_out_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="--out .*file is a file, not a folder"):
        split_dataset.main(split_dataset.get_args_parser().parse_args(["--out", str(tmp_path / "file")]))


def test_a_report_removes_the_figures_of_an_earlier_report_it_does_not_draw_again(tiny_split, tmp_path):
    train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 1, "--run-name", "r"))
    evaluate.main(evaluate.get_args_parser().parse_args(["--ckpt", str(tmp_path / "ckpt" / "r" / "best.pth"),
                                                         "--out", str(tmp_path / "eval")]))
    out = tmp_path / "reports"
    report.main(report.get_args_parser().parse_args(["--runs", str(tmp_path / "runs"), "--eval",
                                                     str(tmp_path / "eval"), "--out", str(out)]))
    assert {"fig7_worst_classes.png", "fig8_confusion.png"} <= {p.name for p in out.iterdir()}
    (out / "notes.txt").write_text("mine")  # not the report's: kept
    shutil.rmtree(tmp_path / "eval")  # no evaluation beside the runs any more: no figures 7-8
    report.main(report.get_args_parser().parse_args(["--runs", str(tmp_path / "runs"), "--out", str(out)]))
    assert sorted(p.name for p in out.iterdir()) == ["RESULTS.md", "fig1_val_accuracy.png", "fig2_train_loss.png",
                                                     "fig3_val_loss.png", "notes.txt"]


def test_class_names_the_figure_font_lacks_are_one_warning_not_matplotlibs(tmp_path, capsys):
    import warnings

    from caltech.report.figures import plot_worst_classes
    rows = pd.DataFrame({"class": ["犬", "猫", "ant"], "images": [3, 3, 3], "correct": [1, 2, 3],
                         "accuracy": [1 / 3, 2 / 3, 1.0]})
    with warnings.catch_warnings(record=True) as raw:
        warnings.simplefilter("always")
        plot_worst_classes(rows, tmp_path / "worst.png")
    assert not [w for w in raw if "Glyph" in str(w.message)]
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(lines) == 1 and "not in the figure's font" in lines[0]


def test_a_value_argparse_refuses_is_one_sentence_without_the_usage_block(capsys):
    for script, argv in ((train, ["--epochs", "x"]), (grid_search, ["--optimizer", "rmsprop"]),
                         (evaluate, ["--split", "train"]), (predict, [])):
        with pytest.raises(SystemExit) as exited:
            script.get_args_parser().parse_args(argv)
        err = capsys.readouterr().err
        assert exited.value.code == 2 and len(err.strip().splitlines()) == 1, err
        assert err.startswith("error: ") and "usage:" not in err


def test_evaluate_without_a_checkpoint_says_where_train_py_and_the_grid_keep_theirs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as missing:
        evaluate.main(evaluate.get_args_parser().parse_args([]))
    assert "grid_search.py writes checkpoints/best.pth" in str(missing.value)
    assert "a train.py run checkpoints/RUN/best.pth" in str(missing.value)
