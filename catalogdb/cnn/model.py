"""The network of Fig. 4 (layer sizes from the authors' saved model): 23,849,605 parameters at scale 1."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter is not for users

import keras  # noqa: E402

from catalogdb.cnn import LABELS, N_PIXELS  # noqa: E402

# Keras' LeakyReLU layer default (0.3), the slope the authors' tf.keras model used
LEAKY_SLOPE = 0.3
CONV_FILTERS = (64, 128, 256)
DENSE_UNITS = (512, 256)


def scaled(width: int, width_scale: float) -> int:
    """A layer width times width_scale, at least 1."""
    return max(1, int(round(width * width_scale)))


def build_model(width_scale: float = 1.0, n_pixels: int = N_PIXELS, n_labels: int = len(LABELS)) -> keras.Model:
    """The paper's CNN: 3 x (Conv1D k=3 same + LeakyReLU + MaxPool 3), Dense 512, 256, 5 (linear)."""
    inputs = keras.Input(shape=(n_pixels, 1), name="flux")
    x = inputs
    for i, filters in enumerate(CONV_FILTERS, start=1):
        x = keras.layers.Conv1D(scaled(filters, width_scale), 3, padding="same", name=f"conv{i}")(x)
        x = keras.layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=f"conv{i}_act")(x)
        x = keras.layers.MaxPooling1D(3, name=f"pool{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for i, units in enumerate(DENSE_UNITS, start=1):
        x = keras.layers.Dense(scaled(units, width_scale), name=f"dense{i}")(x)
        x = keras.layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=f"dense{i}_act")(x)
    outputs = keras.layers.Dense(n_labels, activation="linear", name="labels")(x)
    return keras.Model(inputs, outputs, name="shen_luo_2024_cnn")


def default_jit_compile() -> bool | str:
    """XLA off on TensorFlow, Keras' "auto" (jit on JAX) elsewhere.

    Measured with TF 2.21 on 2 CPU cores (benchmarks/cnn.py): XLA made each new network's first epoch
    ~2x slower (27 s against 15 s at full size) and later epochs and predict no faster.
    """
    return False if keras.backend.backend() == "tensorflow" else "auto"


def compile_model(model: keras.Model, learning_rate: float = 1e-4,
                  jit_compile: bool | str | None = None) -> keras.Model:
    """Adam at the paper's learning rate, MSE loss on z-scored labels."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mse",
                  jit_compile=default_jit_compile() if jit_compile is None else jit_compile)
    return model
