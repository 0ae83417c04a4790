"""Weight files on disk: ``.safetensors`` files and the folders people keep weights in.

A folder given where a weights file is expected is read the way Hugging Face and timm lay one
out (``model.safetensors``, else ``pytorch_model.bin``). Safetensors files are read and written
here, each failure a one-line :class:`UnisegError` naming the file; writes are atomic.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Mapping, Optional, Union

from torch import Tensor

from uniseg.errors import UnisegError

__all__ = ["SAFETENSORS_FILE", "TORCH_FILE", "is_safetensors", "read_safetensors", "weights_in_folder", "write_safetensors"]

SAFETENSORS_FILE = "model.safetensors"  # the Hugging Face / timm name, and what 'uniseg models export' writes
TORCH_FILE = "pytorch_model.bin"  # the older Hugging Face name (a torch.save file)
_MAX_HEADER = 100 * 1024 * 1024  # the safetensors format's own limit on the JSON header


def weights_in_folder(folder: Union[str, Path], what: str = "weights") -> Path:
    """The weights file of a folder: ``model.safetensors``, else ``pytorch_model.bin``, else the folder's
    only ``.safetensors`` / ``.pth`` / ``.pt`` / ``.bin`` file; a one-line error when there is none or several."""
    folder = Path(folder)
    for name in (SAFETENSORS_FILE, TORCH_FILE):
        if (folder / name).is_file():
            return folder / name
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".safetensors", ".pth", ".pt", ".bin"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise UnisegError(f"{what} {folder}: no {SAFETENSORS_FILE}, {TORCH_FILE} or .pth file in this folder; give the weights file itself")
    names = ", ".join(p.name for p in found[:4]) + (", ..." if len(found) > 4 else "")
    raise UnisegError(f"{what} {folder}: several weight files ({names}); give the one to load")


def is_safetensors(path: Union[str, Path]) -> bool:
    """Whether ``path`` starts as a safetensors file does: an 8-byte little-endian header length, then ``{``."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(9)
            size = Path(path).stat().st_size
    except OSError:
        return False
    if len(head) < 9 or head[8:9] != b"{":
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n <= min(_MAX_HEADER, size - 8)


def read_safetensors(path: Union[str, Path], what: str = "weights") -> tuple[dict[str, Tensor], dict[str, str]]:
    """``(tensors, metadata)`` of a safetensors file, on the CPU; a damaged or foreign file is a one-line error."""
    from safetensors import SafetensorError, safe_open

    p = Path(path)
    if not p.is_file():
        raise UnisegError(f"{what} {str(p)!r} not found")
    if not is_safetensors(p):
        raise UnisegError(f"{what} {p}: not a safetensors file (no JSON header at its start); fetch or export it again")
    try:
        with safe_open(str(p), framework="pt", device="cpu") as fh:
            metadata = dict(fh.metadata() or {})
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise UnisegError(f"{what} {p}: damaged safetensors file ({first}); fetch or export it again") from None
    return tensors, metadata


def write_safetensors(path: Union[str, Path], tensors: Mapping[str, Tensor], metadata: Optional[Mapping[str, str]] = None) -> Path:
    """Write ``tensors`` (CPU, contiguous copies) and string ``metadata`` as a safetensors file, atomically."""
    from safetensors.torch import save

    from uniseg.io import atomic_write_bytes

    plain = {str(k): v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    data = save(plain, metadata=meta)
    atomic_write_bytes(path, data)
    return Path(path)

