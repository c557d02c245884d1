"""report.py from whatever runs exist (train.py runs without a results CSV, a from-scratch grid, a mix), with
titles, legends and captions that say what is plotted and whose, evaluation folders never taken from elsewhere,
and our published-recipe runs set against the published grid."""
import json

import pandas as pd
import pytest
from test_report import PUBLISHED_TAGS, run_report, table_rows, write_run

import evaluate
import grid_search
import train
from caltech.grid.results import COLUMNS
from caltech.report import figures as plots
from caltech.report import labels, reproduce
from conftest import ORIGINAL_RUNS, TEST_MODEL, grid_flags, train_args

CURVES = ["val_accuracy", "train_loss", "val_loss"]


@pytest.fixture
def figures(monkeypatch):
    """{figure file name: (title, [legend labels])} of every figure saved."""
    seen = {}
    save = plots.save_figure

    def record(fig, path):
        seen[path.name] = (fig.axes[0].get_title(), [line.get_label() for line in fig.axes[0].lines])
        save(fig, path)
    monkeypatch.setattr(plots, "save_figure", record)
    return seen


def write_eval(folder, n_classes):
    import torch
    classes = [f"class{i}" for i in range(n_classes)]
    evaluate.write_tables(folder, classes, torch.eye(n_classes, dtype=torch.long) * 3 + 1)
    return folder


def warnings_of(err):
    return [line for line in err.splitlines() if line.startswith("warning:")]


def test_train_runs_report_without_a_results_csv(tiny_split, tmp_path, monkeypatch, capsys, figures,
                                                 planted_weights):
    monkeypatch.chdir(tmp_path)  # report.py's defaults: runs/ here, no results CSV anywhere
    finetuned = train.main(train_args(tmp_path, tiny_split.root, "--epochs", 2, "--weights", planted_weights,
                                      "--run-name", "ft"))
    (tmp_path / "runs" / "crashed").mkdir()  # a run killed before it logged anything
    run_report("--out", tmp_path / "one")
    err = capsys.readouterr().err
    assert "Traceback" not in err
    empty = [w for w in warnings_of(err) if "crashed" in w]
    assert len(empty) == 1 and "no event file" in empty[0]
    assert sorted(p.name for p in (tmp_path / "one").glob("*.png")) == [f"fig{i + 1}_{c}.png"
                                                                        for i, c in enumerate(CURVES)]
    title, legend = figures["fig1_val_accuracy.png"]
    assert title == "Validation accuracy of the fine-tuned run\nfrom runs/"
    assert legend == ["Adam fc 1e-3 / base 1e-4"]
    md = (tmp_path / "one" / "RESULTS.md").read_text()
    (row,) = table_rows(md, "## Runs")
    assert row[:6] == ["", "`ft`", "fine-tuned",
                       f"{TEST_MODEL}, Adam fc 1e-3 / base 1e-4, 2 ep, 32 px, 4 classes, batch 8", "107", "2"]
    assert row[6:9] == [f"{100 * finetuned[k]:.2f}" for k in ("best_val_acc", "test_acc", "test_mean_class_acc")]
    assert "**best**" not in md and "*figs 4-6*" not in md  # one run: nothing was chosen
    assert "grid" not in md.split("## Figures")[1]

    scratch = train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 1, "--optimizer", "adamw",
                                    "--lr-base", "1e-3", "--run-name", "sc"))
    figures.clear()
    run_report("--out", tmp_path / "two")
    assert "Traceback" not in capsys.readouterr().err
    title, legend = figures["fig4_best_vs_scratch_val_accuracy.png"]
    assert title == "Validation accuracy: fine-tuned run vs training from scratch\nfrom runs/"
    assert legend == ["fine-tuned, Adam fc 1e-3 / base 1e-4, 2 ep", "scratch, AdamW 1e-3, 1 ep"]
    assert figures["fig1_val_accuracy.png"][0].startswith("Validation accuracy of the fine-tuned run\n")
    rows = table_rows((tmp_path / "two" / "RESULTS.md").read_text(), "## Runs")
    assert [(r[1], r[2], r[3], r[7]) for r in rows] == [
        ("`ft`", "fine-tuned", f"{TEST_MODEL}, Adam fc 1e-3 / base 1e-4, 2 ep, 32 px, 4 classes, batch 8",
         f"{100 * finetuned['test_acc']:.2f}"),
        ("`sc`", "scratch", f"{TEST_MODEL}, AdamW 1e-3, 1 ep, 32 px, 4 classes, batch 8",
         f"{100 * scratch['test_acc']:.2f}")]


