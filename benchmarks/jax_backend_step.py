"""Training steps/s of the AVCA Keras model under Keras 3's JAX backend.

    KERAS_BACKEND=jax python benchmarks/jax_backend_step.py [--steps 200] [--batch-size 256]
        [--mixed-precision] [--json-out FILE]

For accelerators whose machine has JAX but no TensorFlow (the lent GPU
machines here: no TensorFlow wheel, no network). It times the same AVCA
layers and losses as `avca train` (UCF main preset, positive and negative
passes, every loss term, coupled-L2 Adam), but not our TensorFlow loop: the
step is jax.value_and_grad over Keras' stateless scope, jit-compiled, and the
layers take Keras' own batch-norm and dropout paths (their fused TensorFlow
paths do not apply). Inputs are random, of the preset's shapes.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
import types

os.environ.setdefault("KERAS_BACKEND", "jax")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def _import_avca_without_registry():
    """avca_tf.models.avca without running avca_tf/models/__init__.py.

    The registry there imports the baselines, some of which use TensorFlow
    ops directly; AVCA itself is backend-neutral Keras.
    """
    pkg = types.ModuleType("avca_tf.models")
    pkg.__path__ = [os.path.join(REPO, "avca_tf", "models")]
    sys.modules.setdefault("avca_tf.models", pkg)
    spec = importlib.util.find_spec("avca_tf.models.avca")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(argv=None):
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--mixed-precision", action="store_true", help="mixed_bfloat16 policy")
    p.add_argument("--json-out")
    args = p.parse_args(argv)

    import jax
    import keras
    import numpy as np
    from avca_tf.training.optimizers import CoupledAdam

    if keras.backend.backend() != "jax":
        raise SystemExit("run with KERAS_BACKEND=jax")
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    avca = _import_avca_without_registry()
    cfg = avca.script_preset("UCF", "main_features")
    keras.utils.set_random_seed(0)
    model = avca.AVCA(cfg.model, cfg.loss)
    optimizer = CoupledAdam(learning_rate=cfg.train.lr, l2=cfg.train.weight_decay,
                            epsilon=cfg.train.adam_epsilon)
    optimizer.build(model.trainable_variables)

    def losses_fn(trainable, non_trainable, batch):
        mapping = (list(zip(model.trainable_variables, trainable))
                   + list(zip(model.non_trainable_variables, non_trainable)))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            losses = model.compute_losses(batch, training=True)
        updated = [scope.get_current_value(v) for v in model.non_trainable_variables]
        updated = [old if new is None else new for old, new in zip(non_trainable, updated)]
        return losses["total"], updated

    @jax.jit
    def step(trainable, non_trainable, opt_vars, batch):
        (loss, non_trainable), grads = jax.value_and_grad(losses_fn, has_aux=True)(
            trainable, non_trainable, batch)
        trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
        return trainable, non_trainable, opt_vars, loss

    rng = np.random.default_rng(0)
    b, c = args.batch_size, cfg.model
    shapes = {"audio": c.audio_dim, "video": c.video_dim, "text": c.text_dim}
    batch = {prefix + key: jax.device_put(rng.standard_normal((b, width), dtype=np.float32))
             for key, width in shapes.items() for prefix in ("", "neg_")}
    state = ([v.value for v in model.trainable_variables],
             [v.value for v in model.non_trainable_variables],
             [v.value for v in optimizer.variables])

    t0 = time.perf_counter()
    for _ in range(args.warmup):
        *state, loss = step(*state, batch)
    loss.block_until_ready()
    compile_s = time.perf_counter() - t0
    rates = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            *state, loss = step(*state, batch)
        loss.block_until_ready()
        rates.append(args.steps / (time.perf_counter() - t0))
    device = jax.devices()[0]
    report = {"backend": "keras-jax", "jax": jax.__version__, "keras": keras.__version__,
              "device": f"{device.platform}: {getattr(device, 'device_kind', device)}",
              "policy": keras.mixed_precision.global_policy().name, "batch_size": b,
              "steps_per_s": float(np.median(rates)), "steps_per_s_best": max(rates),
              "windows": [round(r, 2) for r in rates], "warmup_incl_compile_s": compile_s,
              "final_loss": float(loss)}
    print(json.dumps(report), flush=True)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
