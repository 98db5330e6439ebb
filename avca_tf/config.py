"""Typed configuration, one dataclass per concern, round-tripped through config.json.

Batch-norm momentum is stored in the Keras convention
(moving = momentum * moving + (1 - momentum) * batch); PyTorch's momentum m
is 1 - m here (`keras_momentum`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from avca_tf.errors import ConfigError

TORCH_DEFAULT_BN_MOMENTUM = 0.1  # nn.BatchNorm1d() without a momentum argument


def keras_momentum(torch_momentum: float) -> float:
    """PyTorch BN momentum m (weight of the new batch) -> Keras momentum 1 - m."""
    return 1.0 - float(torch_momentum)


@dataclass(frozen=True)
class DataConfig:
    """Which benchmark to read and how classes are paired with label vectors."""
    root: str = ""
    dataset: str = "UCF"
    feature_set: str = "main_features"
    text_pairing: str = "own"          # "own" | "reference" (the authors' mis-pairing)
    tfrecords: str | None = None       # read TFRecords written by `avca ingest` instead of h5


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a GZSL model; baselines use the subset they need."""
    name: str = "avca"
    audio_dim: int = 512
    video_dim: int = 512
    text_dim: int = 300
    embed_dim: int = 300                # width of phi_a / phi_v and of the attention tokens
    encoder_hidden: int | None = 512    # None: single Dense layer
    decoder_hidden: int | None = 512
    output_dim: int = 64
    depth: int = 1
    heads: int = 3
    head_dim: int = 100
    mlp_dim: int = 64
    dropout_encoder: float = 0.2        # encoders and transformer (reference: embedding_dropout)
    dropout_decoder: float = 0.3        # A_proj / V_proj (reference: decoder_dropout)
    dropout_additional: float = 0.5     # W_proj, D, A_rec, V_rec (reference: additional_dropout)
    bn_momentum: float = keras_momentum(0.1)   # Keras convention; output BN of the MLPs with a hidden layer
    bn_default_momentum: float = keras_momentum(TORCH_DEFAULT_BN_MOMENTUM)  # every other BN
    bn_epsilon: float = 1e-5
    freeze_position_embeddings: bool = False   # True: as the reference (never updated)
    normalize_inputs: bool = False      # ALE/SJE/DeViSE/APN on cls features: L2-normalise inputs


@dataclass(frozen=True)
class LossConfig:
    """The loss terms of the reference and their toggles/weights (SPEC §5)."""
    reconstruction: bool = True            # l_rec: MSE(w, D(theta_a|v|w))
    reconstruction_triplets: bool = True   # l_ct: triplets on D(theta), negatives of another class
    embedding_triplets: bool = True        # l_w: the four theta_w <-> theta_a/theta_v triplets
    additional_triplets: bool = True       # l_t (reference --additional_triplets_loss)
    first_additional_weight: float = 1.0
    second_additional_weight: float = 1.0
    regression: bool = True                # l_r (reference --reg_loss)
    margin: float = 1.0


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and protocol settings."""
    epochs: int = 50
    n_batches: int = 500
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-5             # coupled L2 (added to the gradient, as torch Adam)
    adam_epsilon: float = 1e-8
    lr_factor: float = 0.1                 # ReduceLROnPlateau(mode="max") on val HM
    lr_patience: int = 3
    lr_threshold: float = 1e-4             # relative improvement needed (torch default)
    seed: int = 42
    jit_compile: bool = False
    mixed_precision: bool = False
    eval_batch_size: int = 8192
    # Calibrated-stacking search grid: beta_steps values evenly spaced in [0, beta_max].
    # None: the AVCA grid (16 values in [0, 3], avca_tf.evaluation.metrics.BETAS).
    # Left out of config.json while None, so existing runs' configs are unchanged.
    beta_max: float | None = field(default=None, metadata={"omit_if_none": True})
    beta_steps: int | None = field(default=None, metadata={"omit_if_none": True})

    def beta_grid(self):
        """The betas the validation search tries (float64 array)."""
        import numpy as np
        from avca_tf.evaluation.metrics import BETAS
        if self.beta_max is None and self.beta_steps is None:
            return BETAS
        if self.beta_max is None or self.beta_steps is None:
            raise ConfigError("train.beta_max and train.beta_steps are set together "
                              f"(got {self.beta_max!r}, {self.beta_steps!r})")
        if not (self.beta_max >= 0 and self.beta_steps >= 1):
            raise ConfigError(f"train.beta_max must be >= 0 and train.beta_steps >= 1, got "
                              f"{self.beta_max!r}, {self.beta_steps!r}")
        return np.linspace(0.0, float(self.beta_max), int(self.beta_steps))


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run; config.json holds `to_dict()`."""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    preset: str | None = None

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        for section in ("data", "model", "loss", "train"):
            for f in dataclasses.fields(getattr(self, section)):
                if f.metadata.get("omit_if_none") and out[section][f.name] is None:
                    del out[section][f.name]
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        def make(kind, values, section):
            if not isinstance(values, dict):
                raise ConfigError(f"config section '{section}' must be an object, got {values!r}")
            names = {f.name for f in dataclasses.fields(kind)}
            unknown = sorted(set(values) - names)
            if unknown:
                raise ConfigError(f"config section '{section}' has unknown fields {unknown}; "
                                  f"expected a subset of {sorted(names)}")
            return kind(**values)
        return cls(data=make(DataConfig, d.get("data", {}), "data"),
                   model=make(ModelConfig, d.get("model", {}), "model"),
                   loss=make(LossConfig, d.get("loss", {}), "loss"),
                   train=make(TrainConfig, d.get("train", {}), "train"),
                   preset=d.get("preset"))

    def replace(self, **sections) -> "RunConfig":
        """New config with whole sections or `section__field=value` overrides."""
        parts = {"data": self.data, "model": self.model, "loss": self.loss, "train": self.train}
        preset = sections.pop("preset", self.preset)
        for key, value in sections.items():
            if "__" in key:
                sec, name = key.split("__", 1)
                parts[sec] = dataclasses.replace(parts[sec], **{name: value})
            else:
                parts[key] = value
        return RunConfig(preset=preset, **parts)
