"""Imported before TensorFlow by every script and core module: TensorFlow's oneDNN CPU kernels on
every x86 CPU, not only on those TensorFlow picks them for.

TensorFlow turns oneDNN on by itself only where the CPU has AVX-512 VNNI/BF16 or AMX; on AVX2-only
ones (AMD EPYC before Zen 4, older Xeons) it runs Eigen's kernels, and there a BERT-Base forward
pass at batch 32 ran 1.2-1.4× slower (benchmarks/bench_vs_reference.py, inference row: the
reference with and without it). It must be set before TensorFlow is imported, which reads it once. XLA-compiled steps are not affected.
TF_ENABLE_ONEDNN_OPTS=0 in the environment keeps Eigen's kernels.
"""

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def onednn_on():
    """Whether TensorFlow runs its oneDNN CPU kernels (TF_ENABLE_ONEDNN_OPTS as TensorFlow reads it)."""
    return os.environ["TF_ENABLE_ONEDNN_OPTS"].lower() in ("1", "true")
