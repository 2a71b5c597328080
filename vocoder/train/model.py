"""docs/model.md in PyTorch, for teacher-forced training (mu-law head, subscale 1).

The per-frame conditioning ``cond = cond2_w @ c1 + cond2_b`` is added to the GRU's input
gates; the fused ``nn.GRU`` only takes an input vector, so it gets ``[x ; c1]`` (x the
network input of docs/model.md, c1 the conditioning hidden layer repeated over the hop)
with ``weight_ih = [in_w | cond2_w]`` and ``bias_ih = cond2_b``. ``weight_hh``/``bias_hh``
are R and its bias. Export splits them back (:mod:`vocoder.train.export`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

BLOCK = (16, 4)
PAIR_LIMIT = 128


class WaveRNN(nn.Module):
    def __init__(
        self,
        n_features=26,
        hidden=384,
        cond_hidden=128,
        ctx_before=2,
        lookahead=2,
        bits=8,
        excitation=2,
        hop=80,
        sample_rate=16000,
        preemphasis=0.0,
        predictor="none",
        ltp_gain=0.0,
    ):
        super().__init__()
        if hidden % 2:
            raise ValueError("hidden must be even")
        if predictor not in ("none", "lpc+pitch"):
            raise ValueError(f"predictor must be 'none' or 'lpc+pitch', got {predictor!r}")
        self.hp = dict(
            n_features=n_features,
            hidden=hidden,
            cond_hidden=cond_hidden,
            ctx_before=ctx_before,
            lookahead=lookahead,
            bits=bits,
            excitation=excitation,
            hop=hop,
            sample_rate=sample_rate,
            preemphasis=float(preemphasis),
            predictor=predictor,
            ltp_gain=float(ltp_gain),
        )
        self.predictor = predictor != "none"
        self.H, self.E, self.Q = hidden, excitation, 2**bits
        self.K = ctx_before + 1 + lookahead
        self.n_in = 3 + excitation
        self.register_buffer("feat_mean", torch.zeros(n_features))
        self.register_buffer("feat_std", torch.ones(n_features))
        self.cond1 = nn.Linear(self.K * n_features, cond_hidden)
        self.gru = nn.GRU(self.n_in + cond_hidden, hidden, batch_first=True)
        self.O1 = nn.Linear(hidden, hidden)
        self.O2 = nn.Linear(hidden, self.Q)
        self.exc_out = nn.Parameter(torch.randn(hidden, max(1, excitation)) * (0.5 if excitation else 0.0))
        # Pruning masks for R (weight_hh), O1 and O2 (1 = kept); a QAT switch.
        for name, shape in self.sparse_shapes().items():
            self.register_buffer(f"mask_{name}", torch.ones(shape))
        self.qat = False

    # ------------------------------------------------------------------ helpers
    def sparse_shapes(self):
        return {"R": (3 * self.H, self.H), "O1": (self.H, self.H), "O2": (self.Q, self.H)}

    def sparse_params(self):
        return {"R": self.gru.weight_hh_l0, "O1": self.O1.weight, "O2": self.O2.weight}

    def set_normalisation(self, mean, std):
        self.feat_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.feat_std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def normalise(self, f):
        z = (f - self.feat_mean) / self.feat_std
        return torch.clamp(torch.nan_to_num(z, nan=0.0, posinf=8.0, neginf=-8.0), -8.0, 8.0)

    @torch.no_grad()
    def apply_masks(self):
        for name, p in self.sparse_params().items():
            p.mul_(getattr(self, f"mask_{name}"))
        # Columns of in_w the plain mu-law head never feeds (inputs 1, 2 are always 0);
        # with a predictor they carry the prediction and the last remainder.
        if not self.predictor:
            self.gru.weight_ih_l0[:, 1:3] = 0.0

    # ------------------------------------------------------------------ forward
    def forward(self, ctx, prev, exc, h0=None):
        """Teacher-forced logits.

        ctx:  [B, frames, K * nf] raw features of each frame's window (oldest first)
        prev: [B, T] previous-sample inputs in [-1, 1] (T = frames * hop), or [B, T, 3]
              with a predictor: the classes of s[n-1] and p[n] and the last remainder
              class, as inputs (docs/model.md)
        exc:  [B, T, E] excitation
        Returns logits [B, T, Q].
        """
        hop = self.hp["hop"]
        B, T = prev.shape[:2]
        c1 = torch.tanh(self.cond1(self.normalise_ctx(ctx)))  # [B, frames, ch]
        c1 = c1.repeat_interleave(hop, dim=1)[:, :T]
        parts = [prev] if prev.dim() == 3 else [prev.unsqueeze(-1), prev.new_zeros(B, T, 2)]
        if self.E:
            parts.append(exc)
        parts.append(c1)
        x = torch.cat(parts, dim=-1)
        if self.qat:
            w_hh = fake_quant_rows(self.gru.weight_hh_l0)
            h, _ = torch.func.functional_call(self.gru, {"weight_hh_l0": w_hh}, (x, h0))
        else:
            h, _ = self.gru(x, h0)
        return self.head(h, exc)

    def normalise_ctx(self, ctx):
        B, Fr, KN = ctx.shape
        nf = self.hp["n_features"]
        return self.normalise(ctx.view(B, Fr, KN // nf, nf)).view(B, Fr, KN)

    def head(self, h, exc):
        w1, w2 = self.O1.weight, self.O2.weight
        if self.qat:
            w1, w2 = fake_quant_rows(w1), fake_quant_rows(w2)
            h = fake_quant_act(h)
        a = h @ w1.t() + self.O1.bias
        if self.E:
            a = a + exc @ self.exc_out.t()
        a = torch.relu(a)
        if self.qat:
            a = fake_quant_act(a)
        return a @ w2.t() + self.O2.bias


# ---------------------------------------------------------------------- quantisation


def _row_scales(w):
    """Per-row scale of vocoder.engine.blocksparse.quantize_rows (saturation-aware)."""
    rows, cols = w.shape
    wp = w if cols % 2 == 0 else torch.nn.functional.pad(w, (0, 1))
    pos, neg = wp.clamp(min=0), (-wp).clamp(min=0)
    pair = torch.maximum(pos[:, 0::2] + pos[:, 1::2], neg[:, 0::2] + neg[:, 1::2]).amax(dim=1)
    need = torch.maximum(w.abs().amax(dim=1) / 127.0, pair / (PAIR_LIMIT - 1.0))
    return torch.where(need > 0, need, torch.ones_like(need))


def fake_quant_rows(w):
    """int8 per-row quantisation with a straight-through gradient."""
    s = _row_scales(w.detach()).unsqueeze(1)
    q = torch.clamp(torch.round(w / s), -127, 127) * s
    return w + (q - w).detach()


def fake_quant_act(x):
    """The engine's dynamic activation quantisation (absmax/127 per vector), straight-through."""
    s = (x.detach().abs().amax(dim=-1, keepdim=True) / 127.0).clamp(min=1e-12)
    q = torch.clamp(torch.round(x / s), -127, 127) * s
    return x + (q - x).detach()


