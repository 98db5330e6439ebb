"""Artifact types of the AVCA pipeline that TFX does not define.

The standard Examples, Model, ModelRun, ModelEvaluation, ModelBlessing and
PushedModel types cover everything else.
"""
from tfx.types.artifact import Artifact


class ClassEmbeddings(Artifact):
    """One L2-normalised label vector per class (written by avca_tf.beam.embed_classes).

    Custom properties: `num_classes`, `dim` and `vectors_source` (the word-vector
    file the vectors came from).
    """
    TYPE_NAME = "avca.ClassEmbeddings"  # <namespace>.<Name>, as KFP schema titles must be


class MediaFeatures(Artifact):
    """A benchmark root of extracted features (written by avca_tf.beam.extract.run_extract):
    `<dataset>/features/...`, class lists, label embeddings, `report.json`.

    Custom properties: `videos`, `windows`, `skipped` (counts from report.json).
    """
    TYPE_NAME = "avca.MediaFeatures"
