"""The CNN of Shen & Luo (2024): model, training on the training_set view, model registry.

Keras 3 only (keras.ops, no backend calls), so the backend is whatever KERAS_BACKEND selects:
tensorflow (default), jax or torch.
"""

LABELS = ("teff", "logg", "feh", "mg", "bprp0")
UNITS = ("K", "dex", "dex", "mag", "mag")
N_PIXELS = 4875  # 3925..8799 A in 1 A steps
