"""Numbers you can trust: a results row is reused and shown only for the settings and split that made it, a
grid's best checkpoint belongs to its results file, every bad input is one sentence before any work, and an
interruption says exactly what it kept."""
import shlex
import shutil

import pytest
import torch

import evaluate
import grid_search
import split_dataset
import train
from caltech.data.split import build_split, read_split
from caltech.training import engine
from caltech.utils import Interrupted, UserError, run_cli
from conftest import TEST_MODEL, grid_flags, kill_on_call, make_image_folder, read_rows, run_script, train_args


def grid_run(out, data, *flags):
    args = grid_search.get_args_parser().parse_args(grid_flags(out, data, "--lr-base", "1e-3", *flags))
    return grid_search.main(args)


def printed_rows(out):
    """The data lines of the results table grid_search.py printed last."""
    table = out.split("* = chosen on validation accuracy):\n")[-1].split("\n\n")[0]
    return table.splitlines()[1:]


@pytest.fixture(scope="module")
def other_split(tmp_path_factory):
    """Another 4-class split: other classes, other images."""
    base = tmp_path_factory.mktemp("other")
    make_image_folder(base / "src", classes=("eel", "fox", "gnu", "hen"), per_class=14, seed=3)
    build_split(base / "src", base / "split", seed=107, train_per_class=8, val_per_class=3)
    return read_split(base / "split")


def test_a_grid_never_reuses_nor_shows_a_row_made_with_other_settings_or_another_split(
        tiny_split, other_split, tmp_path, capsys):
    grid_run(tmp_path, tiny_split.root)
    (first,) = read_rows(tmp_path / "results.csv")
    capsys.readouterr()
    changes = {"image size": (tiny_split.root, "--image-size", "48"),
               "batch size": (tiny_split.root, "--batch-size", "4"),
               "model": (tiny_split.root, "--model", "mobilenet_v3_small"), "split": (other_split.root,)}
    for change, (data, *flags) in changes.items():
        out = grid_run(tmp_path, data, *flags)
        printed = capsys.readouterr().out
        assert "grid: 1 runs, 0 already in" in printed, change  # trained, not taken from the first row
        assert len(printed_rows(printed)) == 1 and out["rows"][0]["Run"] != first["Run"], change
    rows = read_rows(tmp_path / "results.csv")
    assert len(rows) == 5 and rows[0] == first  # the first row is neither replaced nor rewritten
    assert [(r["Image_Size"], r["Batch_Size"], r["Model"]) for r in rows] == [
        ("32", "8", TEST_MODEL), ("48", "8", TEST_MODEL), ("32", "4", TEST_MODEL), ("32", "8", "mobilenet_v3_small"),
        ("32", "8", TEST_MODEL)]
    assert [r["Split_SHA256"] for r in rows] == [tiny_split.sha256] * 4 + [other_split.sha256]
    assert len({r["Run"] for r in rows}) == 5
    # the same settings and split again: its own row, and only it
    out = grid_run(tmp_path, tiny_split.root)
    printed = capsys.readouterr().out
    assert "grid: 1 runs, 1 already in" in printed and out["rows"][0]["Run"] == first["Run"]
    assert len(printed_rows(printed)) == 1 and len(read_rows(tmp_path / "results.csv")) == 5


def test_rows_written_before_rows_recorded_their_settings_are_never_reused_and_said_so(tiny_split, tmp_path, capsys):
    old = "Experiment,Epochs,LR_FC,LR_Base,Best_Val_Acc,Test_Acc,Test_Mean_Class_Acc,Seed,Scratch,Train_Seconds,Run\n"
    old += "1,1,0.001,0.001,0.9900,0.9900,0.9900,107,True,1.0,scratch_exp1_ep1_fc0.001_base0.001_s107\n"
    (tmp_path / "results.csv").write_text(old)
    out = grid_run(tmp_path, tiny_split.root)
    printed = capsys.readouterr().out
    assert printed.count("do not record their settings and split") == 1
    assert "grid: 1 runs, 0 already in" in printed and out["rows"][0]["Best_Val_Acc"] != "0.9900"
    rows = read_rows(tmp_path / "results.csv")
    assert len(rows) == 2 and rows[0]["Best_Val_Acc"] == "0.9900"  # kept as it was, never overwritten


