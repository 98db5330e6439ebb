"""Adam as the reference trains with it: L2 weight decay added to the gradient.

torch.optim.Adam(weight_decay=wd) adds wd * param to the gradient before the
moment updates (coupled L2, not AdamW). With the TensorFlow backend each
variable is updated by one fused ResourceApplyAdam op instead of Keras' eight
element-wise ops: the update is a sixth of a CPU training step otherwise.
"""
from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="avca_tf")
class CoupledAdam(keras.optimizers.Adam):
    """keras.optimizers.Adam (same epsilon convention) plus coupled L2 decay `l2`.

    Decay is applied only to variables that receive a gradient, as torch skips
    parameters whose .grad is None.
    """

    def __init__(self, learning_rate=1e-3, l2=0.0, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.l2 = l2

    def update_step(self, gradient, variable, learning_rate):
        gradient = ops.cast(gradient, variable.dtype)
        if self.l2:
            gradient = gradient + ops.cast(self.l2, variable.dtype) * variable
        if keras.backend.backend() != "tensorflow" or self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf
        dtype = variable.dtype
        step = ops.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = ops.cast(self.beta_1, dtype), ops.cast(self.beta_2, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].value.handle,
            v=self._velocities[index].value.handle,
            beta1_power=ops.power(beta_1, step), beta2_power=ops.power(beta_2, step),
            lr=ops.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2,
            epsilon=ops.cast(self.epsilon, dtype), grad=gradient)

    def get_config(self):
        return {**super().get_config(), "l2": self.l2}
