"""rnnbook: the code of *Gradients Through Time*.

One concept per module (the book's style guide), imports flowing downward:

- ``numpy_rnn``  the vanilla RNN and backpropagation through time, in NumPy
  (Chapter 1)
- ``memory``     what backpropagation keeps: saved memory counted by
  storage, checkpointed BPTT (Chapter 1)
- ``truncated``  chunked truncated BPTT on a delayed-recall task (Chapter 1)
- ``torch_rnn``  the vanilla RNN in PyTorch and Chapter 2's initializations
- ``gradients``  norm clipping, Pascanu et al.'s regularizer, decay probes
  (Chapter 2)
- ``dynamics``   one sigmoid unit as a dynamical system: fixed points and
  the loss wall (Chapter 2)
- ``gated``      the LSTM and the GRU from their equations (Chapter 3)
- ``attention``  additive (Bahdanau), dot and scaled dot attention, masked
  (Chapter 4)
- ``seq2seq``    encoder, decoders with and without attention, greedy and beam
  search (Chapter 4)
- ``ssm``        linear state space models: discretization, kernel, scan,
  FFT convolution, HiPPO (Chapters 5-6)
- ``s4d``        diagonal state spaces: the Vandermonde kernel, S4D's
  initializations, the S4D layer and model (Chapter 6)
- ``selective``  the selective scan: the reference loop and one recurrent
  step (Chapter 7)
- ``chunked_scan`` the same scan by a chunked parallel scan, with a
  hand-written backward pass (Chapter 7)
- ``self_attention`` causal self-attention with a key-value cache, the
  baseline of Chapter 7's generation measurement
- ``mamba``      the Mamba block and a small Mamba model, with a recurrent
  mode (Chapter 7)
- ``probes``     gradient-flow probes and the small experiments of Chapter 3
- ``tasks``      seeded synthetic tasks
- ``train``      the training loop, which stops on a non-finite loss
- ``plots``      the book's figures, one look for every chapter
- ``widgets``    interactive explorers, each with a static twin
- ``display``    shows the source of the code a chapter runs
- ``experiments`` runs longer than a chapter (``chapter1``, ``pascanu``,
  ``chapter2``, ``chapter3``, ``bahdanau``, ``s4d_vs_lstm``,
  ``selective_copying``, ``mamba_inference``);
  results in ``rnnbook.data``

The book's tooling (building the book, re-executing chapters, assignments)
is a separate package, ``booktools``; ``rnnbook`` never imports it.

Glossary, the one set of letters of every module (the book's notation page
lists the same letters beside the papers'):

- ``B`` batch size, ``T`` sequence length, ``D`` input size, ``H`` hidden
  size, ``N`` state size of a state space model, ``S`` source length.
- The state space modules (``ssm``) write ``L`` for the sequence length,
  as the S4 and Mamba papers do, and ``u`` for the input.
- Tensors are batch-first: ``xs`` is ``(B, T, D)``; ``hs`` holds the states
  ``h_0 .. h_T`` as ``(B, T+1, H)``, so ``hs[:, t]`` is ``h_t``.
- ``W_xh (H, D)``, ``W_hh (H, H)``, ``b (H,)``: the parameters of
  ``h_t = f(W_hh h_{t-1} + W_xh x_t + b)``; ``a_t`` is the pre-activation.
- ``dhs``: the gradients ``dL_t/dh_t`` that arrive from the per-step losses
  only, ``(B, T, H)``; ``grads``: the total gradients ``dL/dh_t``.
- Functions take parameters first, then data: ``rnn_forward(W_xh, W_hh, b,
  xs, h0)``.
"""

__version__ = "0.1.0"


def seed_everything(seed):
    """Seed Python's, NumPy's and PyTorch's generators (every chapter does).

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
