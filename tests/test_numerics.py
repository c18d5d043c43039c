"""Pinning OpenBLAS's kernels: only where the CPU runs them, never over a choice already made."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from recsys.numerics import PINNED_CORETYPE, numeric_environment, pin_blas_kernel

AVX2_CPU = "processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 avx fma avx2 bmi2\n"
AVX_ONLY_CPU = "processor\t: 0\nflags\t\t: fpu sse2 sse4_2 avx\n"


def test_pins_the_avx2_kernels_on_a_cpu_that_runs_them():
    environ: dict[str, str] = {}
    assert pin_blas_kernel(environ, cpuinfo=AVX2_CPU) == PINNED_CORETYPE
    assert environ == {"OPENBLAS_CORETYPE": PINNED_CORETYPE}


def test_leaves_a_cpu_without_avx2_to_openblas():
    environ: dict[str, str] = {}
    assert pin_blas_kernel(environ, cpuinfo=AVX_ONLY_CPU) is None
    assert pin_blas_kernel(environ, cpuinfo="") is None
    assert environ == {}


def test_a_kernel_chosen_already_is_kept():
    environ = {"OPENBLAS_CORETYPE": "SkylakeX"}
    assert pin_blas_kernel(environ, cpuinfo=AVX2_CPU) == "SkylakeX"
    assert environ == {"OPENBLAS_CORETYPE": "SkylakeX"}


def test_the_recsys_command_loads_openblas_with_the_pinned_kernels():
    if pin_blas_kernel({}) is None:
        pytest.skip("this CPU cannot run the pinned OpenBLAS kernels (no AVX2)")
    probe = ("import os, experiments.cli, numpy, threadpoolctl; print(os.environ['OPENBLAS_CORETYPE'], "
             "sorted({i.get('architecture') for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas'}))")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"{PINNED_CORETYPE} {[PINNED_CORETYPE]!r}"


def test_numeric_environment_names_cpu_numpy_and_blas():
    import numpy as np

    environment = numeric_environment()
    assert set(environment) == {"numerics.cpu", "numerics.numpy", "numerics.blas"}
    assert environment["numerics.numpy"] == np.__version__
    assert environment["numerics.blas"] != "none loaded"  # numpy is loaded, and with it its BLAS
