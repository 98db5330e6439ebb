"""avca-tf: audio-visual generalised zero-shot video classification on TF/Keras/TFX."""
from setuptools import find_packages, setup

setup(
    name="avca-tf",
    version="0.1.0",
    description="AVCA audio-visual GZSL in TensorFlow, Keras 3 and TFX",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["avca_tf", "avca_tf.*", "pipelines", "pipelines.*",
                                    "components", "components.*"]),
    # The pinned stack is installed by scripts/setup_env.sh (TFX needs a
    # non-resolver install path on glibc < 2.38); these are the direct needs.
    # The authors' class splits and word2vec class vectors (MIT, with their LICENSE.md).
    package_data={"avca_tf.data": ["avgzsl_benchmark/*.md", "avgzsl_benchmark/*/*",
                                   "avgzsl_benchmark/*/*/*", "avgzsl_benchmark/*/*/*/*"]},
    install_requires=["tensorflow", "tensorflow-text", "keras", "h5py", "numpy",
                      "apache-beam", "tfx", "kfp", "matplotlib", "scikit-learn", "tqdm"],
    entry_points={"console_scripts": ["avca=avca_tf.cli:main"]},
)
