"""Which numeric kernels a process runs on, and pinning them so that fitted models repeat across machines.

OpenBLAS picks its kernels by CPU at load time (``Haswell`` for AVX2, ``SkylakeX`` for AVX-512, ...).
Kernels of different vector widths add in different orders, so EASE's inverse and ALS's solves differ
in the last bits, candidate ranks tie differently, and the ranker grows other trees: on the Online
Retail protocol the same config, data and seeds score about 0.002 apart in nDCG@10 on an AVX-512
machine and on an AVX2 one. :func:`pin_blas_kernel` asks for the AVX2 kernels, which every x86-64 CPU
of the last decade runs, so that figures repeat wherever the project's commands run;
:func:`numeric_environment` says what a process actually runs on, for the record of a run.
"""

from __future__ import annotations

import os
import platform
from collections.abc import MutableMapping
from pathlib import Path

PINNED_CORETYPE = "Haswell"
_PINNED_NEEDS = frozenset({"avx2", "fma"})
_CPUINFO = Path("/proc/cpuinfo")


def pin_blas_kernel(environ: MutableMapping[str, str] = os.environ, cpuinfo: str | None = None) -> str | None:
    """Set ``OPENBLAS_CORETYPE`` to :data:`PINNED_CORETYPE` when the CPU runs it and no one chose a
    kernel already; returns the kernel now asked for (``None``: OpenBLAS detects its own).

    OpenBLAS reads the variable once, when numpy or scipy first loads it, so this must run before
    either is imported: the project's commands call it first thing. Elsewhere (an x86 CPU without
    AVX2, another architecture, no ``/proc/cpuinfo``) it sets nothing, since a kernel the CPU cannot
    run stops the process at its first matrix product."""
    if environ.get("OPENBLAS_CORETYPE"):
        return environ["OPENBLAS_CORETYPE"]
    if cpuinfo is None:
        if platform.machine().lower() not in ("x86_64", "amd64"):
            return None
        try:
            cpuinfo = _CPUINFO.read_text()
        except OSError:
            return None
    if not _cpu_flags(cpuinfo) >= _PINNED_NEEDS:
        return None
    environ["OPENBLAS_CORETYPE"] = PINNED_CORETYPE
    return PINNED_CORETYPE


def numeric_environment() -> dict[str, str]:
    """CPU model, numpy version and each loaded BLAS with its kernel set, as flat strings (run tags)."""
    import numpy as np
    from threadpoolctl import threadpool_info

    environment = {"numerics.cpu": _cpu_model(), "numerics.numpy": np.__version__}
    blas = sorted({f"{info.get('internal_api')} {info.get('version')} {info.get('architecture')}"
                   for info in threadpool_info() if info.get("user_api") == "blas"})
    environment["numerics.blas"] = "; ".join(blas) or "none loaded"
    return environment


def _cpu_flags(cpuinfo: str) -> set[str]:
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            return set(value.split())
    return set()


def _cpu_model() -> str:
    try:
        for line in _CPUINFO.read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
