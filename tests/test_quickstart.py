"""The README's quick start, run verbatim: its commands, in order, in an empty folder holding only
data/101_ObjectCategories (3 small generated classes named as Caltech's), with no network and no weights file;
each exits 0 and leaves what it promises, and `tensorboard --logdir runs` serves the run."""
import http.client
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT, make_image_folder

README = (ROOT / "README.md").read_text()
CLASSES = ("accordion", "airplanes", "anchor")
PER_CLASS = 34  # the default protocol needs 30 train (6 of them val) + at least 1 test per class: 4 test each
TOOLS = ["split_dataset.py", "train.py", "evaluate.py", "predict.py", "report.py", "tensorboard"]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}


def quickstart_commands():
    """The commands of the first fenced block after the README's `## Quick start` heading, comments dropped."""
    match = re.search(r"^## Quick start.*?^```\w*\n(.*?)^```", README, re.M | re.S)
    assert match, "README.md has no fenced block under '## Quick start'"
    commands = [shlex.split(line, comments=True) for line in match.group(1).splitlines()]
    return [words for words in commands if words]


def tool(words):
    return words[1] if words[0] == "python" else words[0]


def value(words, flag, default=None):
    return words[words.index(flag) + 1] if flag in words else default


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path):
    """(status, body) of GET http://127.0.0.1:port/path, or None while nothing answers there."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    except OSError:
        return None
    finally:
        connection.close()


def tensorboard_serves(words, cwd, env, run_name, timeout=90):
    """Start `tensorboard ...` (on a free port, so tests never collide) and wait until it lists `run_name`."""
    executable = Path(sys.executable).with_name("tensorboard")
    command = [str(executable)] if executable.exists() else [sys.executable, "-m", "tensorboard.main"]
    port, log = free_port(), cwd / "tensorboard.log"
    with open(log, "w") as err:  # a file, not a pipe: a pipe nobody reads could fill and stall the server
        server = subprocess.Popen([*command, *words[1:], "--port", str(port)], cwd=cwd, env=env,
                                  stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert server.poll() is None, f"tensorboard exited with {server.returncode}: {log.read_text()}"
            answer = get(port, "/data/runs")
            if answer and answer[0] == 200 and run_name in answer[1]:
                return True
            time.sleep(0.5)
        return False
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_the_readme_quick_start_runs_verbatim_offline_on_tiny_data(tmp_path):
    commands = quickstart_commands()
    assert [tool(words) for words in commands] == TOOLS, "the quick start: split, train, evaluate, predict, report, TB"
    train_words = commands[1]
    assert "--scratch" in train_words, "the quick start must need no ImageNet weights (--scratch)"
    make_image_folder(tmp_path / "data" / "101_ObjectCategories", classes=CLASSES, per_class=PER_CLASS)
    # Offline: any download would go through a proxy that refuses it; the torch cache is empty.
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch_home"), "NO_PROXY": "127.0.0.1,localhost",
           **{k: "http://127.0.0.1:9" for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")}}
    env["no_proxy"] = env["NO_PROXY"]
    run_name = value(train_words, "--run-name")
    assert run_name, "the quick start names its run, so the later commands can find it"

    for words in commands:
        if tool(words) == "tensorboard":
            served = tensorboard_serves(words, tmp_path, env, run_name)
            assert served, f"{shlex.join(words)} never listed run {run_name}"
            continue
        assert words[0] == "python", words
        result = subprocess.run([sys.executable, str(ROOT / words[1]), *words[2:]], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{shlex.join(words)} exited {result.returncode}:\n{result.stderr[-3000:]}"
        assert "Traceback" not in result.stderr, result.stderr
        # a newcomer's first commands warn of nothing they could not help (no fine-tuned run to compare with)
        assert not [line for line in result.stderr.splitlines() if "warning" in line.lower()], result.stderr
        CHECKS[tool(words)](words, tmp_path, result.stdout, run_name)


def check_split(words, cwd, out, run_name):
    split = cwd / value(words, "--out", "data/caltech101_split")
    assert (split / "split.csv").is_file()
    assert (split / "classes.txt").read_text().split() == list(CLASSES)
    train, val = int(value(words, "--train-per-class", 30)), int(value(words, "--val-per-class", 6))
    for part, n in (("train", train - val), ("val", val), ("test", PER_CLASS - train)):
        assert all(len(list((split / part / c).iterdir())) == n for c in CLASSES), part


def check_train(words, cwd, out, name):
    ckpt = cwd / value(words, "--ckpt-dir", "checkpoints") / name
    assert {"best.pth", "last.pth", "metrics.json"} <= {p.name for p in ckpt.iterdir()}
    assert list((cwd / value(words, "--logdir", "runs") / name).glob("events.out.tfevents.*"))
    assert f"run {name}: best epoch" in out


def check_evaluate(words, cwd, out, run_name):
    assert (cwd / value(words, "--ckpt")).is_file()
    tables = cwd / value(words, "--out")
    assert {"per_class.csv", "confusion.csv", "confusion.png"} <= {p.name for p in tables.iterdir()}
    assert re.search(r"^test_acc: [\d.]+$", out, re.M) and re.search(r"^test_mean_class_acc: [\d.]+$", out, re.M)


def check_predict(words, cwd, out, run_name):
    topk = int(value(words, "--topk", 5))
    images = sorted(str(Path(p).relative_to(cwd)) for arg in words[2:] if not arg.startswith("--")
                    and (cwd / arg).is_dir() for p in (cwd / arg).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    assert images, "the quick start predicts on a folder of images"
    lines = [line for line in out.splitlines() if line.split(": ", 1)[0] in images]
    assert sorted(line.split(": ", 1)[0] for line in lines) == images  # one line per image
    for line in lines:
        guesses = line.split(": ", 1)[1].split(", ")
        assert len(guesses) == topk and all(g.split()[0] in CLASSES for g in guesses), line
    assert f"{len(images)} image(s) classified" in out


def check_report(words, cwd, out, run_name):
    reports = cwd / value(words, "--out", "reports")
    results = (reports / "RESULTS.md").read_text()
    assert f"`{run_name}`" in results and "Figure 7" in results and "Figure 8" in results
    assert {"fig1_val_accuracy.png", "fig7_worst_classes.png", "fig8_confusion.png"} <= {
        p.name for p in reports.glob("*.png")}


CHECKS = {"split_dataset.py": check_split, "train.py": check_train, "evaluate.py": check_evaluate,
          "predict.py": check_predict, "report.py": check_report}
