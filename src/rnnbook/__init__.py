"""rnnbook: the code of *Gradients Through Time*.

One concept per module (see the book's style guide):

- ``rnn``        the vanilla RNN and backpropagation through time in numpy (Chapter 1)
- ``gradients``  norm clipping and Pascanu et al.'s vanishing-gradient regularizer (Chapter 2)
- ``tasks``      seeded synthetic sequence tasks (Chapters 2-3)
- ``train``      a small training loop that stops on a non-finite loss (Chapters 2-3)
- ``vanilla``    the vanilla RNN in PyTorch and the initializations of Chapter 2
- ``gated``      LSTM and GRU written from their equations (Chapter 3)
- ``widgets``    interactive explorers, each with a static twin (Chapter 2)
- ``display``    helpers the chapters use to show the code they run
- ``notebooks``  re-executes the chapters in place (``python -m booktools.notebooks --all``)
- ``build``      builds the book, full or student edition (``python -m booktools.build``)
- ``sphinx_ext`` the book's Sphinx fixes (duplicate scripts, ARIA roles, the student edition)
- ``experiments`` runs longer than a chapter, writing to ``chapters/data/``
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
        raise ValueError(
            f"expected seed to be a non-negative int, got {seed!r}"
        )
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
