"""A small training loop for recurrent networks (Chapters 2-3).

One loop covers the three methods Pascanu, Mikolov & Bengio (2013) compare:

- **MSGD**: mini-batch stochastic gradient descent;
- **MSGD-C**: the same with the gradient's norm clipped (:func:`rnnbook.gradients.clip_grad_norm_`);
- **MSGD-CR**: clipping plus the vanishing-gradient regularizer
  (:func:`rnnbook.gradients.pascanu_regularizer`), minimising ``E + alpha * Omega``.

The loop draws a fresh batch every update, shows a tqdm progress bar, and returns
its :class:`History`. When the loss or the gradient norm stops being finite it stops,
prints why, and returns the history up to the last finite update: a diverged run is
reported, never plotted as NaN.
"""

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from rnnbook.gradients import clip_grad_norm_, grad_norm, pascanu_regularizer
from rnnbook.numpy_rnn import state_gradients


@dataclass
class History:
    """What a training run recorded, one entry per update unless stated otherwise.

    Attributes:
        loss: the task loss ``E`` of each update's batch.
        grad_norm: the norm of the full gradient before clipping.
        omega: the regularizer ``Omega`` (0 when it was not used).
        state_grad_norms: ``(update, norms)`` pairs every ``record_every`` updates, where
            ``norms[t-1] = mean over the batch of ||dE/dh_t||`` for ``t = 1..T``.
        stopped: ``None`` if every update ran, else the reason the run stopped.
    """

    loss: list = field(default_factory=list)
    grad_norm: list = field(default_factory=list)
    omega: list = field(default_factory=list)
    state_grad_norms: list = field(default_factory=list)
    stopped: str | None = None

    @property
    def updates(self):
        """The number of updates that completed."""
        return len(self.loss)


def state_gradients_torch(W_hh, hs, loss):
    """``dE/dh_t`` for ``t = 1..T`` of a tanh RNN, shape ``(B, T, H)``, as a constant.

    Autograd gives the loss's direct gradient with respect to the states ``hs``;
    Chapter 1's :func:`rnnbook.numpy_rnn.state_gradients` carries it back through the
    recurrence (equation ``ch1-recursion``), which ``torch.nn.RNN`` hides in its kernel.
    """
    (direct,) = torch.autograd.grad(loss, hs, retain_graph=True)  # (B, T+1, H)
    total = state_gradients(
        W_hh.detach().double().numpy(),
        hs.detach().double().numpy(),
        direct[:, 1:].double().numpy(),
    )
    return torch.from_numpy(np.ascontiguousarray(total[:, 1:])).to(hs.dtype)


def train(
    model,
    make_batch,
    steps,
    lr,
    loss_fn=F.cross_entropy,
    clip=None,
    omega_weight=0.0,
    record_every=0,
    progress=True,
    desc="training",
):
    """Train ``model`` by mini-batch SGD on fresh batches; return its :class:`History`.

    Each update: draw ``inputs, targets = make_batch()``, compute ``E = loss_fn(y, targets)``
    from ``y, hs = model(inputs)``, add ``omega_weight * Omega`` if asked, back-propagate,
    clip the gradient's norm to ``clip`` if asked, and take the step
    ``theta <- theta - lr * g``.

    Args:
        model: a :class:`rnnbook.torch_rnn.VanillaRNN` (or any module returning
            ``(y, hs)`` and exposing ``W_hh``; the regularizer needs tanh units).
        make_batch: a function of no arguments returning ``(inputs, targets)``.
        steps: number of updates, a positive int.
        lr: the learning rate, positive.
        loss_fn: ``loss_fn(y, targets)`` returning a scalar; cross-entropy by default.
        clip: the norm threshold of MSGD-C/CR, or ``None`` for no clipping.
        omega_weight: ``alpha``, the weight of the regularizer (0 turns it off).
        record_every: every this many updates store the per-step gradient norms in
            ``History.state_grad_norms`` (0 never).
        progress: show a tqdm progress bar.
        desc: the progress bar's label.

    Returns:
        The :class:`History`. ``History.stopped`` says why a run ended early.
    """
    for name, value in (("steps", steps), ("record_every", record_every)):
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or value < (1 if name == "steps" else 0)
        ):
            raise ValueError(
                f"expected {name} to be an int >= {1 if name == 'steps' else 0}, got {value!r}"
            )
    if not lr > 0:
        raise ValueError(f"expected a positive learning rate lr, got {lr!r}")
    if clip is not None and not clip > 0:
        raise ValueError(
            f"expected clip to be None or a positive norm threshold, got {clip!r}"
        )
    if omega_weight < 0:
        raise ValueError(f"expected omega_weight >= 0, got {omega_weight!r}")
    if omega_weight > 0 and getattr(model, "nonlinearity", "tanh") != "tanh":
        raise ValueError(
            "the regularizer Omega is defined here for tanh units; "
            f"this model uses {model.nonlinearity!r}"
        )

    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    history = History()
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False)
    for step in bar:
        inputs, targets = make_batch()
        y, hs = model(inputs)
        loss = loss_fn(y, targets)
        record = record_every and step % record_every == 0
        omega = torch.zeros(())
        if torch.isfinite(loss) and (omega_weight > 0 or record):
            grads = state_gradients_torch(model.W_hh, hs, loss)
            if record:
                history.state_grad_norms.append(
                    (step, torch.linalg.vector_norm(grads, dim=-1).mean(0))
                )
            if omega_weight > 0:
                omega = pascanu_regularizer(model.W_hh, hs, grads)
        optimizer.zero_grad()
        if torch.isfinite(loss):
            (loss + omega_weight * omega).backward()
            norm = (
                clip_grad_norm_(model.parameters(), clip)
                if clip
                else grad_norm(model.parameters())
            )
        if not torch.isfinite(loss) or not torch.isfinite(norm):
            what = (
                f"the loss is {loss.item()}"
                if not torch.isfinite(loss)
                else f"the gradient norm is {norm.item()}"
            )
            history.stopped = (
                f"stopped at update {step}: {what}; "
                f"the history keeps the {history.updates} finite updates before it"
            )
            print(history.stopped)
            break
        optimizer.step()
        history.loss.append(loss.item())
        history.grad_norm.append(norm.item())
        history.omega.append(omega.item())
        if progress and step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    return history


@torch.no_grad()
def accuracy(model, inputs, targets):
    """The fraction of sequences whose predicted class (argmax of ``y``) equals ``targets``.

    Args:
        model: returns ``(y, hs)`` with ``y`` of shape ``(B, O)``, as :class:`rnnbook.torch_rnn.VanillaRNN`.
        inputs: ``(B, T, D)``.
        targets: integer labels, shape ``(B,)``.
    """
    if (
        not isinstance(targets, torch.Tensor)
        or targets.dim() != 1
        or targets.dtype != torch.int64
        or not isinstance(inputs, torch.Tensor)
        or len(targets) != len(inputs)
    ):
        shape = (
            tuple(targets.shape)
            if isinstance(targets, torch.Tensor)
            else type(targets).__name__
        )
        raise ValueError(
            f"expected targets to be int64 labels of shape (B,) matching inputs' batch, got {shape}"
        )
    y, _ = model(inputs)
    return (y.argmax(dim=-1) == targets).double().mean().item()
