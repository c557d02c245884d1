"""bench.py runs both pipelines side by side and reports every figure (timings are never asserted)."""
import json

import pytest
from PIL import Image

import bench
import train
from caltech.training import engine

KEYS = [f"{m}_{p}" for m in ("pipeline_img_s", "train_img_s", "eval_img_s", "epoch_s") for p in ("original", "project")]


def test_synthetic_benchmark_measures_whole_passes_of_both_pipelines(tmp_path, capsys, monkeypatch):
    passes = []
    real = engine.train_one_epoch
    monkeypatch.setattr(engine, "train_one_epoch", lambda *a, **k: (passes.append(real(*a, **k)), passes[-1])[1])
    args = bench.get_args_parser().parse_args(
        ["--synthetic", "--classes", "3", "--per-class", "13", "--steps", "0", "--image-size", "32",
         "--batch-size", "2", "--device", "cpu", "--json", str(tmp_path / "bench.json")])
    results = bench.main(args)
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved == results and saved["device"] == "cpu"
    for key in KEYS:
        assert saved[key] > 0, key
    for pipeline in ("original", "project"):  # the derived figures: an epoch of the real 2,424 training images
        assert saved[f"epoch_s_{pipeline}"] == pytest.approx(2424 / saved[f"train_img_s_{pipeline}"])
        assert saved[f"input_share_{pipeline}"] == pytest.approx(
            saved[f"train_img_s_{pipeline}"] / saved[f"pipeline_img_s_{pipeline}"])
    # 3 classes x 13 images: 10 train per class (12 train + val, 2 of them val); --steps 0 measures whole passes
    # (15 batches of 2, more than the default 10 steps), after a one-batch warm-up, for each pipeline
    assert saved["train_images"] == 30 and (saved["image_size"], saved["batch_size"]) == (32, 2)
    assert [p["n"] for p in passes] == [2, 30, 2, 30]
    out = capsys.readouterr().out
    header, train_line = (next(line for line in out.splitlines() if line.lstrip().startswith(start))
                          for start in ("original", "train img/s"))
    assert header.split() == ["original", "project", "project/original"]
    original, project, ratio = (float(cell.rstrip("x").replace(",", "")) for cell in train_line.split()[-3:])
    a, b = saved["train_img_s_original"], saved["train_img_s_project"]  # both rows, side by side, and their ratio
    assert (original, project, ratio) == (pytest.approx(a, abs=0.051), pytest.approx(b, abs=0.051),
                                          pytest.approx(b / a, abs=0.051))


def test_synthetic_images_have_caltechs_typical_size(tmp_path):
    bench.make_synthetic(tmp_path, classes=1, per_class=1)
    with Image.open(tmp_path / "class_000" / "image_0000.jpg") as img:
        assert img.size == (300, 240)


def test_bench_defaults_are_train_pys_except_image_size():
    ours = bench.get_args_parser().parse_args([])
    theirs = train.get_args_parser().parse_args([])
    shared = ("device", "batch_size", "eval_batch_size", "amp", "compile", "seed", "cache_dir", "model")
    assert {k: getattr(ours, k) for k in shared} == {k: getattr(theirs, k) for k in shared}
    assert (ours.image_size, ours.steps, ours.classes, ours.per_class, ours.json) == (224, 10, 101, 31, None)


def test_bench_needs_exactly_one_data_source():
    with pytest.raises(bench.UserError, match="exactly one"):
        bench.main(bench.get_args_parser().parse_args(["--device", "cpu"]))


def test_compute_comparison_measures_each_variant_side_by_side(tmp_path, capsys, monkeypatch):
    # torch.compile's variants cost a minute of compilation: the wiring is the same without them
    monkeypatch.setattr(bench, "VARIANTS", [v for v in bench.VARIANTS if not v[4]])
    threads = bench.torch.get_num_threads()
    args = bench.get_args_parser().parse_args(
        ["--synthetic", "--classes", "3", "--per-class", "13", "--steps", "1", "--image-size", "32",
         "--batch-size", "4", "--device", "cpu", "--compute", "--json", str(tmp_path / "compute.json")])
    bench.torch.set_num_threads(2)  # so that the 1-thread variant's count differs from the default
    try:
        results = bench.main(args)
        assert bench.torch.get_num_threads() == 2  # the 1-thread variant put the count back
    finally:
        bench.torch.set_num_threads(threads)
    assert json.loads((tmp_path / "compute.json").read_text()) == results
    names = ["fp32 (default)", "channels_last", "bf16 autocast", "bf16 + channels_last", "1 thread"]
    assert list(results["variants"]) == names
    for v in results["variants"].values():
        assert v["train_n"] == 2 * 4  # two rounds of --steps batches of --batch-size
        assert v["epoch_s"] == pytest.approx(2424 / v["train_img_s"])
        assert all(v[f"eval_img_s_{k}"] > 0 for k in ("b32_no_grad", "b128_no_grad", "b128_inference_mode"))
    lines = capsys.readouterr().out.splitlines()
    rows = {name: next(line for line in lines if line.startswith(name)) for name in names}
    base = results["variants"]["fp32 (default)"]["train_img_s"]
    for name, line in rows.items():
        ratio = float(line[len(name):].split()[1])
        assert ratio == pytest.approx(results["variants"][name]["train_img_s"] / base, abs=0.006)