def test_a_scratch_grid_mixed_with_train_runs_says_what_each_figure_shows(tiny_split, tmp_path, capsys, figures):
    out = tmp_path / "grid"
    grid_search.main(grid_search.get_args_parser().parse_args(
        grid_flags(out, tiny_split.root, "--lr-base", "1e-4", "1e-3")))
    (out / "runs" / "killed").mkdir()
    eval_dir = write_eval(out / "eval", 6)  # beside runs/: a 6-class model's tables
    run_report("--runs", out / "runs", "--results", out / "results.csv", "--out", out / "report")
    assert "Traceback" not in capsys.readouterr().err
    titles = {name: title for name, (title, _) in figures.items()}
    assert titles["fig1_val_accuracy.png"] == f"Validation accuracy of the from-scratch grid\nfrom {out / 'runs'}/"
    assert not any(name.startswith(("fig4", "fig5", "fig6")) for name in figures)  # no fine-tuned run: no versus
    assert figures["fig1_val_accuracy.png"][1] == ["Adam fc 1e-3 / base 1e-4", "Adam 1e-3"]
    md = (out / "report" / "RESULTS.md").read_text()
    assert "fine-tuned run chosen" not in md and "**best** marks the from-scratch run chosen" in md
    (marked,) = [r for r in table_rows(md, "## Grid search") if r[0]]
    assert marked[0] == "**best**" and "True" in marked
    assert titles["fig7_worst_classes.png"] == \
        f"The 6 classes with the lowest accuracy, of 6\nevaluate.py --out {eval_dir}"
    assert f"**Figure 7.** The 6 classes with the lowest accuracy, of 6; evaluate.py --out {eval_dir}." in md
    assert f"`evaluate.py --out {eval_dir}`, found beside {out / 'runs'}" in md

    # a fine-tuned train.py run beside the grid: figures 1-3 stay the grid, figures 4-6 set the run against it
    write_run(out / "runs" / "finetune_ep3", 3, 0.9, PUBLISHED_TAGS,
              {"epochs": 3, "lr_fc": 1e-3, "lr_base": 1e-4, "seed": 107, "scratch": False, "model": TEST_MODEL})
    figures.clear()
    run_report("--runs", out / "runs", "--results", out / "results.csv", "--out", out / "mixed")
    assert figures["fig1_val_accuracy.png"][0].startswith("Validation accuracy of the from-scratch grid\n")
    title, legend = figures["fig4_best_vs_scratch_val_accuracy.png"]
    assert title.startswith("Validation accuracy: fine-tuned run vs training from scratch\n")
    assert legend == ["fine-tuned, Adam fc 1e-3 / base 1e-4, 3 ep", "scratch, Adam fc 1e-3 / base 1e-4, 1 ep, batch 8",
                      "scratch, Adam 1e-3, 1 ep, batch 8"]  # the grid's runs differ from the default batch too
    others = table_rows((out / "mixed" / "RESULTS.md").read_text(), f"## Other runs in `{out / 'runs'}`")
    assert [r[1] for r in others] == ["`finetune_ep3`"]


def test_evaluations_come_only_from_eval_or_beside_runs(tmp_path, monkeypatch, figures):
    published = tmp_path / "shared" / "original_runs"
    write_run(published / "grid_exp1_ep2_fc0.001_base0.0001_0527_165803", 2, 0.9, PUBLISHED_TAGS)
    write_run(published / "scratch_ep2_fc0.001_base0.0001_0527_182610", 2, 0.3, PUBLISHED_TAGS)
    pd.DataFrame({"Experiment": [1], "Epochs": [2], "LR_FC": [0.001], "LR_Base": [0.0001], "Best_Val_Acc": [0.9],
                  "Test_Acc": [0.91]}).to_csv(published / "grid_search_results.csv", index=False)
    here = tmp_path / "checkout"
    write_eval(here / "eval", 6)  # a local model's evaluation
    monkeypatch.chdir(here)
    run_report("--runs", published, "--out", "published")
    assert not any(name.startswith(("fig7", "fig8")) for name in figures)
    md = (here / "published" / "RESULTS.md").read_text()
    assert "evaluate.py" not in md and f"`{published / 'grid_search_results.csv'}` (1 run)" in md
    assert figures["fig4_best_vs_scratch_val_accuracy.png"][0].endswith(f"\nfrom {published}/")
    assert figures["fig4_best_vs_scratch_val_accuracy.png"][1] == ["fine-tuned, Adam fc 1e-3 / base 1e-4",
                                                                   "scratch, Adam fc 1e-3 / base 1e-4"]
    run_report("--runs", published, "--out", "told", "--eval", "eval", "--eval-name", "local")
    assert figures["fig7_local_worst_classes.png"][0] == \
        "The local model's 6 classes with the lowest accuracy, of 6\nevaluate.py --out eval"


