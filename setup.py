"""invcl-tf: InvCLR (Foster, Pukdee, Rainforth, ICLR 2021) in TensorFlow/Keras 3."""

from setuptools import find_packages, setup

setup(
    name="invcl-tf",
    version="0.1.0",
    description="Transformation-invariant contrastive learning (InvCLR) in TensorFlow/Keras",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # configs/ and benchmarks/ stay in the checkout (configs are found by path); only the
    # library and the tuner are importable packages.
    packages=find_packages(include=["invcl_tf", "invcl_tf.*", "tuning", "tuning.*"]),
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<4",
        "keras-tuner[bayesian]>=1.4.7,<2",  # [bayesian]: scikit-learn, for --tuner=bayesian
        "tensorflow-datasets>=4.9.7,<5",
        "absl-py>=2.1,<3",
        "ml-collections>=1.0,<2",
        "matplotlib>=3.8,<4",
        "tensorboard>=2.20",
        "numpy>=1.26",
        "scipy>=1.11",  # the logistic probe's L-BFGS and the ridge solve
        "etils[epath]>=1.5",  # the TFDS builder's path (TFDS itself needs it too)
        "pillow>=10",  # image folders: header checks before training
    ],
    extras_require={
        # Keras 3's JAX backend (KERAS_BACKEND=jax): the shared math runs there too.
        "jax": ["jax>=0.4.34"],
        # dill: TFDS builder tests; jax: the shared math is tested on both backends.
        "test": ["pytest>=8", "dill>=0.3", "jax>=0.4.34"],
    },
    entry_points={
        "console_scripts": [
            "invcl-train=invcl_tf.train:run",
            "invcl-evaluate=invcl_tf.evaluate:run",
            "invcl-export=invcl_tf.export:run",
            "invcl-report=invcl_tf.report:run",
            "invcl-tune=tuning.search:run",
        ],
    },
)