def test_a_grid_with_its_own_results_file_leaves_the_default_best_checkpoints_alone(
        tiny_split, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    flags = grid_flags(tmp_path, tiny_split.root, "--lr-base", "1e-3")
    del flags[flags.index("--results"):flags.index("--results") + 2]  # the default results file
    real = grid_search.main(grid_search.get_args_parser().parse_args(flags))
    default = tmp_path / "ckpt" / "best_scratch.pth"  # the default results file: the documented place
    assert (tmp_path / "grid_search_results.csv").is_file() and real["best_checkpoint"] == str(default)
    before = default.read_bytes()
    throwaway = grid_search.main(grid_search.get_args_parser().parse_args(
        [*flags, "--lr-fc", "3e-3", "--results", "sweeps/other.csv"]))
    assert default.read_bytes() == before  # untouched
    assert throwaway["best_checkpoint"] == "sweeps/other_best_scratch.pth"
    chosen = torch.load(tmp_path / "sweeps" / "other_best_scratch.pth", weights_only=True)
    assert chosen["hparams"]["lr_fc"] == 3e-3
    assert not (tmp_path / "ckpt" / "best.pth").exists()


def refused(main, parser, argv, capsys):
    """Run a script's main as its CLI does: (exit status, what it printed on stderr)."""
    with pytest.raises(SystemExit) as exit_:
        run_cli(main, parser.parse_args(argv))
    return exit_.value.code, capsys.readouterr().err


TRAIN_REFUSALS = [("--lr-fc", "-1"), ("--lr-fc", "0"), ("--lr-fc", "nan"), ("--lr-base", "-0.0001"),
                  ("--batch-size", "0"),
                  ("--image-size", "7"), ("--epochs", "0"), ("--label-smoothing", "1.5"), ("--min-scale", "0"),
                  ("--mixup", "-1"), ("--cutmix", "-0.5"), ("--gamma", "0"), ("--step-size", "0"), ("--momentum", "1"),
                  ("--weight-decay", "-1"), ("--patience", "-1"), ("--warmup-epochs", "1"), ("--threads", "0"),
                  ("--eval-batch-size", "0"), ("--workers", "-1"), ("--run-name", "a/b")]


@pytest.mark.parametrize("flag,value", TRAIN_REFUSALS)
def test_every_bad_train_and_grid_value_is_one_sentence_naming_its_flag_before_any_work(
        tiny_split, tmp_path, capsys, flag, value):
    for script in (train, grid_search):
        if script is grid_search and flag == "--run-name":
            continue
        common = ["--data", str(tiny_split.root), "--device", "cpu", "--logdir", str(tmp_path / "runs"),
                  "--ckpt-dir", str(tmp_path / "ckpt"), "--scratch", "--epochs", "1"]
        if script is grid_search:
            common += ["--results", str(tmp_path / "r.csv")]
        code, err = refused(script.main, script.get_args_parser(), [*common, flag, value], capsys)
        assert code == 2 and err.startswith(f"error: {flag} "), err
        assert len(err.strip().splitlines()) == 1, err
        assert not any(tmp_path.iterdir()), list(tmp_path.iterdir())  # nothing written


def test_grid_refuses_its_own_bad_values_before_the_first_run(tiny_split, tmp_path, capsys):
    for flags, phrase in ((["--epochs", "2", "0"], "--epochs 0 is out of range"), (["--lr", "-1"], "--lr -1.0"),
                          (["--lr", "1e-3", "--lr-fc", "1e-3"], "--lr sets both"),
                          (["--seeds", "1", "1"], "--seeds lists 1 twice"),
                          (["--tta", "on", "off", "on"], "--tta lists on twice"),
                          (["--cpus-per-trial", "0"], "--cpus-per-trial 0"),
                          (["--epochs", "1", "2", "--warmup-epochs", "1"], "--warmup-epochs 1")):
        code, err = refused(grid_search.main, grid_search.get_args_parser(),
                            ["--data", str(tiny_split.root), "--device", "cpu", "--scratch", "--results",
                             str(tmp_path / "r.csv"), "--logdir", str(tmp_path / "runs"), "--ckpt-dir",
                             str(tmp_path / "ckpt"), "--epochs", "1", "--image-size", "32", *flags], capsys)
        assert code == 2 and phrase in err and "=== run" not in capsys.readouterr().out, (flags, err)
        assert not any(tmp_path.iterdir())
    published = tmp_path / "published.csv"  # not ours: a grid would have rewritten it
    published.write_text("Experiment,Epochs,LR_FC,LR_Base,Best_Val_Acc,Test_Acc\n1,20,0.001,0.0001,0.9472,0.9591\n")
    with pytest.raises(UserError, match="is not a results file of grid_search.py"):
        grid_run(tmp_path, tiny_split.root, "--results", published)
    assert published.read_text().count("\n") == 2


def test_a_split_with_one_class_is_refused_when_made_and_when_trained_on(tiny_split, tmp_path):
    make_image_folder(tmp_path / "one", classes=("ant",), per_class=32)  # enough for the default protocol
    with pytest.raises(UserError, match="needs at least 2"):
        split_dataset.main(split_dataset.get_args_parser().parse_args(
            ["--source", str(tmp_path / "one"), "--out", str(tmp_path / "split1")]))
    # a split folder edited down to one class by hand
    single = tmp_path / "single"
    shutil.copytree(tiny_split.root, single)
    (single / "classes.txt").write_text("ant\n")
    lines = (single / "split.csv").read_text().splitlines()
    (single / "split.csv").write_text("\n".join([lines[0], *(line for line in lines[1:] if ",ant," in line)]) + "\n")
    with pytest.raises(UserError, match=f"--data {single} has 1 class"):
        train.main(train_args(tmp_path, single, "--scratch", "--epochs", 1))
    assert not (tmp_path / "runs").exists() and not (tmp_path / "ckpt").exists()


@pytest.fixture(scope="module")
def trained(tiny_split, tmp_path_factory):
    out = tmp_path_factory.mktemp("trust_run")
    train.main(train_args(out, tiny_split.root, "--scratch", "--epochs", 1, "--run-name", "r"))
    return out / "ckpt" / "r"


def test_evaluate_and_predict_refuse_what_is_not_a_checkpoint_and_predict_fails_when_nothing_is_classified(
        trained, tmp_path, capsys):
    notes = tmp_path / "notes.pth"
    notes.write_text("e" * 200 + "\nnot a checkpoint\n")
    for ckpt, phrase in ((notes, "not a PyTorch checkpoint"), (trained, f"--ckpt {trained} is a folder"),
                         (trained, f"pass the checkpoint inside it, --ckpt {trained / 'best.pth'}")):
        code, err = refused(evaluate.main, evaluate.get_args_parser(), ["--ckpt", str(ckpt)], capsys)
        assert code == 2 and phrase in err and len(err.strip().splitlines()) == 1, err
    code, err = refused(evaluate.main, evaluate.get_args_parser(),
                        ["--ckpt", str(trained / "best.pth"), "--eval-batch-size", "0"], capsys)
    assert code == 2 and "--eval-batch-size 0 is out of range" in err
    (tmp_path / "bad1.jpg").write_text("not an image")
    (tmp_path / "bad2.png").write_bytes(b"\x89PNG broken")
    result = run_script("predict.py", tmp_path / "bad1.jpg", tmp_path / "bad2.png", "--ckpt", trained / "best.pth",
                        "--device", "cpu", "--out", tmp_path / "preds.csv")
    assert result.returncode == 2 and "none of the 2 file(s) could be read as an image" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "preds.csv").exists()


