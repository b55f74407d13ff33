"""NanoTST and the build ladder that leads to it, in the order a learner meets it.

1. LinearBaseline     one patch -> next patch, a single linear map (MSE)
2. SingleHeadAttention  + patch embedding and one causal attention head (MSE)
3. Transformer        + learned positions, multi-head attention, GELU FFN, residuals, pre-norm (MSE)
4. NanoTST            + a Gaussian head that predicts mu and sigma of the next patch (NLL)

Every rung instance-normalizes its input (so their losses are comparable), cuts it into patches
and predicts patch n+1 from patches 0..n. As in a GPT, the targets are the input shifted by one
step, here one patch: `x, y = next_patch_pairs(series, P)`. The normalization statistics come
from x only, so the prediction after the last input patch never sees its target's mean and spread
(it is exactly what a forecast asks for). `forward` returns a Prediction and stores nothing on
the module: one model can serve many threads and browser sessions at once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig

NORM_EPS = 1e-5


@dataclass
class Prediction:
    """What a forward pass returns. Patch n of mu/sigma is the prediction of patch n+1."""
    mu: torch.Tensor                      # (B, N, P) normalized space
    sigma: torch.Tensor | None            # (B, N, P) or None for MSE rungs
    loc: torch.Tensor                     # (B, 1) instance mean
    scale: torch.Tensor                   # (B, 1) instance std (+eps)
    attention: list[torch.Tensor] | None  # per layer (B, H, N, N), query x key; when asked for

    def denormalize(self, values: torch.Tensor) -> torch.Tensor:
        """Map normalized values (B, ...) back to the original scale."""
        shape = (-1,) + (1,) * (values.dim() - 1)
        return values * self.scale.view(shape) + self.loc.view(shape)


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """F.dropout with a cheaper mask on CPU (same maths: keep with prob 1-p, scale by 1/(1-p)).

    On CPU, F.dropout's bernoulli_ costs about 10 ns per element, which at our sizes is a
    tenth to a fifth of a training step. Here one 64-bit draw of torch's default generator gives the
    random bits of two elements, compared in float32 against p's threshold: the keep
    probability is 1-p to about 2^-24 (torch.rand's resolution) and torch.manual_seed still
    fixes the masks. Elsewhere (CUDA, torch.compile) F.dropout is the faster one.
    """
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or torch.compiler.is_compiling():
        return F.dropout(x, p, True)
    n = x.numel()
    bits = torch.empty((n + 1) // 2, dtype=torch.int64, device=x.device).random_(-2**63, None)
    bits = bits.view(torch.int32)[:n].view(x.shape)                 # all 64 bits -> 2 int32
    threshold = float(round(p * 2**32) - 2**31)
    # compare in float32 whatever x's dtype (bfloat16 would round the bits too coarsely)
    keep = bits.to(torch.float32).ge_(threshold).to(x.dtype).mul_(1.0 / (1.0 - p))  # 0 or 1/(1-p)
    return x * keep


class Dropout(nn.Dropout):
    """nn.Dropout through `dropout` above."""

    def forward(self, x):
        return dropout(x, self.p, self.training)


class CausalSelfAttention(nn.Module):

    def __init__(self, config: ModelConfig, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.causal = config.causal
        self.dropout = config.dropout
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.resid_dropout = Dropout(config.dropout)
        # True above the diagonal: the future a query may not see. A constant, not per-call state.
        n = config.n_patches
        self.register_buffer("future", torch.ones(n, n, dtype=torch.bool).triu(1), persistent=False)

    def forward(self, x, need_weights: bool = False):
        B, T, D = x.shape
        H = self.n_heads
        # one view + permute instead of split + 3 transposes: q, k, v are (B, H, T, hs) views
        q, k, v = self.qkv(x).view(B, T, 3, H, D // H).permute(2, 0, 3, 1, 4).unbind(0)
        p = self.dropout if self.training else 0.0
        if need_weights or p > 0.0:
            # explicit path: the same computation, but we keep the softmax weights to show them,
            # or drop some of them (the fused CPU kernel has no dropout; SDPA would fall back to
            # this same sequence of ops, with a mask built per call)
            att = (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))  # (B, H, T, T)
            if self.causal:
                att = att.masked_fill(self.future[:T, :T], float("-inf"))
            weights = F.softmax(att, dim=-1)
            y = dropout(weights, p, True) @ v
        else:
            weights = None
            y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        y = y.transpose(1, 2).reshape(B, T, D)                      # (B, T, D)
        return self.resid_dropout(self.proj(y)), weights if need_weights else None


class MLP(nn.Module):

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.fc = nn.Linear(config.d_model, config.ffn_mult * config.d_model)
        self.proj = nn.Linear(config.ffn_mult * config.d_model, config.d_model)
        self.dropout = Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.d_model)
        self.attn = CausalSelfAttention(config, config.n_heads)
        self.ln_2 = nn.LayerNorm(config.d_model)
        self.mlp = MLP(config)

    def forward(self, x, need_weights: bool = False):
        a, weights = self.attn(self.ln_1(x), need_weights)
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return x, weights


class PatchForecaster(nn.Module):
    """What every rung shares: normalize, cut into patches, and the loss."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config

    def patchify(self, x: torch.Tensor):
        """(B, L) raw series -> normalized patches (B, N, P), loc (B, 1), scale (B, 1)."""
        P = self.config.patch_size
        if x.dim() != 2:
            raise ValueError(f"expected a (batch, length) tensor, got shape {tuple(x.shape)}")
        L = x.size(1)
        if L % P or L < P or L > self.config.context_length:
            raise ValueError(f"series length {L} must be a multiple of the patch size {P} "
                             f"and at most the context length {self.config.context_length}")
        loc = x.mean(dim=1, keepdim=True)
        scale = x.std(dim=1, keepdim=True, unbiased=False) + NORM_EPS
        patches = ((x - loc) / scale).view(x.size(0), L // P, P)
        return patches, loc, scale

    def forward(self, x: torch.Tensor, need_attention: bool = False) -> Prediction:
        patches, loc, scale = self.patchify(x)
        mu, sigma, attention = self.predict(patches, need_attention)
        return Prediction(mu, sigma, loc, scale, attention if need_attention else None)

    def predict(self, patches, need_attention):
        raise NotImplementedError

    def loss(self, pred: Prediction, y: torch.Tensor) -> torch.Tensor:
        """Next-patch loss in normalized space: MSE, or Gaussian NLL where there is a sigma.

        y (B, L) is the input shifted one patch ahead: its patch n is the target of position n.
        """
        target = ((y - pred.loc) / pred.scale).view_as(pred.mu)
        if pred.sigma is None:
            return F.mse_loss(pred.mu, target)
        return gaussian_nll(pred.mu, pred.sigma, target).mean()

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)


def positions(pos: nn.Embedding, n: int) -> torch.Tensor:
    """Position embeddings of n patches, counted back from the newest: the last input patch
    always gets the last position, so the position a forecast reads is the same at any input
    length (as left-padding does in TimesFM)."""
    return pos.weight[pos.num_embeddings - n:]


def next_patch_pairs(series: torch.Tensor, patch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L + P) series -> inputs x = the first L values, targets y = the last L values."""
    return series[:, :-patch_size], series[:, patch_size:]


def gaussian_nll(mu, sigma, target):
    """Elementwise negative log-likelihood of target under N(mu, sigma^2), with the constant."""
    return 0.5 * math.log(2 * math.pi) + torch.log(sigma) + 0.5 * ((target - mu) / sigma) ** 2


class LinearBaseline(PatchForecaster):
    """Rung 1: the next patch is a linear function of the current one. No context beyond it."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.linear = nn.Linear(config.patch_size, config.patch_size)
        # start at "the next patch repeats this one": a fair baseline from step 0
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(config.patch_size))
            self.linear.bias.zero_()

    def predict(self, patches, need_attention):
        return self.linear(patches), None, []


