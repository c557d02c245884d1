"""Promises the mutation check (tools/mutate.py) found unguarded, each pinned: an output file that is a folder, a
run folder known by its name alone, an older split known by its content, our checkpoint format, the resume command,
per_class.csv's decimals, and run folders on two splits kept apart."""
import pytest

import evaluate
import grid_search
import predict
from caltech.names import parse_run_name
from caltech.report.runs import Run, is_scratch
from caltech.utils import UserError
from conftest import grid_flags


def test_an_output_file_that_is_a_folder_is_refused_before_any_work(tiny_split, tmp_path):
    folder = tmp_path / "a_folder"
    folder.mkdir()
    with pytest.raises(UserError, match=f"--results {folder} is a folder; pass a file name"):
        grid_search.main(grid_search.get_args_parser().parse_args([*grid_flags(tmp_path, tiny_split.root),
                                                                    "--results", str(folder)]))
    assert not (tmp_path / "runs").exists()
    with pytest.raises(UserError, match=f"--json {folder} is a folder"):
        evaluate.main(evaluate.get_args_parser().parse_args(["--ckpt", "x.pth", "--json", str(folder)]))
    with pytest.raises(UserError, match=f"--out {folder} is a folder"):
        predict.main(predict.get_args_parser().parse_args([str(tiny_split.root), "--ckpt", "x.pth",
                                                           "--out", str(folder)]))


def test_a_run_folder_named_scratch_is_from_scratch_without_hparams(tmp_path):
    assert parse_run_name("scratch_my_baseline") == {"scratch": True}
    assert parse_run_name("my_run") == {}
    assert is_scratch(Run(tmp_path / "scratch_my_baseline")) and not is_scratch(Run(tmp_path / "finetuned"))


def test_an_older_split_without_content_hashes_is_known_by_its_content_too(tiny_split, tmp_path):
    import shutil

    import numpy as np
    from PIL import Image

    from caltech.data.split import read_split
    data = tmp_path / "split"
    shutil.copytree(tiny_split.root, data)
    lines = (data / "split.csv").read_text().splitlines()
    (data / "split.csv").write_text("".join(line.rsplit(",", 1)[0] + "\n" for line in lines))  # path,class,split
    before = read_split(data)
    assert before.sha256 != before.listing_sha256  # the files' content counts, hashed as read
    Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(next((data / "val" / "cat").iterdir()), format="JPEG")
    after = read_split(data)
    assert after.listing_sha256 == before.listing_sha256 and after.sha256 != before.sha256


def test_a_dict_with_our_keys_but_another_format_is_not_our_checkpoint(tmp_path):
    import torch

    from caltech.training import checkpoint
    state = checkpoint.build({"w": torch.zeros(1)}, ["a", "b"], {"model": "tiny_cnn"}, 1, 0.5)
    torch.save({**state, "format": "someone-else/1"}, tmp_path / "other.pth")
    with pytest.raises(UserError, match="is not a checkpoint written by this project's train.py"):
        checkpoint.load(tmp_path / "other.pth")
    checkpoint.save(state, tmp_path / "ours.pth")
    assert checkpoint.load(tmp_path / "ours.pth")["format"] == checkpoint.FORMAT


def test_the_resume_command_carries_every_runtime_flag_given(tmp_path):
    import train
    from caltech.training.setup import resume_command
    args = train.get_args_parser().parse_args(
        ["--run-name", "r", "--logdir", "L", "--ckpt-dir", "C", "--cache-dir", "K", "--device", "cpu", "--workers",
         "3", "--threads", "2", "--eval-batch-size", "5", "--no-amp", "--compile", "--epochs", "4"])
    assert resume_command(args) == ("python train.py --run-name r --resume --logdir L --ckpt-dir C --cache-dir K "
                                    "--device cpu --workers 3 --threads 2 --eval-batch-size 5 --no-amp --compile")


def test_per_class_csv_keeps_four_decimals(tmp_path):
    import torch

    from caltech.training.evaluation import read_per_class, write_per_class
    write_per_class(tmp_path / "per_class.csv", torch.tensor([[2, 1, 0], [0, 3, 0], [1, 1, 1]]), ["a", "b", "c"])
    lines = (tmp_path / "per_class.csv").read_text().splitlines()
    assert lines == ["class,images,correct,accuracy", "a,3,2,0.6667", "b,3,3,1.0000", "c,3,1,0.3333"]
    assert list(read_per_class(tmp_path / "per_class.csv")["accuracy"]) == [0.6667, 1.0, 0.3333]


def test_run_folders_of_the_same_recipe_on_two_splits_are_two_configurations(tmp_path):
    import json

    from test_report import write_run

    from caltech.report.build import write_report
    runs = tmp_path / "runs"
    for name, split, seed, acc in (("a1", "a" * 64, 1, 0.4), ("a2", "a" * 64, 2, 0.6), ("b1", "b" * 64, 1, 0.9),
                                   ("b2", "b" * 64, 2, 0.7)):
        folder = runs / f"scratch_{name}"
        folder.mkdir(parents=True)
        write_run(folder, 2, acc, ["Loss/train", "Loss/val", "Accuracy/val"],
                  {"epochs": 2, "lr_fc": 1e-3, "lr_base": 1e-3, "seed": seed, "scratch": True, "split_sha256": split})
        metrics = {"best_val_acc": acc, "test_acc": acc, "test_mean_class_acc": acc}
        (tmp_path / "checkpoints" / f"scratch_{name}").mkdir(parents=True)
        (tmp_path / "checkpoints" / f"scratch_{name}" / "metrics.json").write_text(json.dumps(metrics))
    write_report(runs, None, tmp_path / "out")
    seeds = (tmp_path / "out" / "RESULTS.md").read_text().split("## Seed variation")[1].split("##")[0]
    rows = [line for line in seeds.splitlines() if line.startswith("|") and "---" not in line][1:]
    assert len(rows) == 2 and "50.00 ± 14.14" in rows[0] and "80.00 ± 14.14" in rows[1]  # never 65 ± 21
    assert "Split" in seeds.splitlines()[2] or any("aaaaaaaa" in r for r in rows)
