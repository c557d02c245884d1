"""Every device-dependent choice, made once here from the device flag and the others: `decide()` returns the
`Runtime` that train.py, evaluate.py, predict.py and bench.py pass to the loaders and the engine loops. It
also applies the process-wide settings (torch's CPU threads, cuDNN autotuning). What each device gets, and why:

- CUDA: bf16 autocast (fp16 with loss scaling where bf16 is unsupported), channels_last, the uint8
  caches on the GPU, eval batches of 256.
- A CPU with native bf16 (Intel AMX or AVX512-BF16): bf16 autocast and channels_last, 3.3x the
  training throughput of fp32 for ResNet-18 at 224 px on a 2-core Xeon with AMX, with the same
  accuracy curve (docs/BENCHMARKS.md); eval batches of --batch-size, faster there than larger ones.
- Any other CPU: fp32 (emulated bf16 is slower than fp32), channels_last (1.3x fp32 on the same Xeon).
- MPS: fp32, contiguous.
`--no-amp` means fp32 everywhere.
"""
import contextlib
import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from ..utils import UserError

CUDA_EVAL_BATCH = 256  # evaluation keeps no activations for backward: a GPU takes far more than 32


@functools.cache
def native_cpu_bf16(cpuinfo="/proc/cpuinfo"):
    """Whether this CPU computes bf16 natively (x86 `amx_bf16` or `avx512_bf16` among its flags)."""
    try:
        flags = Path(cpuinfo).read_text().split()
    except OSError:  # not Linux: no way to tell, so no bf16
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def autocast_dtype(device):
    """The dtype `--amp` trains in on `device`, None for fp32."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and native_cpu_bf16():
        return torch.bfloat16
    return None


def cpu_precision():
    """The CPU's precision in words, for the notice of a machine without a GPU."""
    if autocast_dtype(torch.device("cpu")) == torch.bfloat16:
        return "bf16 mixed precision, native on this CPU (fp32 for runs with --no-amp)"
    return "fp32: this CPU has no native bf16 (AMX or AVX512-BF16), and emulated bf16 would be slower"


def precision(device, amp=True, dtype=None):
    """(autocast context, GradScaler, name): `autocast_dtype(device)` with `amp`, fp32 without.

    `dtype` forces a precision on any device: the tests run the CUDA choices (bf16 autocast, fp16
    with an enabled GradScaler) on the CPU through it."""
    if dtype is None and amp:
        dtype = autocast_dtype(device)
    if dtype is None or dtype == torch.float32 or not amp:
        return contextlib.nullcontext(), torch.amp.GradScaler(device.type, enabled=False), "float32"
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)  # bf16 needs no scaling
    return torch.autocast(device.type, dtype=dtype), scaler, str(dtype).replace("torch.", "")


def memory_format(device):
    """channels_last where the convolutions are faster with it: CUDA and the CPU, not MPS."""
    return torch.channels_last if device.type in ("cuda", "cpu") else torch.contiguous_format


def cache_on_device(device):
    """Keep the uint8 caches on the device: a few hundred MB a GPU gathers from faster than any host pipeline."""
    return device.type == "cuda"


def eval_batch_size(device, batch_size, requested=None):
    return requested or (CUDA_EVAL_BATCH if device.type == "cuda" else batch_size)


def select_device(name=None):
    """CUDA, else Apple MPS, else CPU (with a notice that says in what precision); `name` overrides."""
    if name:
        try:
            device = torch.device(name)
        except RuntimeError:
            raise UserError(f"--device {name} is not a device; use cuda, cuda:1, mps or cpu") from None
        if device.type not in ("cuda", "mps", "cpu"):
            raise UserError(f"--device {name} is not supported; use cuda, cuda:1, mps or cpu")
        if device.type == "cuda" and not torch.cuda.is_available():
            raise UserError(f"--device {name} was asked for, but CUDA is not available on this machine")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise UserError(f"--device {name} was asked for, but Apple MPS is not available on this machine")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    print(f"notice: no GPU found, running on the CPU in {cpu_precision()}")
    return torch.device("cpu")


@dataclass
class Runtime:
    device: torch.device
    ctx: object  # autocast context, or a null one
    scaler: torch.amp.GradScaler  # enabled for fp16 only; its state goes into last.pth
    dtype: str  # 'float32', 'bfloat16' or 'float16', for the logs
    memory_format: torch.memory_format
    eval_batch_size: int
    cache_on_device: bool  # where the cached loader keeps its uint8 images


def decide(device=None, amp=True, batch_size=32, requested_eval_batch=None, threads=None, dtype=None):
    """The Runtime of a run on `device` (a torch.device, or a --device value: None picks CUDA, else MPS, else
    the CPU) with these flags (`--amp`, `--batch-size`, `--eval-batch-size`, `--threads`); `dtype` forces a
    precision (see `precision`). Sets torch's CPU threads when `threads` is given, and cuDNN autotuning on CUDA."""
    if not isinstance(device, torch.device):
        device = select_device(device)
    if threads:
        torch.set_num_threads(threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick the fastest kernels
    ctx, scaler, name = precision(device, amp, dtype)
    return Runtime(device, ctx, scaler, name, memory_format(device),
                   eval_batch_size(device, batch_size, requested_eval_batch), cache_on_device(device))
