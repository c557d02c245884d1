"""The CUDA precision choices, run on the CPU: bf16 autocast, and fp16 with an enabled GradScaler
that is saved, restored and resumed exactly."""
import pytest
import torch

import train
from caltech.training import engine, metrics, runtime
from conftest import kill_on_call, read_scalars, train_args


def force_precision(monkeypatch, dtype):
    real = runtime.precision
    monkeypatch.setattr(runtime, "precision", lambda device, amp=True, _=None: real(device, amp, dtype=dtype))


def logit_dtypes(monkeypatch):
    real, seen = metrics.Meter.update, []

    def update(self, loss, logits, labels):
        seen.append(logits.dtype)
        return real(self, loss, logits, labels)
    monkeypatch.setattr(metrics.Meter, "update", update)
    return seen


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_trains_in_reduced_precision_and_evaluates_in_float32(tiny_split, tmp_path, monkeypatch, capsys,
                                                                        dtype):
    force_precision(monkeypatch, dtype)
    seen = logit_dtypes(monkeypatch)
    out = train.main(train_args(tmp_path, tiny_split.root, "--scratch", "--epochs", 1, "--run-name", "r"))
    name = str(dtype).replace("torch.", "")
    assert f"cpu {name}" in capsys.readouterr().out
    n_train = -(-20 // 8)  # batches of 8
    assert seen[:n_train] == [dtype] * n_train  # the training forward ran under autocast
    assert set(seen[n_train:]) == {torch.float32}  # evaluation scores float32 logits
    assert out["test_acc"] == out["test_acc"]  # not NaN
    last = torch.load(tmp_path / "ckpt" / "r" / "last.pth", weights_only=True)
    assert bool(last["scaler"]) == (dtype == torch.float16)  # an enabled scaler has a state to save


def test_precision_choices(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(runtime, "native_cpu_bf16", lambda: False)  # emulated bf16 is slower than fp32
    assert runtime.precision(cpu)[2] == "float32" and not runtime.precision(cpu)[1].is_enabled()
    monkeypatch.setattr(runtime, "native_cpu_bf16", lambda: True)  # AMX / AVX512-BF16: 3.3x fp32 (BENCHMARKS.md)
    assert runtime.precision(cpu)[2] == "bfloat16" and not runtime.precision(cpu)[1].is_enabled()
    assert runtime.precision(cpu, amp=False)[2] == "float32"
    assert runtime.precision(cpu, dtype=torch.float16)[1].is_enabled()  # fp16 needs loss scaling
    assert not runtime.precision(cpu, dtype=torch.bfloat16)[1].is_enabled()  # bf16 does not
    assert runtime.precision(cpu, amp=False, dtype=torch.float16)[2] == "float32"  # --no-amp wins


def test_run_with_an_enabled_grad_scaler_resumes_exactly(tiny_split, tmp_path, monkeypatch):
    # bf16 autocast with a live GradScaler: the scaler's code path at CPU speed (fp16 convolutions are
    # emulated on the CPU, 40x slower)
    monkeypatch.setattr(runtime, "precision", lambda device, amp=True, dtype=None: (
        torch.autocast("cpu", dtype=torch.bfloat16), torch.amp.GradScaler("cpu", init_scale=2.0**4), "bfloat16"))
    flags = ["--scratch", "--epochs", 3, "--threads", 1]
    train.main(train_args(tmp_path, tiny_split.root, *flags, "--run-name", "straight"))
    with pytest.MonkeyPatch.context() as patch:
        kill_on_call(patch, engine, "train_one_epoch", 2)
        with pytest.raises(KeyboardInterrupt):
            train.main(train_args(tmp_path, tiny_split.root, *flags, "--run-name", "broken"))
    saved = torch.load(tmp_path / "ckpt" / "broken" / "last.pth", weights_only=True)["scaler"]
    assert saved["scale"] > 0 and "_growth_tracker" in saved
    train.main(train_args(tmp_path, tiny_split.root, "--run-name", "broken", "--resume", "--threads", 1))
    a, b = (torch.load(tmp_path / "ckpt" / r / "last.pth", weights_only=True) for r in ("straight", "broken"))
    assert a["scaler"] == b["scaler"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert read_scalars(tmp_path / "runs" / "straight") == read_scalars(tmp_path / "runs" / "broken")


def test_gpu_loader_path_on_the_cpu_gives_the_cpu_path_batches_in_channels_last(tiny_split, tmp_path):
    """CachedLoader as on CUDA (images 'on the device', one gather per batch, channels_last), run on
    the CPU: the same batches, value for value, as the CPU path, in the GPU's memory format."""
    import numpy as np

    from caltech.data import cache
    from caltech.data.loaders import CachedLoader
    cpu = torch.device("cpu")
    labels = np.array([label for _, label in tiny_split.samples["train"]])
    for train_, side in ((True, 37), (False, 32)):
        images = cache.load_or_build(tmp_path, tiny_split, "train", side)
        host = CachedLoader(images, labels, 8, cpu, 107, train_, 32)
        gpu_like = CachedLoader(images, labels, 8, cpu, 107, train_, 32, channels_last=True, on_device=True)
        assert gpu_like.transform.one_gather and not host.transform.one_gather
        for epoch in (0, 1):
            host.set_epoch(epoch)
            gpu_like.set_epoch(epoch)
            for (x, y), (gx, gy) in zip(host, gpu_like, strict=True):
                assert gx.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous(
                    memory_format=torch.channels_last)
                assert torch.equal(y, gy) and torch.allclose(x, gx, atol=1e-6)


def test_cpu_channels_last_training_batches_come_from_an_nhwc_cache_value_for_value(tiny_split, tmp_path):
    """The CPU's channels_last training path stores the in-memory cache NHWC and copies each crop's pixel rows
    straight into the batch: the same batches, bit for bit, as the NCHW path, in channels_last; evaluation and
    the augmented paths keep the NCHW cache."""
    import numpy as np

    from caltech.data import cache
    from caltech.data.loaders import CachedLoader
    cpu = torch.device("cpu")
    labels = np.array([label for _, label in tiny_split.samples["train"]])
    images = cache.load_or_build(tmp_path, tiny_split, "train", 37)
    nchw = CachedLoader(images, labels, 8, cpu, 107, True, 32)
    nhwc = CachedLoader(images, labels, 8, cpu, 107, True, 32, channels_last=True)
    assert nhwc.images.is_contiguous(memory_format=torch.channels_last) and nchw.images.is_contiguous()
    for epoch in (0, 1):
        nchw.set_epoch(epoch)
        nhwc.set_epoch(epoch)
        for (x, y), (cx, cy) in zip(nchw, nhwc, strict=True):
            assert cx.is_contiguous(memory_format=torch.channels_last) and torch.equal(y, cy) and torch.equal(x, cx)
    for kwargs in ({"train": False}, {"train": True, "resized": 0.5}):
        kept = CachedLoader(images, labels, 8, cpu, 107, crop=32, channels_last=True, **kwargs)
        assert kept.images.is_contiguous()


def test_bf16_autocast_on_the_cpu_only_where_the_cpu_has_it(tmp_path):
    flags = "fpu vme sse sse2 avx2 avx512f avx512bw"
    for extra, native in (("", False), (" avx512_bf16", True), (" amx_tile amx_bf16", True)):
        (tmp_path / "cpuinfo").write_text(f"processor\t: 0\nflags\t\t: {flags}{extra}\n")
        runtime.native_cpu_bf16.cache_clear()
        assert runtime.native_cpu_bf16(str(tmp_path / "cpuinfo")) is native, extra
    runtime.native_cpu_bf16.cache_clear()
    assert runtime.native_cpu_bf16(str(tmp_path / "missing")) is False  # not Linux: fp32
    runtime.native_cpu_bf16.cache_clear()
    cpu, mps = torch.device("cpu"), torch.device("mps")
    assert runtime.memory_format(cpu) == torch.channels_last and runtime.memory_format(mps) == torch.contiguous_format
    assert (runtime.eval_batch_size(cpu, 32), runtime.eval_batch_size(torch.device("cuda"), 32)) == (32, 256)
    assert runtime.eval_batch_size(cpu, 32, 64) == 64 and not runtime.cache_on_device(cpu)


def test_the_no_gpu_notice_states_the_cpu_precision_and_no_time(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    for native, precision in ((True, "bf16 mixed precision, native on this CPU"),
                              (False, "fp32: this CPU has no native bf16")):
        monkeypatch.setattr(runtime, "native_cpu_bf16", lambda native=native: native)
        assert runtime.select_device().type == "cpu"
        out = capsys.readouterr().out
        assert out.startswith(f"notice: no GPU found, running on the CPU in {precision}") and "minute" not in out
    runtime.select_device("cpu")  # asked for: no notice
    assert capsys.readouterr().out == ""
