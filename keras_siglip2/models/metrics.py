"""What `SigLIP2.fit` logs: one mean per loss, and the latest temperature and bias."""

import keras
from keras import ops


class LatestValue(keras.metrics.Metric):
    """Reports the most recent value (for the learned temperature and bias)."""

    def __init__(self, name, **kwargs):
        super().__init__(name=name, **kwargs)
        self.value = self.add_variable(shape=(), initializer="zeros", name="value")

    def update_state(self, value):
        self.value.assign(ops.cast(ops.convert_to_tensor(value), self.dtype))

    def result(self):
        return ops.convert_to_tensor(self.value)

    def reset_state(self):
        self.value.assign(0.0)


def loss_trackers(locca, self_supervised):
    """`{loss name: Mean}` for the losses a model has (absent losses are not
    logged as 0): sigmoid always, captioning and localization with LocCa,
    self-distillation and masked prediction with self-supervision."""
    names = ["sigmoid"]
    if locca:
        names += ["captioning", "localization"]
    if self_supervised:
        names += ["self_distillation", "masked_prediction"]
    return {name: keras.metrics.Mean(name=f"{name}_loss") for name in names}