# ---------------------------------------------------------------------- pruning


def block_norms(w, block=BLOCK):
    """L2 norm of every 16x4 block (padded), [row_blocks, col_blocks]."""
    br, bc = block
    rows, cols = w.shape
    rp, cp = -(-rows // br) * br, -(-cols // bc) * bc
    wp = torch.zeros(rp, cp, dtype=w.dtype, device=w.device)
    wp[:rows, :cols] = w
    return wp.view(rp // br, br, cp // bc, bc).pow(2).sum(dim=(1, 3)).sqrt()


def block_mask(w, sparsity: float, block=BLOCK):
    """0/1 mask of w's shape keeping the (1 - sparsity) fraction of blocks with the largest norms."""
    br, bc = block
    norms = block_norms(w.detach(), block)
    n = norms.numel()
    drop = min(n - 1, int(math.floor(sparsity * n)))
    keep = torch.ones(n, dtype=w.dtype)
    if drop > 0:
        idx = torch.argsort(norms.flatten())[:drop]
        keep[idx] = 0.0
    m = keep.view(norms.shape).repeat_interleave(br, 0).repeat_interleave(bc, 1)
    return m[: w.shape[0], : w.shape[1]].contiguous()


def sparsity_at(t, t0, S, Z):
    """The gradual pruning schedule z = Z (1 - (1 - (t - t0)/S)^3), clamped to [0, Z]."""
    if t <= t0:
        return 0.0
    if t >= t0 + S:
        return Z
    return Z * (1.0 - (1.0 - (t - t0) / S) ** 3)


def mulaw_encode_t(audio, bits):
    """Same as vocoder.engine.reference.mulaw_encode, in numpy (kept here to avoid float64 copies)."""
    from ..engine.reference import mulaw_encode

    return mulaw_encode(audio, bits)


_ = np
