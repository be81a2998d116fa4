"""DINO-style distillation between prototype distributions (SILC and TIPS losses).

Both SigLIP 2 self-supervised terms compare a student's and an EMA teacher's scores over
K prototypes: local-to-global self-distillation (student: local crops, teacher: the
global view; pooled features) and masked prediction (student: masked global view,
teacher: unmasked; per patch, only masked positions count). The teacher's scores are
centred (a running mean subtracted, against collapse to one prototype) and sharpened
(a low temperature); the loss is the cross entropy from the teacher's distribution to
the student's:

    p_t = softmax((teacher - center) / τ_t)      (no gradient)
    L   = mean over positions of  -Σ_k p_t[k] · log_softmax(student / τ_s)[k]

`update_center` keeps the running mean of the teacher scores; call it once per step
with the same teacher scores, after computing the loss. Everything is float32.
"""

from keras import ops


def _weighted_mean(values, weights):
    if weights is None:
        return ops.mean(values)
    weights = ops.cast(ops.convert_to_tensor(weights), "float32")
    weights = ops.broadcast_to(weights, ops.shape(values))
    weight_sum = ops.sum(weights)
    safe_sum = ops.where(weight_sum > 0, weight_sum, 1.0)
    return ops.where(weight_sum > 0, ops.sum(weights * values) / safe_sum, 0.0)


def distillation_loss(
    student_logits,
    teacher_logits,
    center,
    student_temperature=0.1,
    teacher_temperature=0.04,
    weights=None,
):
    """Cross entropy from the teacher's centred, sharpened softmax to the student's.

    Args:
        student_logits: (..., K) student prototype scores.
        teacher_logits: (..., K) teacher scores, broadcastable to `student_logits`
            (e.g. (B, 1, K) against (B, 8, K) student local crops). No gradient flows
            into them.
        center: (K,) running mean of teacher scores (see `update_center`).
        student_temperature, teacher_temperature: softmax temperatures τ_s, τ_t.
        weights: optional, NumPy-broadcastable to the leading (...) shape; positions with
            weight 0 are excluded (e.g. unmasked patches in masked prediction). The
            result is `Σ w·CE / Σ w` (0 when `Σ w == 0`).

    Returns:
        float32 scalar.
    """
    student_logits = ops.cast(ops.convert_to_tensor(student_logits), "float32")
    teacher_logits = ops.cast(ops.convert_to_tensor(teacher_logits), "float32")
    center = ops.cast(ops.convert_to_tensor(center), "float32")
    teacher_probs = ops.stop_gradient(
        ops.softmax((teacher_logits - center) / teacher_temperature, axis=-1)
    )
    student_log_probs = ops.log_softmax(student_logits / student_temperature, axis=-1)
    cross_entropy = -ops.sum(teacher_probs * student_log_probs, axis=-1)
    return _weighted_mean(cross_entropy, weights)


def update_center(center, teacher_logits, momentum=0.9, weights=None):
    """`momentum · center + (1 - momentum) · mean(teacher_logits)` over all positions.

    Args:
        center: (K,) current center.
        teacher_logits: (..., K) teacher scores of this step.
        momentum: EMA momentum of the center.
        weights: optional, NumPy-broadcastable to the leading (...) shape: the mean is
            weighted (positions with weight 0 are ignored); if all weights are 0 the
            center is returned unchanged.

    Returns:
        (K,) float32 new center (no gradient).
    """
    center = ops.cast(ops.convert_to_tensor(center), "float32")
    teacher_logits = ops.stop_gradient(
        ops.cast(ops.convert_to_tensor(teacher_logits), "float32")
    )
    num_classes = ops.shape(teacher_logits)[-1]
    flat = ops.reshape(teacher_logits, (-1, num_classes))
    if weights is None:
        return momentum * center + (1.0 - momentum) * ops.mean(flat, axis=0)
    weights = ops.cast(ops.convert_to_tensor(weights), "float32")
    weights = ops.broadcast_to(weights, ops.shape(teacher_logits)[:-1])
    weights = ops.reshape(weights, (-1, 1))
    weight_sum = ops.sum(weights)
    batch_mean = ops.sum(weights * flat, axis=0) / ops.where(weight_sum > 0, weight_sum, 1.0)
    updated = momentum * center + (1.0 - momentum) * batch_mean
    return ops.stop_gradient(ops.where(weight_sum > 0, updated, center))