def results_row(experiment, epochs, lr_fc, lr_base, val, test, seed=1, scratch=False, recipe="", settings=None):
    return {"Experiment": experiment, "Epochs": epochs, "LR_FC": lr_fc, "LR_Base": lr_base, "Best_Val_Acc": val,
            "Test_Acc": test, "Test_Mean_Class_Acc": test, "Seed": seed, "Scratch": str(scratch),
            "Train_Seconds": 1.0, "Run": f"r{experiment}_{seed}_{recipe}", "Recipe": recipe, "Epochs_Run": epochs,
            "Settings": "" if settings is None else json.dumps(settings)}


def published_hparams(**changes):
    hparams = {**vars(train.get_args_parser().parse_args([])), "image_size": 224, "weights_name": "IMAGENET1K_V1",
               "num_classes": 101}
    return {**hparams, **changes}


def test_our_published_recipe_runs_are_set_against_the_published_grid(tmp_path):
    recipe = {"epochs": 20, "lr_fc": 0.001, "lr_base": 1e-4, "scratch": False, "model": "resnet18",
              "image_size": 224, "batch_size": 32, "step_size": 10, "gamma": 0.1}
    rows = [results_row(1, 20, 0.001, 0.0001, 0.94, 0.95, seed=1, settings={**recipe, "seed": 1}),
            results_row(1, 20, 0.001, 0.0001, 0.95, 0.96, seed=2, settings={**recipe, "seed": 2}),
            results_row(1, 20, 0.001, 0.0001, 0.96, 0.97, seed=3),  # no Settings: taken on its other columns
            results_row(2, 20, 0.001, 1e-05, 0.80, 0.81, seed=1), results_row(2, 20, 0.001, 1e-05, 0.81, 0.82, seed=2),
            results_row(3, 20, 0.0005, 0.0001, 0.90, 0.95),
            # not the published recipe: a recipe option, a smaller image, another model, from scratch
            results_row(4, 20, 0.0005, 1e-05, 0.5, 0.5, recipe="adamw"),
            results_row(5, 30, 0.001, 0.0001, 0.5, 0.5, settings={**recipe, "epochs": 30, "image_size": 112}),
            results_row(6, 30, 0.001, 1e-05, 0.5, 0.5, settings={**recipe, "epochs": 30, "model": "resnet50"}),
            results_row(7, 30, 0.0005, 0.0001, 0.5, 0.5, scratch=True)]
    columns = list(dict.fromkeys([*COLUMNS, "Settings"]))
    pd.DataFrame(rows, columns=columns).to_csv(tmp_path / "results.csv", index=False)
    runs = tmp_path / "runs"
    for row in rows:
        write_run(runs / row["Run"], 2, 0.5, PUBLISHED_TAGS)
    # run folders no row names: a train.py run of experiment 8 with the published recipe, one with label smoothing
    for name, hparams in (("ours8", published_hparams(epochs=30, lr_fc=5e-4, lr_base=1e-5)),
                          ("smoothed8", published_hparams(epochs=30, lr_fc=5e-4, lr_base=1e-5, label_smoothing=0.1))):
        write_run(runs / name, 2, 0.5, PUBLISHED_TAGS, {**hparams, "logdir": "runs", "ckpt_dir": "checkpoints"})
        (tmp_path / "checkpoints" / name).mkdir(parents=True)
        (tmp_path / "checkpoints" / name / "metrics.json").write_text(json.dumps(
            {"best_val_acc": 0.9389, "test_acc": 0.9, "test_mean_class_acc": 0.9, "test_top5": 1.0, "epochs_run": 30}))
    run_report("--runs", runs, "--results", tmp_path / "results.csv", "--out", tmp_path / "out")
    md = (tmp_path / "out" / "RESULTS.md").read_text()
    table = {r[0]: r for r in table_rows(md, "## Reproduction of the published grid")}
    assert list(table) == ["1", "2", "3", "8"]
    assert table["1"][1:] == ["20", "0.001", "0.0001", "3", "94.72", "95.00 ± 1.00", "+0.28", "yes",
                              "95.91", "96.00 ± 1.00", "+0.09", "yes"]
    assert table["2"][4:] == ["2", "93.89", "80.50 ± 0.71", "-13.39", "no", "95.43", "81.50 ± 0.71", "-13.93", "no"]
    assert table["3"][4:] == ["1", "95.21", "90.00", "-5.21", "-", "96.14", "95.00", "-1.14", "-"]
    assert table["8"][4:9] == ["1", "93.89", "93.89", "+0.00", "-"]  # the published-recipe train.py run alone
    assert "mean ± 2 standard deviations" in md and "Not run here: experiments 4, 5, 6, 7." in md


