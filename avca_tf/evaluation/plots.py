"""The seed's t-SNE figure: input audio, input visual, learnt audio-visual embeddings.

Panels (a) and (b) embed the chosen test samples' input features; panel (c)
embeds the model's audio-visual embeddings (model.embed) together with the
projected class label embeddings (model.embed_classes), drawn as crosses, in
one t-SNE map. Seen classes are drawn with circles, unseen with triangles,
and the legend says which is which.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from avca_tf.errors import ConfigError
from avca_tf.io_utils import atomic_path


@dataclass(frozen=True)
class Panel:
    title: str
    points: np.ndarray            # [n, 2] t-SNE coordinates of the samples
    labels: np.ndarray            # [n] class ids
    class_points: np.ndarray | None = None   # [k, 2] coordinates of the class crosses
    class_ids: np.ndarray | None = None      # [k]


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def resolve_classes(names, class_names, allowed_ids, role: str) -> list[int]:
    """Class ids of `names` (case, spaces and punctuation ignored), each among `allowed_ids`."""
    index = {_key(n): i for i, n in enumerate(class_names)}
    allowed = {int(i) for i in allowed_ids}
    ids = []
    for name in names:
        i = index.get(_key(name))
        if i is None:
            close = [n for n in class_names if _key(name)[:4] in _key(n)][:5]
            raise ConfigError(f"--{role}: no class named '{name}' in the run's classes"
                              + (f" (similar: {close})" if close else ""))
        if i not in allowed:
            choices = sorted(class_names[j] for j in allowed)
            raise ConfigError(f"--{role}: '{class_names[i]}' is not a {role} test class of this "
                              f"run; {role} test classes: {choices}")
        ids.append(i)
    return ids


def tsne_2d(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """scikit-learn t-SNE to 2-D (Barnes-Hut, PCA init, perplexity capped for small sets).

    One OpenMP thread: the Barnes-Hut gradient's threads busy-wait, so on a shared
    machine (load 10, 2 cores) 458 points took 88 s with the default thread count and
    3.5 s with one; the exact gradient took 18 s."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits
    if len(x) < 3:
        raise ConfigError(f"t-SNE needs at least 3 points, got {len(x)}")
    perplexity = float(min(30.0, (len(x) - 1) / 3.0))
    with threadpool_limits(limits=1, user_api="openmp"):
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                    learning_rate="auto", method="barnes_hut").fit_transform(
                        np.asarray(x, np.float64)).astype(np.float32)


def draw(panels: list[Panel], class_names, seen_ids, out_path: str, title: str = ""):
    """Draws the panels side by side into out_path (PNG, atomic); returns the Figure."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    seen = {int(i) for i in seen_ids}
    ids = sorted({int(i) for p in panels for i in p.labels}, key=lambda i: (i not in seen, i))
    colors = {i: plt.get_cmap("tab10")(k % 10) for k, i in enumerate(ids)}
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 5.6))
    axes = np.atleast_1d(axes)
    for letter, ax, panel in zip("abcdefgh", axes, panels):
        for i in ids:
            mask = panel.labels == i
            ax.scatter(panel.points[mask, 0], panel.points[mask, 1], s=14, alpha=0.75,
                       color=colors[i], marker="o" if i in seen else "^", linewidths=0)
        if panel.class_points is not None:
            for (x, y), i in zip(panel.class_points, panel.class_ids):
                ax.scatter([x], [y], s=220, marker="X", color=colors[int(i)], edgecolors="black",
                           linewidths=1.2, zorder=5)
        ax.set_title(f"({letter}) {panel.title}")
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [Line2D([], [], linestyle="", marker="o" if i in seen else "^", color=colors[i],
                      markersize=8, label=f"{class_names[i]} ({'seen' if i in seen else 'unseen'})")
               for i in ids]
    handles.append(Line2D([], [], linestyle="", marker="X", color="grey", markeredgecolor="black",
                          markersize=11, label="class label embedding"))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.12, 1, 0.95 if title else 1))
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return fig


def tsne_figure(model, audio, video, labels, class_embeddings, class_ids, class_names, seen_ids,
                out_path: str, seed: int = 0, title: str = ""):
    """The three-panel figure for the given samples; returns the Figure.

    class_embeddings [k, 300] are the label embeddings of class_ids (for the crosses).
    """
    import tensorflow as tf
    learnt = np.asarray(model.embed(tf.constant(audio), tf.constant(video), training=False))
    crosses = np.asarray(model.embed_classes(tf.constant(class_embeddings), training=False))
    joint = tsne_2d(np.concatenate([learnt, crosses]), seed)
    n = len(labels)
    panels = [Panel("input audio features", tsne_2d(audio, seed), labels),
              Panel("input visual features", tsne_2d(video, seed), labels),
              Panel("learnt audio-visual embeddings", joint[:n], labels, joint[n:],
                    np.asarray(class_ids))]
    return draw(panels, class_names, seen_ids, out_path, title)


def run_tsne(run_dir: str, seen_names, unseen_names, out: str, root: str | None = None,
             max_per_class: int = 200, seed: int = 0) -> tuple[int, int]:
    """The seed's t-SNE figure of a finished run: at most `max_per_class` test samples
    (a seeded random subset) of each named seen/unseen class, written to `out`.
    Returns (samples, classes)."""
    import dataclasses
    import os

    from avca_tf.training.protocol import load_data, load_run

    if max_per_class < 1:
        raise ConfigError(f"--max-per-class must be >= 1, got {max_per_class}")
    run = load_run(run_dir)
    cfg = run.run_config
    if root:
        cfg = cfg.replace(data=dataclasses.replace(cfg.data, root=os.path.abspath(root),
                                                   tfrecords=None))
    seen = resolve_classes(seen_names, run.class_names, run.seen_ids, "seen")
    unseen = resolve_classes(unseen_names, run.class_names, run.unseen_ids, "unseen")
    if not seen or not unseen:
        raise ConfigError("--seen and --unseen each need at least one class")
    bench = load_data(cfg, stream=False)  # reads the feature arrays
    if tuple(bench.class_names) != tuple(run.class_names):
        raise ConfigError(f"the benchmark at {cfg.data.root} has other classes than the run "
                          f"{run_dir}; pass the --root it was trained on")
    test = bench.protocol(2)
    rng = np.random.default_rng(seed)
    picks = []
    for cls in seen + unseen:
        split = test.eval_seen if cls in seen else test.eval_unseen
        idx = np.flatnonzero(split.labels == cls)
        if len(idx) == 0:
            raise ConfigError(f"class '{run.class_names[cls]}' has no test samples in {split.name}")
        if len(idx) > max_per_class:
            idx = np.sort(rng.choice(idx, max_per_class, replace=False))
        picks.append((split, idx))
    audio = np.concatenate([s.audio[i] for s, i in picks]).astype(np.float32)
    video = np.concatenate([s.video[i] for s, i in picks]).astype(np.float32)
    labels = np.concatenate([s.labels[i] for s, i in picks])
    ids = np.asarray(seen + unseen)
    tsne_figure(run.model, audio, video, labels, run.label_embeddings[ids], ids, run.class_names,
                run.seen_ids, out, seed=seed,
                title=f"{cfg.data.dataset} {cfg.data.feature_set}, model {cfg.model.name}")
    return len(labels), len(ids)