def test_the_command_line_refuses_a_bad_value_without_a_traceback(tiny_split, tmp_path):
    result = run_script("train.py", "--data", tiny_split.root, "--lr-fc", "-1", "--scratch",
                        "--logdir", tmp_path / "runs", "--ckpt-dir", tmp_path / "ckpt")
    assert result.returncode == 2
    assert result.stderr == "error: --lr-fc -1.0 is out of range: it must be a positive number\n"
    assert not any(tmp_path.iterdir())


def test_ctrl_c_in_the_first_epoch_says_nothing_was_saved_and_leaves_no_folder(
        tiny_split, tmp_path, monkeypatch, capsys):
    kill_on_call(monkeypatch, engine, "train_one_epoch", 1)
    code, err = refused(train.main, train.get_args_parser(),
                        ["--data", str(tiny_split.root), "--image-size", "32", "--batch-size", "8", "--device", "cpu",
                         "--workers", "0", "--logdir", str(tmp_path / "runs"), "--ckpt-dir", str(tmp_path / "ckpt"),
                         "--scratch", "--epochs", "2"], capsys)
    assert code == 130 and "before any epoch finished: nothing was saved" in err and "resume" not in err, err
    assert not any((tmp_path / "runs").iterdir()) and not (tmp_path / "ckpt").exists()
    # a run that fails (not a Ctrl-C) in its first epoch leaves nothing behind either
    monkeypatch.setattr(engine, "train_one_epoch", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("out of memory")))
    with pytest.raises(RuntimeError):
        train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 2))
    assert not any((tmp_path / "runs").iterdir()) and not (tmp_path / "ckpt").exists()


