"""What every JAX-based adapter (Flax, Haiku, Equinox) sets up the same way: float64, XLA's
persistent compilation cache, and the JAX dtypes by name.

Importing this module switches ``jax_enable_x64`` on (before any array exists: without it a
float64 parameter or input is silently truncated to float32, with one UserWarning per array).
"""

from __future__ import annotations

import os

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402

JNP_DTYPES = {"float32": jnp.float32, "float64": jnp.float64, "float16": jnp.float16, "bfloat16": jnp.bfloat16}


def persistent_compilation_cache() -> None:
    """Keep XLA's compiled executables on disk (``<cache>/jax``, the cache directory being
    ``$LSTM_CONFORMANCE_CACHE`` or ``~/.cache/lstm-conformance``) so that a second run skips XLA
    compilation (about 0.3 s of CPU per configuration here).  The executables are the ones a
    plain compilation produces.  A cache directory the user configured for JAX is kept."""
    if jax.config.jax_compilation_cache_dir:
        return
    root = os.environ.get("LSTM_CONFORMANCE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                                     "lstm-conformance")
    jax.config.update("jax_compilation_cache_dir", os.path.join(root, "jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


persistent_compilation_cache()
