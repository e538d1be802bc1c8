"""Devices and precision: ``"auto"`` picks CUDA when there is one; bf16 autocast on CUDA."""

from __future__ import annotations

from typing import Any

import torch

from autoft.errors import AutoftError

__all__ = ["autocast", "resolve_device"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a usable torch device.

    Raises:
        AutoftError: CUDA asked for but not available, or an unknown device string.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise AutoftError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda'") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise AutoftError(f"device {device!r} asked for, but CUDA is not available here; use 'auto'")
    return resolved


def autocast(device: torch.device) -> Any:
    """bf16 autocast on CUDA devices that support it (``torch.cuda.is_bf16_supported()``); a
    no-op context elsewhere (CPU training stays float32)."""
    enabled = device.type == "cuda" and torch.cuda.is_bf16_supported()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)
