"""Where a job runs: device, mixed precision, memory format and torch.distributed.

Small and explicit on purpose. CPU always works. On CUDA: autocast in bfloat16 where the GPU
supports it, else float16 with a gradient scaler; channels_last. Several processes come from
``torchrun`` (its environment variables ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``): gloo on CPU,
nccl on GPUs (with gloo beside it for CPU tensors); multi-machine jobs are torchrun's rendezvous,
nothing here launches processes.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from uniseg.errors import UnisegError


@dataclass
class Runtime:
    """The device and process layout of a job."""

    device: torch.device
    amp_dtype: Optional[torch.dtype] = None  # None: full precision
    channels_last: bool = False
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_process_group: bool = False

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files and prints."""
        return self.rank == 0

    @property
    def amp_name(self) -> str:
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.amp_dtype, "off")  # type: ignore[arg-type]

    def autocast(self):
        """A context that runs the forward pass in the chosen precision (a no-op without AMP)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def needs_scaler(self) -> bool:
        return self.amp_dtype == torch.float16

    def to_device(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(images, labels, dataset_index)`` of a batch on the device, images in the memory format."""
        nb = self.device.type == "cuda"
        images = batch["image"].to(self.device, non_blocking=nb)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        labels = batch["label"].to(self.device, non_blocking=nb)
        index = torch.as_tensor(batch["dataset_index"]).to(self.device, non_blocking=nb)
        return images, labels, index

    def all_reduce_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over the processes in place (a no-op in a single process). A CPU tensor
        goes through gloo; in a process group without it (one made elsewhere with nccl alone) it
        travels through the device."""
        if self.distributed:
            import torch.distributed as dist

            if tensor.device.type == "cpu" and self.device.type != "cpu" and "gloo" not in str(dist.get_backend()):
                on_device = tensor.to(self.device)
                dist.all_reduce(on_device)
                tensor.copy_(on_device.cpu())
            else:
                dist.all_reduce(tensor)
        return tensor

    def any_(self, flag: bool) -> bool:
        """Whether ``flag`` is set in any process: one all-reduce of a CPU integer (gloo, also beside
        nccl), so the answer costs no GPU synchronisation. ``flag`` itself in a single process."""
        if not self.distributed:
            return bool(flag)
        return bool(self.all_reduce_(torch.tensor([int(bool(flag))], dtype=torch.int32)).item())

    def broadcast_(self, tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
        """Overwrite ``tensor`` with process ``src``'s copy in place (a no-op in a single process)."""
        if self.distributed:
            import torch.distributed as dist

            dist.broadcast(tensor, src)
        return tensor

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.owns_process_group:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
            self.owns_process_group = False


def gather_records(records: list, all_reduce: Optional[Callable[[torch.Tensor], torch.Tensor]], rank: int, world_size: int) -> list:
    """Every process's ``records`` (JSON-able), in rank order, in each process: two all-reduces of
    CPU integer tensors (the lengths, then each process's bytes at its own offset), so that a report
    rank 0 prints lists what the other processes met too. ``records`` itself in a single process."""
    if all_reduce is None or world_size <= 1:
        return list(records)
    import json

    mine = json.dumps(records, ensure_ascii=False).encode()
    lengths = torch.zeros(world_size, dtype=torch.int64)
    lengths[rank] = len(mine)
    lengths = all_reduce(lengths).tolist()
    buf = torch.zeros(sum(lengths), dtype=torch.int32)
    start = sum(lengths[:rank])
    if mine:
        buf[start:start + len(mine)] = torch.frombuffer(bytearray(mine), dtype=torch.uint8).to(torch.int32)
    data = all_reduce(buf).to(torch.uint8).numpy().tobytes()
    out, at = [], 0
    for n in lengths:
        out += json.loads(data[at:at + n].decode()) if n else []
        at += n
    return out


def resolve_device(spec: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` -> the process's GPU when CUDA is there, else CPU; ``cpu``, ``cuda``, ``cuda:N`` as given."""
    if spec == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    try:
        dev = torch.device(spec)
    except RuntimeError:
        raise UnisegError(f"--device {spec!r}: not a device (auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UnisegError(f"--device {spec}: CUDA is not available here (use --device cpu)")
        if dev.index is None:
            dev = torch.device("cuda", local_rank)
    elif dev.type != "cpu":
        raise UnisegError(f"--device {spec!r}: only cpu and cuda are supported")
    return dev


def resolve_amp(mode: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype for ``mode`` on ``device`` (None = full precision)."""
    if mode == "off":
        return None
    if mode == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if mode == "bf16":
        return torch.bfloat16
    if mode == "fp16":
        if device.type != "cuda":
            raise UnisegError("--amp fp16 needs a CUDA device (use --amp bf16 or off on CPU)")
        return torch.float16
    raise UnisegError(f"--amp {mode!r}: choose auto, off, bf16 or fp16")


def setup_runtime(device: str = "auto", amp: str = "auto", channels_last: Optional[bool] = None) -> Runtime:
    """Read torchrun's environment, join the process group if there is one, pick device and precision."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local)
    owns = False
    if world > 1:
        import torch.distributed as dist

        if not dist.is_available():
            raise UnisegError("WORLD_SIZE > 1 but this torch has no torch.distributed")
        if not dist.is_initialized():
            if dev.type == "cuda":
                torch.cuda.set_device(dev)
            # on GPUs, CPU tensors go through gloo (Runtime.any_: small votes without a GPU sync)
            dist.init_process_group(backend="cpu:gloo,cuda:nccl" if dev.type == "cuda" else "gloo")
            owns = True
        world, rank = dist.get_world_size(), dist.get_rank()
    cl = dev.type == "cuda" if channels_last is None else bool(channels_last)
    return Runtime(dev, resolve_amp(amp, dev), cl, rank, world, local, owns)


def available_memory(device: torch.device) -> Optional[int]:
    """Bytes this process may still allocate on ``device`` (None when unknown): a GPU's free memory
    (``torch.cuda.mem_get_info``); on the CPU the kernel's ``MemAvailable`` (``/proc/meminfo``, else
    ``os.sysconf``), capped by the container's memory limit (cgroup v2 or v1) and shared by the
    processes of this machine under torchrun (``LOCAL_WORLD_SIZE``)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    found: list[int] = []
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError, AttributeError):
            pass
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_file, encoding="ascii") as fh:
                limit = fh.read().strip()
            with open(usage_file, encoding="ascii") as fh:
                usage = int(fh.read().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 1 << 60:
            found.append(max(0, int(limit) - usage))
        break
    if not found:
        return None
    return min(found) // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
