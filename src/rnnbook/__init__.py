"""rnnbook: the code of *Gradients Through Time*.

One concept per module (see the book's style guide):

- ``rnn``        the vanilla RNN and backpropagation through time in numpy (Chapter 1)
- ``gradients``  norm clipping and Pascanu et al.'s vanishing-gradient regularizer (Chapter 2)
- ``tasks``      seeded synthetic sequence tasks (Chapters 2-3)
- ``train``      a small training loop that stops on a non-finite loss (Chapters 2-3)
- ``gated``      LSTM and GRU written from their equations (Chapter 3)
- ``display``    helpers the chapters use to show the code they run
"""

__version__ = "0.1.0"


def seed_everything(seed):
    """Seed Python's, NumPy's and PyTorch's generators; every chapter calls this first.

    Args:
        seed: a non-negative integer.
    """
    import random

    import numpy as np
    import torch

    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"expected seed to be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
