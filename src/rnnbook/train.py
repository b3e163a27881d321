"""A small training loop for recurrent networks (Chapters 2-3).

One loop covers the three methods Pascanu, Mikolov & Bengio (2013) compare:

- **MSGD**: mini-batch stochastic gradient descent;
- **MSGD-C**: the same with the gradient's norm clipped
  (:func:`rnnbook.gradients.clip_grad_norm_`);
- **MSGD-CR**: clipping plus the vanishing-gradient regularizer
  (:func:`rnnbook.gradients.pascanu_regularizer`), minimising
  ``E + alpha * Omega``.

The loop draws a fresh batch every update, shows a tqdm progress bar, and
returns its :class:`History`. When the loss or the gradient norm stops being
finite it stops, prints why, and returns the history up to the last finite
update: a diverged run is reported, never plotted as NaN.
"""

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from rnnbook._checks import (
    check_bool,
    check_choice,
    check_int,
    check_nonempty_batch,
    check_real,
    check_tensor,
)
from rnnbook.gradients import clip_grad_norm_, grad_norm, pascanu_regularizer
from rnnbook.numpy_rnn import state_gradients


@dataclass
class History:
    """What a training run recorded, one entry per update unless stated.

    Attributes:
        loss: the task loss ``E`` of each update's batch.
        grad_norm: the norm of the full gradient before clipping.
        omega: the regularizer ``Omega`` (0 when it was not used).
        state_grad_norms: ``(update, norms)`` pairs every ``record_every``
            updates, where ``norms[t-1]`` is the batch mean of
            ``||dE/dh_t||`` for ``t = 1..T``.
        stopped: ``None`` if every update ran, else why the run stopped.
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


def state_gradients_torch(W_hh, hs, loss, nonlinearity="tanh"):
    """``dE/dh_t`` for ``t = 1..T`` of a vanilla RNN, shape ``(B, T, H)``.

    Autograd gives the loss's *direct* gradient with respect to the states
    ``hs``; the recurrence, which ``torch.nn.RNN`` hides in its kernel, carries
    it back (equation ``ch1-recursion``):
    ``dE/dh_{t-1} = direct_{t-1} + dE/dh_t diag(f'(a_t)) W_hh``, with
    ``f'(a_t) = 1 - h_t^2`` for tanh and ``[h_t > 0]`` for ReLU. For tanh this
    is Chapter 1's :func:`rnnbook.numpy_rnn.state_gradients`. The result is a
    constant (no graph), in the dtype of ``hs``.

    Args:
        W_hh: the recurrent matrix, ``(H, H)``.
        hs: the states ``h_0 .. h_T``, ``(B, T+1, H)``, in ``loss``'s
            graph.
        loss: a scalar computed from ``hs``.
        nonlinearity: ``"tanh"`` or ``"relu"``, the model's ``f``.
    """
    check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
    check_tensor("W_hh", W_hh, 2, "(H, H)", real=True)
    check_tensor("hs", hs, 3, "(B, T+1, H)", real=True)
    (direct,) = torch.autograd.grad(loss, hs, retain_graph=True)  # (B, T+1, H)
    if nonlinearity == "tanh":
        total = state_gradients(
            W_hh.detach().double().numpy(),
            hs.detach().double().numpy(),
            direct[:, 1:].double().numpy(),
        )
        return torch.from_numpy(np.ascontiguousarray(total[:, 1:])).to(
            hs.dtype
        )
    W = W_hh.detach().double()
    states = hs.detach().double()[:, 1:]  # (B, T, H): h_1 .. h_T
    slopes = (states > 0).double()  # f'(a_t) = [a_t > 0] = [h_t > 0]
    direct = direct.detach().double()[:, 1:]  # (B, T, H)
    grads = torch.empty_like(direct)
    grads[:, -1] = direct[:, -1]
    for t in range(states.shape[1] - 1, 0, -1):  # grads[:, t] is dE/dh_{t+1}
        grads[:, t - 1] = direct[:, t - 1] + (grads[:, t] * slopes[:, t]) @ W
    return grads.to(hs.dtype)


def train(
    model,
    make_batch,
    steps,
    lr=None,
    *,
    optimizer=None,
    loss_fn=F.cross_entropy,
    clip=None,
    omega_weight=0.0,
    record_every=0,
    progress=True,
    desc="training",
    on_update=None,
):
    """Train ``model`` on fresh batches; return its :class:`History`.

    Each update: draw ``inputs, targets = make_batch()``, compute
    ``E = loss_fn(y, targets)`` from ``y, hs = model(inputs)``, add
    ``omega_weight * Omega`` if asked, back-propagate, clip the gradient's
    norm to ``clip`` if asked, and take a step: plain SGD,
    ``theta <- theta - lr * g``, or ``optimizer.step()`` if an optimizer is
    given (Chapter 3 trains its gated networks with Adam).

    Args:
        model: a module returning ``(y, hs)``, such as
            :class:`rnnbook.torch_rnn.VanillaRNN`; the regularizer and
            ``record_every`` also need its ``W_hh`` and ``nonlinearity``.
        make_batch: a function of no arguments returning ``(inputs, targets)``.
        steps: number of updates, a positive int.
        lr: the learning rate of plain SGD, positive; or ``None`` with
            ``optimizer``.
        optimizer: a ``torch.optim.Optimizer`` over ``model``'s parameters,
            used instead of SGD (give exactly one of ``lr`` and ``optimizer``).
        loss_fn: ``loss_fn(y, targets)`` returning a scalar; cross-entropy by
            default.
        clip: the norm threshold of MSGD-C/CR, or ``None`` for no clipping.
        omega_weight: ``alpha``, the weight of the regularizer (0 turns it
            off); tanh units only.
        record_every: every this many updates store the per-step gradient
            norms in ``History.state_grad_norms`` (0 never).
        progress: show a tqdm progress bar.
        desc: the progress bar's label.
        on_update: ``None``, or a function called as
            ``on_update(updates, model)`` after each completed update
            (``updates`` counts from 1); it must not change the model.
            Chapter 2's experiment tests its networks with it.

    Returns:
        The :class:`History`. ``History.stopped`` says why a run ended early.
    """
    steps = check_int("steps", steps, 1)
    record_every = check_int("record_every", record_every, 0)
    if (lr is None) == (optimizer is None):
        raise ValueError(
            "expected exactly one of lr (plain SGD) and optimizer, got "
            + ("neither" if lr is None else "both")
        )
    if optimizer is not None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                "expected optimizer to be a torch.optim.Optimizer, "
                f"got {type(optimizer).__name__}"
            )
        owned = {id(p) for p in model.parameters()}
        given = [p for g in optimizer.param_groups for p in g["params"]]
        if not given or any(id(p) not in owned for p in given):
            raise ValueError(
                "expected optimizer to update the parameters of model"
            )
    else:
        lr = check_real("lr", lr, low=0.0)
    if clip is not None:
        clip = check_real("clip", clip, low=0.0)
    omega_weight = check_real("omega_weight", omega_weight, 0.0, True)
    progress = check_bool("progress", progress)
    if not isinstance(desc, str):
        raise TypeError(f"expected desc to be a str, got {desc!r}")
    if not callable(make_batch) or not callable(loss_fn):
        raise TypeError("expected make_batch and loss_fn to be callables")
    if on_update is not None and not callable(on_update):
        raise TypeError(
            "expected on_update to be None or a callable, "
            f"got {type(on_update).__name__}"
        )
    nonlinearity = getattr(model, "nonlinearity", None)
    if (omega_weight > 0 or record_every) and not hasattr(model, "W_hh"):
        raise ValueError(
            "omega_weight and record_every need a vanilla RNN exposing W_hh "
            f"(rnnbook.torch_rnn.VanillaRNN); got {type(model).__name__}"
        )
    if omega_weight > 0 and (nonlinearity or "tanh") != "tanh":
        raise ValueError(
            "the regularizer Omega is defined here for tanh units; "
            f"this model uses {nonlinearity!r}"
        )

    if optimizer is None:
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
            grads = state_gradients_torch(
                model.W_hh, hs, loss, nonlinearity or "tanh"
            )
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
                f"the history keeps the {history.updates} finite updates "
                "before it"
            )
            print(history.stopped)
            break
        optimizer.step()
        history.loss.append(loss.item())
        history.grad_norm.append(norm.item())
        history.omega.append(omega.item())
        if on_update is not None:
            on_update(history.updates, model)
        if progress and step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    return history


@torch.no_grad()
def accuracy(model, inputs, targets):
    """The fraction of sequences whose class ``argmax y`` equals ``targets``.

    Args:
        model: returns ``(y, hs)`` with ``y`` of shape ``(B, O)``, as
            :class:`rnnbook.torch_rnn.VanillaRNN`.
        inputs: ``(B, T, D)`` with ``B >= 1``.
        targets: int64 labels in ``0..O-1``, shape ``(B,)``.

    Returns:
        A float in ``[0, 1]``.
    """
    check_tensor("inputs", inputs, 3, "(B, T, D)", real=True)
    if not isinstance(targets, torch.Tensor) or targets.dtype != torch.int64:
        what = (
            f"dtype {targets.dtype}"
            if isinstance(targets, torch.Tensor)
            else type(targets).__name__
        )
        raise TypeError(
            f"expected targets to be int64 labels of shape (B,), got {what}"
        )
    if targets.dim() != 1 or len(targets) != len(inputs):
        raise ValueError(
            "expected targets to be int64 labels of shape (B,) matching "
            f"inputs {tuple(inputs.shape)}, got {tuple(targets.shape)}"
        )
    check_nonempty_batch("inputs", len(inputs))
    y, _ = model(inputs)
    if y.dim() != 2 or len(y) != len(targets):
        raise ValueError(
            f"expected the model's y of shape (B, O), got {tuple(y.shape)}"
        )
    if bool(((targets < 0) | (targets >= y.shape[-1])).any()):
        raise ValueError(
            f"expected targets in 0..{y.shape[-1] - 1}, got values from "
            f"{targets.min().item()} to {targets.max().item()}"
        )
    return (y.argmax(dim=-1) == targets).double().mean().item()