class SingleHeadAttention(PatchForecaster):
    """Rung 2: embed each patch, one causal attention head over them, a linear head."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.embed = nn.Linear(config.patch_size, config.d_model)
        self.attn = CausalSelfAttention(config, n_heads=1)
        self.head = nn.Linear(config.d_model, config.patch_size)
        self.apply(self._init_weights)

    def predict(self, patches, need_attention):
        x = self.embed(patches)                        # (B, N, D)
        x, weights = self.attn(x, need_attention)
        return self.head(x), None, [weights]


class Transformer(PatchForecaster):
    """Rung 3: learned positions + pre-norm blocks (multi-head attention, GELU FFN, residuals)."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.embed = nn.Linear(config.patch_size, config.d_model)
        self.pos = nn.Embedding(config.n_patches, config.d_model)
        self.drop = Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(config.d_model)
        self.head = self.make_head()
        self.apply(self._init_weights)
        # GPT-2 style: scale the residual projections by depth
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layers))

    def make_head(self) -> nn.Module:
        return nn.Linear(self.config.d_model, self.config.patch_size)

    def encode(self, patches, need_attention):
        x = self.drop(self.embed(patches) + positions(self.pos, patches.size(1)))  # (B, N, D)
        attention = []
        for block in self.blocks:
            x, weights = block(x, need_attention)
            attention.append(weights)
        return self.ln_f(x), attention

    def predict(self, patches, need_attention):
        x, attention = self.encode(patches, need_attention)
        return self.head(x), None, attention


class NanoTST(Transformer):
    """Rung 4: the transformer with a Gaussian head; trained with Gaussian NLL."""

    def make_head(self) -> nn.Module:
        return nn.Linear(self.config.d_model, 2 * self.config.patch_size)

    def predict(self, patches, need_attention):
        x, attention = self.encode(patches, need_attention)
        mu, raw_sigma = self.head(x).chunk(2, dim=-1)           # (B, N, P) each
        sigma = F.softplus(raw_sigma) + self.config.min_sigma
        return mu, sigma, attention


LADDER = {
    "linear": LinearBaseline,
    "attention": SingleHeadAttention,
    "transformer": Transformer,
    "nanotst": NanoTST,
}


def build_model(config: ModelConfig) -> PatchForecaster:
    return LADDER[config.rung](config)


def with_dropout(model: PatchForecaster, p: float) -> PatchForecaster:
    """The same weights in a model whose config has dropout p: dropout is a training setting, so
    a run that continues from a checkpoint may change it (the rest of the config may not)."""
    if p == model.config.dropout:
        return model
    new = build_model(replace(model.config, dropout=p))
    new.load_state_dict(model.state_dict())
    return new
