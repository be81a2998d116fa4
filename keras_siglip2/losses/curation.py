"""Active data curation (ACID-style learnability selection) for small models.

A learner and a stronger teacher both score every example of a super-batch
with its own per-example sigmoid loss; the examples the learner finds hard
but the teacher finds easy (high learnability = learner loss − teacher loss)
are the ones worth training on.
"""

from keras import ops


def per_example_sigmoid_loss(image_embeddings, text_embeddings, log_temperature, bias):
    """Each example's share of the sigmoid loss within its batch.

    Example i owns row i (its image against every text) and column i (its
    text against every image); the score is the mean of the two sums, so the
    scores add up to `B × sigmoid_loss`.

    Args: `image_embeddings (B, D)`, `text_embeddings (B, D)` L2-normalised;
    scalars `log_temperature`, `bias`. Returns `(B,)` float32.
    """
    image_embeddings = ops.cast(image_embeddings, "float32")
    text_embeddings = ops.cast(text_embeddings, "float32")
    logits = ops.matmul(image_embeddings, ops.transpose(text_embeddings))
    logits = logits * ops.exp(ops.cast(log_temperature, "float32")) + ops.cast(bias, "float32")
    labels = 2.0 * ops.eye(ops.shape(logits)[0], dtype="float32") - 1.0
    pair_losses = ops.softplus(-labels * logits)  # −log σ(z · logit)
    return 0.5 * (ops.sum(pair_losses, axis=1) + ops.sum(pair_losses, axis=0))


def learnability_selection(learner_losses, teacher_losses, count):
    """Indices `(count,)` of the examples with the highest learner − teacher
    loss, highest first. `count` is a Python int."""
    learnability = ops.stop_gradient(
        ops.cast(learner_losses, "float32") - ops.cast(teacher_losses, "float32")
    )
    _, indices = ops.top_k(learnability, count, sorted=True)
    return indices