def test_the_published_results_have_one_home_and_are_not_checked_against_themselves(tmp_path):
    assert reproduce.PUBLISHED["Experiment"].tolist() == list(range(1, 9))
    assert reproduce.PUBLISHED.loc[4, "Test_Acc"] == 0.9633 and reproduce.PUBLISHED.loc[2, "Best_Val_Acc"] == 0.9521
    if ORIGINAL_RUNS.is_dir():
        pd.testing.assert_frame_equal(reproduce.PUBLISHED, pd.read_csv(ORIGINAL_RUNS / "grid_search_results.csv"))
        run_report("--runs", ORIGINAL_RUNS, "--out", tmp_path / "published")
        assert "## Reproduction" not in (tmp_path / "published" / "RESULTS.md").read_text()


def test_labels_name_only_what_tells_runs_apart():
    scratch = labels.run_parts({"scratch": True, "optimizer": "adamw", "lr_fc": 1e-3, "lr_base": 1e-3, "seed": 107,
                                "epochs": 30, "label_smoothing": 0.1})
    finetuned = labels.run_parts({"scratch": False, "lr_fc": 1e-3, "lr_base": 1e-4, "seed": 107, "epochs": 30,
                                  "label_smoothing": 0.0})
    assert labels.distinguishing_labels([scratch, finetuned], keep=("mode", "lr")) == [
        "scratch, AdamW 1e-3, ls 0.1", "fine-tuned, Adam fc 1e-3 / base 1e-4"]
    other_seed = {**finetuned, "seed": "seed 108", "epochs": "20 ep"}
    assert labels.distinguishing_labels([finetuned, other_seed], keep=("mode", "lr")) == [
        "fine-tuned, Adam fc 1e-3 / base 1e-4, 30 ep, seed 107",
        "fine-tuned, Adam fc 1e-3 / base 1e-4, 20 ep, seed 108"]


def test_a_choice_reads_with_its_noun_so_a_cosine_loss_is_not_the_cosine_schedule():
    base = {"scratch": True, "lr_fc": 1e-3, "lr_base": 1e-3, "seed": 107, "schedule": "cosine", "train_crop": "resized"}
    runs = [labels.run_parts(base), labels.run_parts({**base, "loss": "cosine"})]
    assert labels.distinguishing_labels(runs, keep=("schedule", "train_crop", "loss")) == [
        "cosine, resized crop", "cosine, resized crop, cosine loss"]


def test_crashed_runs_with_empty_folders_are_skipped_in_one_line_each(tmp_path, capsys):
    runs = tmp_path / "runs"
    rows = [results_row(1, 2, 0.001, 0.0001, 0.9, 0.9), results_row(2, 2, 0.001, 1e-05, 0.8, 0.8)]
    pd.DataFrame(rows, columns=list(dict.fromkeys([*COLUMNS, "Settings"]))).to_csv(tmp_path / "r.csv",
                                                                                        index=False)
    write_run(runs / rows[0]["Run"], 2, 0.9, PUBLISHED_TAGS)
    (runs / rows[1]["Run"]).mkdir()  # its row was written, then its logs lost
    (runs / "crashed_a").mkdir()
    (runs / "crashed_b").mkdir()
    run_report("--runs", runs, "--results", tmp_path / "r.csv", "--out", tmp_path / "out")
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert [w for w in warnings_of(err) if "skipped" in w] == [
        f"warning: 2 folder(s) in {runs} hold no event file (a run that crashed before it logged, or not a run), "
        "skipped: crashed_a, crashed_b"]
    assert len([w for w in warnings_of(err) if rows[1]["Run"] in w]) == 1
    assert (tmp_path / "out" / "fig1_val_accuracy.png").exists()
    run_report("--runs", runs, "--out", tmp_path / "folders")  # without the CSV: the one run with logs
    assert [r[1] for r in table_rows((tmp_path / "folders" / "RESULTS.md").read_text(), "## Runs")] == [
        f"`{rows[0]['Run']}`"]
