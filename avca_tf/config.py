"""Typed configuration, one dataclass per concern, round-tripped through config.json.

Batch-norm momentum is stored in the Keras convention
(moving = momentum * moving + (1 - momentum) * batch); PyTorch's momentum m
is 1 - m here (`keras_momentum`).
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Literal, get_args

from avca_tf.errors import ConfigError, did_you_mean

# The enumerated values of a run, typed once; `check_choice` is their one validator.
Dataset = Literal["UCF", "ActivityNet", "VGGSound", "Toy"]
FeatureSetName = Literal["main_features", "cls_features", "clip_clap"]
TextPairing = Literal["own", "reference"]   # "reference": the authors' class/vector mis-pairing
DATASETS: tuple[str, ...] = get_args(Dataset)
Strategy = Literal["default", "mirrored", "multi-worker"]  # one device / local GPUs / TF_CONFIG
# stage-2 learning rates: "replay" stage 1's, "constant" train.lr, or "validation": a plateau
# schedule on the stage-1 validation HM (data stage 2 trains on), as the authors' code
Stage2LR = Literal["replay", "constant", "validation"]
# stage-2 length: "best" = best stage-1 epoch count, test the last checkpoint; "all" = all
# epochs, test the checkpoint of the best stage-1 epoch (the authors' protocol)
Stage2Length = Literal["best", "all"]
# arithmetic of the training step: "float32"; "bf16-matmul": every dense layer's matmul in
# bfloat16 (AMX/tensor cores), everything else float32; "mixed": Keras' mixed_bfloat16 policy
# (mixed_float16 with loss scaling on a GPU); "auto": resolved when a run starts (and recorded
# so in its config.json): bf16-matmul on a CPU with bfloat16 units (AMX or AVX512-BF16), where
# it is faster, float32 elsewhere (a CPU without them emulates bf16, slower; GPUs unmeasured).
# Evaluation and export are float32 in every case except "mixed".
Precision = Literal["auto", "float32", "bf16-matmul", "mixed"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
STAGE2_LRS: tuple[str, ...] = get_args(Stage2LR)
STAGE2_LENGTHS: tuple[str, ...] = get_args(Stage2Length)
TEXT_PAIRINGS: tuple[str, ...] = get_args(TextPairing)
STRATEGIES: tuple[str, ...] = get_args(Strategy)


@dataclass(frozen=True)
class FeatureSet:
    """A published feature set: widths, split folder, file format and class-text files.

    `text_files` empty: the dataset's word2vec dict (text_dim 300). Otherwise
    (file name template with `{key}` = the dataset's text key, width) per part;
    a class's label embedding is the concatenation of its vectors from every
    part, in this order.
    """
    name: str
    audio_dim: int
    video_dim: int
    split_folder: str
    short: str                           # in preset names: "UCF-main", "VGGSound-cls"
    text_dim: int = 300
    features_folder: str = ""            # folder under <DS>/features; default: `name`
    file_format: str = "h5"              # "h5" (data, video_urls) | "pkl" (pickle_features)
    text_files: tuple = ()               # ((template, width), ...)
    clip_names: bool = False             # class names of the CLIP prompts (dataset's csv column)

    @property
    def folder(self) -> str:
        return self.features_folder or self.name

    @property
    def suffix(self) -> str:
        return "." + self.file_format


# The one feature-set table.
FEATURE_SETS: dict[str, FeatureSet] = {
    "main_features": FeatureSet("main_features", 512, 512, "main_split", "main"),
    "cls_features": FeatureSet("cls_features", 128, 4096, "cls_split", "cls"),
    # ClipClap-GZSL: one CLAP audio (1024) and one CLIP frame (512) vector per
    # video, class embeddings [CLIP text 512; CLAP text 1024].
    "clip_clap": FeatureSet(
        "clip_clap", 1024, 512, "cls_split", "clipclap", text_dim=1536,
        features_folder="cls_features_non_averaged", file_format="pkl",
        text_files=(("word_embeddings_{key}_normed.npy", 512),
                    ("wavcaps_word_embeddings_{key}_normed.npy", 1024)),
        clip_names=True),
}
assert tuple(FEATURE_SETS) == get_args(FeatureSetName)


def check_choice(kind: str, value, choices, error=ConfigError):
    """`value` if it is one of `choices`, else `error` naming `kind` and the valid choices."""
    if value not in choices:
        raise error(f"unknown {kind} {value!r}{did_you_mean(value, choices)}; expected one of "
                    f"{sorted(choices)}")
    return value


# Limits a user can hit, checked before memory is taken; each `error:` names the limit and
# the environment variable that raises it.
LIMITS = {  # name -> (environment variable, default)
    "batch size": ("AVCA_MAX_BATCH_SIZE", 8192),
    "sequence steps": ("AVCA_MAX_SEQUENCE_STEPS", 2048),  # per video and modality
}


# Serving (README, Deployment): every signature refuses a request over these before the
# model runs (one 10,000-step video alone needs a 12.8 GB attention tensor), and features
# beyond +-MAX_FEATURE (squared distances overflow float32 to -inf/NaN scores).
REQUEST_LIMITS = {"videos": 4096, "steps": 2048, "class_names": 4096}
MAX_FEATURE = 1e6
MAX_VERSION = 2 ** 63 - 1  # TF Serving's model versions are int64


def limit(name: str) -> int:
    """The current value of LIMITS[name] (its environment variable, else the default)."""
    var, default = LIMITS[name]
    text = __import__("os").environ.get(var, "")
    try:
        value = int(text) if text else default
    except ValueError:
        raise ConfigError(f"{var}={text!r}: expected a whole number") from None
    if value < 1:
        raise ConfigError(f"{var}={text!r}: expected a number >= 1")
    return value


def check_limit(name: str, value: int, what: str) -> int:
    """`value` if it is within LIMITS[name], else a ConfigError naming the limit and how to
    raise it; `what` names the value (e.g. "--batch-size", "video 'v_1' of stage_1_train")."""
    bound = limit(name)
    if value > bound:
        var = LIMITS[name][0]
        raise ConfigError(f"{what}: {value} is over the {name} limit {bound} (set {var} "
                          f"to raise it, if the machine has the memory)")
    return value


TORCH_DEFAULT_BN_MOMENTUM = 0.1  # nn.BatchNorm1d() without a momentum argument
SEED_LIMIT = 2 ** 32  # numpy's seed range, used by keras.utils.set_random_seed


# A TF Serving model name: one directory under the serving base, never a path.
SERVING_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_serving_name(name: str, flag: str = "--serving-name", error=ConfigError) -> str:
    """`name` if it is a plain model name (letters, digits, '_', '-', '.'; no '/' or '..'
    prefix), so the model directory stays inside the serving base."""
    if not isinstance(name, str) or not SERVING_NAME_PATTERN.match(name) or len(name) > 200:
        raise error(f"{flag} {name!r}: expected a model name of letters, digits, '_', '-' "
                    "and '.', starting with a letter or digit (one directory under the "
                    "serving base, no '/')")
    return name


def short_feature_set(feature_set: str) -> str:
    """main_features -> main, cls_features -> cls, clip_clap -> clip-clap."""
    return feature_set.replace("_features", "").replace("_", "-")


def keras_momentum(torch_momentum: float) -> float:
    """PyTorch BN momentum m (weight of the new batch) -> Keras momentum 1 - m."""
    return 1.0 - float(torch_momentum)


@dataclass(frozen=True)
class DataConfig:
    """Which benchmark to read and how classes are paired with label vectors."""
    root: str = ""
    dataset: Dataset = "UCF"
    feature_set: FeatureSetName = "main_features"
    text_pairing: TextPairing = "own"
    tfrecords: str | None = None       # read TFRecords written by `avca ingest` instead of h5
    # temporal (per-step) features, read by sequence models such as TCaF (docs/tcaf.md)
    temporal: bool = False             # read features/<feature_set>_non_averaged/*.pkl
    sequence_mode: str = "max"         # "max": pad to the batch maximum; "fixed": windows
    train_video_steps: int = 60        # fixed mode: video window in training (random start)
    test_video_steps: int = 300        # fixed mode: video window at evaluation (centre)
    audio_window: str = "matched"      # fixed mode audio steps: "matched" (same span) | "reference"
    pad_multiple: int = 1              # max mode, training: pad to a multiple of this (XLA buckets)

    def __post_init__(self):
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("feature set", self.feature_set, FEATURE_SETS)
        check_choice("text pairing", self.text_pairing, TEXT_PAIRINGS)


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
    # sequence models (TCaF, docs/tcaf.md); mlp_dim is the transformer's feed-forward width
    dropout_transformer: float = 0.0    # attention output and feed-forward dropout
    dropout_position: float = 0.0       # after the token projection of [feature, position]
    position_dim: int = 64              # width of the modality + Fourier time + padding embedding
    fourier_scale: float = 10.0         # std of the fixed random Fourier matrix R
    audio_scale: float = 1.0            # audio multiplied by this (TCaF: 1/255)
    video_norm: str = "none"            # "none" | "feature" (L2 per step) | "time" (authors' quirk)
    eval_positions: str = "seconds"     # "seconds" | "steps" (authors' quirk: integer steps at eval)
    bn_double_update: bool = False      # authors' quirk: extra train-mode forward after each step
    separate_negative_pass: bool = False  # AVCA: negatives through the transformer in their own call
    audio_step: float = 1.0             # seconds per audio step (default step times)
    video_step: float = 1.0             # seconds per video step


@dataclass(frozen=True)
class LossConfig:
    """The loss terms of the reference and their toggles/weights."""
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
    precision: Precision = "float32"       # see Precision
    # threads per TF op (intra-op pool; 0: TF's default, one per core). 1 runs the step's many
    # small ops side by side on the inter-op pool instead of splitting each across cores:
    # faster for these models on CPU, and each op's bits no longer depend on the core count
    intra_op_threads: int = 1
    # independent ops run at once (inter-op pool; 0: TF's default, one per core). With more
    # than one, a step's bits can depend on how the ops were scheduled on a busy machine
    # (measured: a UCF main run diverged in stage 2; docs/training.md, "Determinism")
    inter_op_threads: int = 1
    eval_batch_size: int = 8192
    strategy: Strategy = "default"
    stage2_all_epochs_when_best_first: bool = False  # TCaF quirk: best epoch 1 -> stage 2 runs all
    # Calibrated-stacking search grid: beta_steps values evenly spaced in [0, beta_max]
    # (AVCA's 16 in [0, 3]; ClipClap-GZSL's 76 in [0, 5]).
    beta_max: float = 3.0
    beta_steps: int = 16
    stage2_lr: Stage2LR = "replay"         # see Stage2LR
    stage2_length: Stage2Length = "best"   # see Stage2Length

    def validate(self) -> "TrainConfig":
        """Raises ConfigError naming the first field out of range."""
        import math
        for name in ("epochs", "n_batches", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"train.lr (learning rate) must be a finite number > 0, "
                              f"got {self.lr}")
        if not 0 <= self.seed < SEED_LIMIT:
            raise ConfigError(f"train.seed must be in [0, {SEED_LIMIT - 1}], got {self.seed}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"train.weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 < self.lr_factor <= 1:
            raise ConfigError(f"train.lr_factor must be in (0, 1], got {self.lr_factor}")
        check_choice("train.strategy", self.strategy, STRATEGIES)
        if not (math.isfinite(self.beta_max) and self.beta_max >= 0 and self.beta_steps >= 1):
            raise ConfigError(f"train.beta_max must be >= 0 and train.beta_steps >= 1, got "
                              f"{self.beta_max!r}, {self.beta_steps!r}")
        check_choice("train.stage2_lr", self.stage2_lr, STAGE2_LRS)
        check_choice("train.stage2_length", self.stage2_length, STAGE2_LENGTHS)
        check_choice("train.precision", self.precision, PRECISIONS)
        for name in ("intra_op_threads", "inter_op_threads"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must be >= 0 (0: one per core), got "
                                  f"{getattr(self, name)}")
        return self

    def beta_grid(self):
        """The betas the validation search tries (float64 array)."""
        import numpy as np
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
        return dataclasses.asdict(self)

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
        train = d.get("train", {})
        if isinstance(train, dict) and "mixed_precision" in train:
            # a config.json written before train.precision: same arithmetic and threads as then
            train = {k: v for k, v in train.items() if k != "mixed_precision"}
            train.setdefault("precision", "mixed" if d["train"]["mixed_precision"] else "float32")
            train.setdefault("intra_op_threads", 0)
            train.setdefault("inter_op_threads", 0)
        return cls(data=make(DataConfig, d.get("data", {}), "data"),
                   model=make(ModelConfig, d.get("model", {}), "model"),
                   loss=make(LossConfig, d.get("loss", {}), "loss"),
                   train=make(TrainConfig, train, "train"),
                   preset=d.get("preset"))

    def validate(self) -> "RunConfig":
        """Checks the values a run cannot start with; ConfigError names the field.
        Called before anything is written, so a refused run leaves no config.json behind
        (a corrected retry into the same --out is not a "different configuration")."""
        self.train.validate()
        if self.data.tfrecords and self.data.temporal and self.train.strategy != "default":
            raise ConfigError(f"train.strategy {self.train.strategy!r}: a sequence model "
                              "streaming from TFRecords (--tfrecords) trains with strategy "
                              "'default' only; leave out --strategy, or train from --root")
        return self

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