def test_ctrl_c_in_a_later_epoch_names_what_was_kept_and_the_command_that_resumes_it(tiny_split, tmp_path, monkeypatch):
    straight = train.main(train_args(tmp_path / "straight", tiny_split.root, "--scratch", "--epochs", 3))
    with pytest.MonkeyPatch.context() as patch:
        kill_on_call(patch, engine, "train_one_epoch", 3)
        with pytest.raises(Interrupted) as stop:
            train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 3))
    message = str(stop.value)
    name = message.split("run ", 1)[1].split(" ", 1)[0]
    assert f"run {name} was interrupted in epoch 3 of 3; its first 2 epochs are saved in" in message
    assert "(last.pth, best.pth from epoch" in message
    command = stop.value.resume
    assert command.startswith(f"python train.py --run-name {name} --resume --logdir ")
    words = shlex.split(command)
    monkeypatch.chdir(tmp_path)  # paths in the command are as given; the command works as printed
    resumed = train.main(train.get_args_parser().parse_args(words[2:] + ["--data", str(tiny_split.root)]))
    assert resumed["epochs_run"] == 3 and resumed["best_val_acc"] == straight["best_val_acc"]
    assert resumed["test_acc"] == straight["test_acc"]


def test_ctrl_c_in_a_grid_says_which_runs_are_finished_and_to_rerun_it(tiny_split, tmp_path, monkeypatch):
    kill_on_call(monkeypatch, engine, "train_one_epoch", 2)  # the second run's first epoch
    with pytest.raises(Interrupted) as stop:
        grid_run(tmp_path, tiny_split.root, "--lr-fc", "1e-3", "2e-3")
    message = str(stop.value)
    assert "before any epoch finished: nothing was saved" in message
    assert f"1 of this grid's 2 runs are finished in {tmp_path / 'results.csv'}" in message
    assert message.endswith("resume it with: the same grid_search.py command")
    assert len(read_rows(tmp_path / "results.csv")) == 1 and len(list((tmp_path / "ckpt").iterdir())) == 1


def test_bench_and_device_values_are_refused_in_one_sentence_before_any_work(capsys, tmp_path):
    import bench
    for flags, phrase in ((["--steps", "-1"], "--steps -1 is out of range"),
                          (["--batch-size", "0"], "--batch-size 0 is out of range"),
                          (["--image-size", "7"], "--image-size 7 is too small for resnet18"),
                          (["--per-class", "3"], "--per-class 3 is out of range"),
                          (["--device", "foo"], "--device foo is not a device")):
        code, err = refused(bench.main, bench.get_args_parser(), ["--synthetic", *flags], capsys)
        assert code == 2 and err.startswith("error: ") and phrase in err, (flags, err)
        assert "generating" not in capsys.readouterr().out  # refused before any image is made
    # before the split is looked for: with none at --data, a later check would fail on the data instead
    code, err = refused(train.main, train.get_args_parser(),
                        ["--device", "meta", "--scratch", "--data", str(tmp_path / "no_split")], capsys)
    assert code == 2 and "--device meta is not supported" in err
