"""bench.py runs both pipelines side by side and reports every figure (timings are never asserted)."""
import json

import pytest

import bench

KEYS = [f"{m}_{p}" for m in ("pipeline_img_s", "train_img_s", "eval_img_s", "epoch_s") for p in ("original", "project")]


def test_synthetic_benchmark_reports_both_pipelines(tmp_path, capsys):
    args = bench.get_args_parser().parse_args(
        ["--synthetic", "--classes", "3", "--per-class", "12", "--steps", "1", "--image-size", "32",
         "--batch-size", "8", "--device", "cpu", "--json", str(tmp_path / "bench.json")])
    results = bench.main(args)
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved == results and saved["device"] == "cpu"
    for key in KEYS:
        assert saved[key] > 0, key
    out = capsys.readouterr().out
    assert "original" in out and "project/original" in out and "epoch s" in out


def test_bench_needs_exactly_one_data_source():
    with pytest.raises(bench.UserError, match="exactly one"):
        bench.main(bench.get_args_parser().parse_args(["--device", "cpu"]))
