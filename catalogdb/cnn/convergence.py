"""Training to convergence: the learning rate drops on a plateau, training stops when the last drop stops helping.

One callback does both jobs of ReduceLROnPlateau and EarlyStopping, so that why training stopped is
recorded, not guessed: `converged` is true when the validation loss stopped improving for
`patience` epochs after the last of `reductions` learning-rate reductions; it is false when the step
budget ran out first (the network was still improving, or still had reductions left to try).
"""

from __future__ import annotations

import math

import keras
import numpy as np


class Convergence(keras.callbacks.Callback):
    """Reduce the learning rate by `factor` after `patience` epochs without improvement, `reductions` times;
    then stop at the next plateau (converged), or when `max_steps` optimizer steps are done (not converged).

    The weights of the best validation epoch are restored when training ends.
    """

    def __init__(self, steps_per_epoch: int, max_steps: int, patience: int, factor: float, reductions: int,
                 min_delta: float = 1e-4):
        super().__init__()
        self.steps_per_epoch, self.max_steps = steps_per_epoch, max_steps
        self.patience, self.factor, self.reductions, self.min_delta = patience, factor, reductions, min_delta
        self.best = math.inf
        self.best_epoch = 0
        self.best_weights = None
        self.epochs_run = 0
        self.wait = 0
        self.reduced = 0
        self.converged = False
        self.learning_rates: list[float] = []

    @property
    def steps(self) -> int:
        """Optimizer steps taken so far."""
        return self.epochs_run * self.steps_per_epoch

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_run = epoch + 1
        loss = float((logs or {}).get("val_loss", math.nan))
        self.learning_rates.append(float(np.asarray(self.model.optimizer.learning_rate)))
        if loss < self.best * (1 - self.min_delta):  # relative: z-scored MSE losses span 0.01 to 1
            self.best, self.best_epoch, self.wait = loss, epoch + 1, 0
            self.best_weights = self.model.get_weights()
        else:
            self.wait += 1
        if self.wait >= self.patience:
            if self.reduced >= self.reductions:
                self.converged = True
                self.model.stop_training = True
                return
            self.model.optimizer.learning_rate = self.learning_rates[-1] * self.factor
            self.reduced += 1
            self.wait = 0
        if self.steps + self.steps_per_epoch > self.max_steps:
            self.model.stop_training = True  # the next epoch would overrun the budget: not converged

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)

    def summary(self) -> dict:
        """How this network's training went, for the registry."""
        return {"epochs_run": self.epochs_run, "steps": self.steps, "max_steps": self.max_steps,
                "best_epoch": self.best_epoch, "best_val_loss": self.best if math.isfinite(self.best) else None,
                "lr_reductions": self.reduced, "final_learning_rate": self.learning_rates[-1] if self.learning_rates
                else None, "converged": self.converged}
