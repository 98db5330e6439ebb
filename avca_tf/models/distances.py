"""The L2 distances every model, loss and the serving signature use (one module).

- `row_l2(x, y, eps)`: per row, ||x - y + eps|| [B]; eps=1e-6 is torch's
  pairwise_distance (TripletMarginLoss), eps=0 the reference's plain L2 loss.
- `pairwise_l2(x, y)`: all pairs, [B, D] x [C, D] -> [B, C], for scoring classes.
"""
from keras import ops

TORCH_PAIRWISE_EPS = 1e-6  # torch.nn.functional.pairwise_distance adds eps to the difference


def row_l2(x, y, eps: float = TORCH_PAIRWISE_EPS):
    """Row-wise Euclidean distance ||x - y + eps|| [B] (eps=0: no epsilon term at all)."""
    diff = x - y
    if eps:
        diff = diff + eps
    return ops.sqrt(ops.sum(ops.square(diff), axis=-1))


def pairwise_l2(x, y):
    """Euclidean distances between the rows of x [B, D] and y [C, D] -> [B, C]."""
    sq = (ops.sum(x * x, axis=1, keepdims=True) - 2.0 * ops.matmul(x, ops.transpose(y))
          + ops.transpose(ops.sum(y * y, axis=1, keepdims=True)))
    return ops.sqrt(ops.maximum(sq, 0.0))
