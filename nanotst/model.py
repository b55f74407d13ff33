"""NanoTST and the build ladder that leads to it, in the order a learner meets it.

1. LinearBaseline     one patch -> next patch, a single linear map (MSE)
2. SingleHeadAttention  + patch embedding and one causal attention head (MSE)
3. Transformer        + learned positions, multi-head attention, GELU FFN, residuals, pre-norm (MSE)
4. NanoTST            + a Gaussian head that predicts mu and sigma of the next patch (NLL)

Every rung instance-normalizes its input (so their losses are comparable), cuts it into patches
and predicts patch n+1 from patches 0..n. An input that is not a whole number of patches is
padded at the start; a mask says which values are padding, so the normalization ignores them
and the embedding can tell them from data (as in TimesFM); with config.previous_patch a token's
embedding reads the patch before it too (an experiment), and with config.seasonal_patch the values
one season before the patch it predicts, the season found in the window (seasonal_lag; a gate
copies a share of them into mu), moved to the current level with config.seasonal_level. As in a
GPT, the targets are the input shifted by one step, here one patch:
`x, y = next_patch_pairs(series, P)`. The normalization statistics come from x only, so the
prediction after the last input patch never sees its target's mean and spread (it is exactly
what a forecast asks for). `forward` returns a Prediction and stores nothing on
the module: one model can serve many threads and browser sessions at once.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig

NORM_EPS = 1e-5
TARGET_CLIP = 20.0   # normalized targets beyond +-20 scales count as +-20 in the loss
SHORT_SEASON_RISE = 0.2  # config.short_seasons: a season shorter than a patch rises this far above its dip
CHOICE_TOKENS = 4    # config.choose_cycles judges the seasons' means on the last 4 patches (128 values)


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


def rotary_tables(n: int, head_size: int, base: float = 100.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (n, head_size / 2) of rotary position embeddings for positions 0..n-1.

    Patches are few (16), so the base is small: the slowest pair still turns a fair part of a
    circle across the context and the fastest tells neighbours apart.
    """
    inv_freq = base ** (-torch.arange(0, head_size, 2, dtype=torch.float32) / head_size)
    angles = torch.arange(n, dtype=torch.float32)[:, None] * inv_freq[None, :]   # (n, hs/2)
    return angles.cos(), angles.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[..., :h], x[..., h:]) of x (B, H, T, hs) by the angles of positions 0..T-1."""
    a, b = x.chunk(2, dim=-1)
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


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
        self.rope = config.position in ("rope", "both")
        if self.rope:
            cos, sin = rotary_tables(n, config.d_model // n_heads)
            self.register_buffer("cos", cos, persistent=False)
            self.register_buffer("sin", sin, persistent=False)

    def forward(self, x, need_weights: bool = False, last_only: bool = False,
                head_mask: torch.Tensor | None = None):
        """x (B, T, D) -> (B, T, D), or (B, 1, D) for the last query only (a forecast reads only
        the last position; the keys and values still come from every position).

        head_mask (H,) bool switches heads off: a head that is off adds nothing to the output
        projection, and with every head off the layer's attention adds nothing at all (its
        output bias belongs to the heads together)."""
        q, k, v = self.project(x)
        if last_only:
            # the last query sees every key, causal or not: no mask needed
            y = F.scaled_dot_product_attention(q[:, :, -1:], k, v)
            return self.output(y, head_mask), None
        p = self.dropout if self.training else 0.0
        if need_weights or p > 0.0:
            # explicit path: the same computation, but we keep the softmax weights to show them,
            # or drop some of them (the fused CPU kernel has no dropout; SDPA would fall back to
            # this same sequence of ops, with a mask built per call)
            att = (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))  # (B, H, T, T)
            if self.causal:
                T = att.size(-1)
                att = att.masked_fill(self.future[:T, :T], float("-inf"))
            weights = F.softmax(att, dim=-1)
            y = dropout(weights, p, True) @ v
        else:
            weights = None
            y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return self.output(y, head_mask), weights if need_weights else None

    def project(self, x: torch.Tensor, start: int = 0):
        """x (B, T, D) -> q, k, v (B, H, T, hs) of tokens at positions start..start+T-1."""
        B, T, D = x.shape
        H = self.n_heads
        # one view + permute instead of split + 3 transposes: q, k, v are (B, H, T, hs) views
        q, k, v = self.qkv(x).view(B, T, 3, H, D // H).permute(2, 0, 3, 1, 4).unbind(0)
        if self.rope:
            cos, sin = self.cos[start:start + T], self.sin[start:start + T]
            q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        return q, k, v

    def forward_shared(self, prefix: torch.Tensor, own: torch.Tensor, last_only: bool = False,
                       head_mask: torch.Tensor | None = None):
        """Causal attention over N windows that begin with the same S tokens: prefix (1, S, D)
        once, own (N, T, D) the tokens after it in each window. The prefix attends to itself with
        batch 1 (what follows cannot change it); each window's own tokens see the whole prefix
        and their own past. Returns (prefix output (1, S, D), or None with last_only: nothing
        reads it; own output (N, T, D), or (N, 1, D) for the last query only)."""
        N, T, _ = own.shape
        S = prefix.size(1)
        q_pre, k_pre, v_pre = self.project(prefix)
        q, k, v = self.project(own, start=S)
        k = torch.cat([k_pre.expand(N, -1, -1, -1), k], dim=2)            # (N, H, S + T, hs)
        v = torch.cat([v_pre.expand(N, -1, -1, -1), v], dim=2)
        if last_only:
            return None, self.output(F.scaled_dot_product_attention(q[:, :, -1:], k, v), head_mask)
        sees = ~self.future.new_ones(T, S + T).triu(S + 1)                # own token j sees keys 0..S+j
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=sees)
        y_pre = F.scaled_dot_product_attention(q_pre, k_pre, v_pre, is_causal=True)
        return self.output(y_pre, head_mask), self.output(y, head_mask)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """The query·key scores (B, H, T, T) before the softmax, scaled by 1/sqrt(head size);
        the future a causal query may not see is -inf. softmax(scores) is the attention."""
        T = x.size(1)
        q, k, _ = self.project(x)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))
        return att.masked_fill(self.future[:T, :T], float("-inf")) if self.causal else att

    def output(self, y: torch.Tensor, head_mask: torch.Tensor | None) -> torch.Tensor:
        """Per-head outputs (B, H, T, hs) -> (B, T, D) through the output projection."""
        B, H, T, hs = y.shape
        if head_mask is not None:
            if not head_mask.any():
                return torch.zeros(B, T, H * hs, dtype=y.dtype, device=y.device)
            y = y * head_mask.to(y.dtype).view(1, H, 1, 1)
        return self.resid_dropout(self.proj(y.transpose(1, 2).reshape(B, T, H * hs)))


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

    def forward(self, x, need_weights: bool = False, last_only: bool = False, head_mask=None):
        a, weights = self.attn(self.ln_1(x), need_weights, last_only, head_mask)
        x = (x[:, -1:] if last_only else x) + a
        x = x + self.mlp(self.ln_2(x))
        return x, weights

    def forward_shared(self, prefix, own, last_only: bool = False, head_mask=None):
        """The block over windows that share their first tokens (see CausalSelfAttention
        .forward_shared): (prefix (1, S, D) or None with last_only, own (N, T or 1, D))."""
        a_pre, a = self.attn.forward_shared(self.ln_1(prefix), self.ln_1(own), last_only, head_mask)
        own = (own[:, -1:] if last_only else own) + a
        own = own + self.mlp(self.ln_2(own))
        if a_pre is not None:
            prefix = prefix + a_pre
            prefix = prefix + self.mlp(self.ln_2(prefix))
        return (None if last_only else prefix), own


class PatchForecaster(nn.Module):
    """What every rung shares: pad, normalize, cut into patches, and the loss."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config

    def patchify(self, x: torch.Tensor, observed: torch.Tensor | None = None, stats=None):
        """(B, L) raw series -> normalized patches (B, N, P), mask (B, N, P), loc (B, 1), scale (B, 1).

        Any L up to the context length: the start is padded to whole patches. observed (B, L),
        1 for data and 0 for padding, marks padding the caller added itself. Padded values are 0
        after normalization (the mean) and never count in loc and scale. stats (loc, scale):
        normalize by these instead of x's own (see window_stats).
        """
        P = self.config.patch_size
        if x.dim() != 2:
            raise ValueError(f"expected a (batch, length) tensor, got shape {tuple(x.shape)}")
        L = x.size(1)
        if L < 1 or L > self.config.context_length:
            raise ValueError(f"series length {L} must be between 1 and the context length "
                             f"{self.config.context_length}")
        observed = torch.ones_like(x) if observed is None else observed.to(x.dtype)
        pad = -L % P
        if pad:
            x, observed = F.pad(x, (pad, 0)), F.pad(observed, (pad, 0))
        loc, scale = stats if stats is not None else window_stats(x, observed)
        B, N = x.size(0), x.size(1) // P
        patches = ((x - loc) / scale * observed).view(B, N, P)
        return patches, observed.view(B, N, P), loc, scale

    def forward(self, x: torch.Tensor, need_attention: bool = False,
                observed: torch.Tensor | None = None,
                head_mask: torch.Tensor | None = None) -> Prediction:
        """head_mask (n_layers, n_heads) bool, True = on: a forward pass with some heads
        switched off (an ablation), leaving the weights as they are."""
        patches, mask, loc, scale = self.patchify(x, observed)
        self.check_head_mask(head_mask)
        mu, sigma, attention = self.predict(patches, mask, need_attention, head_mask)
        return Prediction(mu, sigma, loc, scale, attention if need_attention else None)

    def predict(self, patches, mask, need_attention, head_mask=None, lag=None):
        """patches, mask (B, N, P) -> mu, sigma (or None) (B, N, P) and the attention per layer.
        lag: the season's lag the seasonal patches read (default: found in each window)."""
        raise NotImplementedError

    @property
    def head_grid(self) -> tuple[int, int]:
        """(layers, heads per layer) of attention this rung has; (0, 0) for the linear rung."""
        return 0, 0

    def check_head_mask(self, head_mask) -> None:
        if head_mask is not None and tuple(head_mask.shape) != self.head_grid:
            raise ValueError(f"head_mask must have shape {self.head_grid} (layers, heads), "
                             f"got {tuple(head_mask.shape)}")

    def hidden_states(self, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """The states between the patch cut and the head, in order, each (B, N, D): what the
        Overview's pipeline draws and what a probe reads. Empty for the linear rung."""
        return []

    def predict_next(self, x: torch.Tensor, head_mask: torch.Tensor | None = None, lag=None):
        """The prediction of the patch after x (B, L): mu, sigma (or None) (B, P), loc, scale (B, 1).
        What a forecast step needs; the transformers compute only the last position's output.
        lag: the season's lag (see predict)."""
        patches, mask, loc, scale = self.patchify(x)
        self.check_head_mask(head_mask)
        mu, sigma, _ = self.predict(patches, mask, False, head_mask, lag)
        return mu[:, -1], None if sigma is None else sigma[:, -1], loc, scale

    def predict_next_shared(self, prefix: torch.Tensor, own: torch.Tensor, loc: torch.Tensor,
                            scale: torch.Tensor, head_mask: torch.Tensor | None = None, lag=None):
        """The prediction of the patch after each of N windows that begin with the same values:
        prefix (1, S) shared, own (N, T) each window's own last values (whole patches), every
        window normalized by the same loc and scale (1, 1), and reading the same season's lag (default:
        the first window's). Returns mu, sigma (or None) (N, P).
        A forecast's sample paths are such windows: the context, then each path's own patches.
        Here the windows simply run whole; the transformers run the prefix only once."""
        x = torch.cat([prefix.expand(own.size(0), -1), own], dim=1)
        patches, mask, _, _ = self.patchify(x, stats=(loc, scale))
        if self.config.seasonal_patch and lag is None:     # like loc and scale: the first window's
            lag = self.season_lag(patches[:1], mask[:1])
        mu, sigma, _ = self.predict(patches, mask, False, head_mask, lag)
        return mu[:, -1], None if sigma is None else sigma[:, -1]

    def season_lag(self, patches: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B,) the season's lag in each window (patches, mask (B, N, P)), by this model's config."""
        return seasonal_lag(patches, mask, self.config.season_slack, self.config.short_seasons)

    def seasons_averaged(self, patches: torch.Tensor, mask: torch.Tensor, lag: torch.Tensor) -> torch.Tensor:
        """(B, N) how many seasons each token's seasonal patch averages (config.season_cycles;
        with choose_cycles, the number it chose)."""
        return seasonal_patches(patches, mask, lag, level=self.config.seasonal_level,
                                cycles=self.config.season_cycles, choose=self.config.choose_cycles,
                                short=self.config.short_seasons, with_choice=True)[2]

    def season_inputs(self, patches, mask, before=None, lag=None):
        """With config.seasonal_patch, each token's seasonal patch and its mask (B, N, P): the values
        one season before the patch it predicts (see seasonal_patches), else None. before, lag: see
        embed_input."""
        if not self.config.seasonal_patch:
            return None
        N = patches.size(1)
        if before is not None:
            patches, mask = with_before(patches, mask, before)
        if lag is None:
            lag = self.season_lag(patches, mask)
        return seasonal_patches(patches, mask, lag, level=self.config.seasonal_level,
                                slack=self.config.season_slack, cycles=self.config.season_cycles,
                                choose=self.config.choose_cycles, short=self.config.short_seasons, last=N)

    def embed_input(self, patches, mask, before=None, lag=None, season=None):
        """The embedding's input: the patch, and with config.input_mask its padding mask too.
        With config.previous_patch, each token also reads the input of the patch before it, so a
        flip that falls on a patch boundary is visible inside one token. With
        config.seasonal_patch, it also reads its seasonal patch (season: see season_inputs).
        before (patches, mask) (1 or B, S, P): the window's patches before these (default: none;
        the model sees padding there). lag (B,) or (1,): the season's lag, found in the window
        (before and patches) where not given."""
        read = lambda p, m: torch.cat([p, m], dim=-1) if self.config.input_mask else p
        inputs = [read(patches, mask)]
        if self.config.previous_patch:
            if before is None:
                first = torch.zeros_like(inputs[0][:, :1])
            else:
                first = read(before[0][:, -1:], before[1][:, -1:]).expand(patches.size(0), -1, -1)
            inputs.append(torch.cat([first, inputs[0][:, :-1]], dim=1))
        if self.config.seasonal_patch:
            inputs.append(read(*(season or self.season_inputs(patches, mask, before, lag))))
        return torch.cat(inputs, dim=-1)

    def with_season(self, mu, h, season):
        """mu (B, T, P) plus each token's gate (a number read from its state h (B, T, D)) times its
        seasonal patch: how much of the forecast is a copy of the values one season back. A
        gate of zero ignores them; the gates start at zero. Without the switch, mu."""
        if season is None:
            return mu
        return mu + self.season_gate(h) * season[0][:, -h.size(1):]

    def season_gates(self, x: torch.Tensor) -> torch.Tensor | None:
        """(B, N) each token's seasonal gate for windows x (B, L): how much of its forecast copies
        the values one season back (see with_season); None without config.seasonal_patch."""
        return None

    @property
    def embed_width(self) -> int:
        one = self.config.patch_size * (2 if self.config.input_mask else 1)
        return one * (1 + self.config.previous_patch + self.config.seasonal_patch)

    def loss(self, pred: Prediction, y: torch.Tensor, nll_beta: float = 0.0) -> torch.Tensor:
        """Next-patch loss in normalized space: MSE, or Gaussian NLL where there is a sigma.

        y (B, L) is the input shifted one patch ahead: its patch n is the target of position n.
        nll_beta > 0 weights each value's NLL by sigma^(2 beta), held constant (beta-NLL): plain NLL
        scales the pull on mu by 1/sigma^2, so a model can settle for a wide sigma on a hard shape
        (a square wave's flips) instead of fitting it; beta 1 gives mu the gradient of MSE.
        """
        target = ((y - pred.loc) / pred.scale).view_as(pred.mu)
        # a near-constant input (a short flat stretch) has a tiny scale, and a jump after it
        # would be 1e5 scales away: no model can predict it, and its loss would swamp the batch
        target = target.clamp(-TARGET_CLIP, TARGET_CLIP)
        if pred.sigma is None:
            return F.mse_loss(pred.mu, target)
        nll = gaussian_nll(pred.mu, pred.sigma, target)
        if nll_beta:
            nll = nll * pred.sigma.detach() ** (2 * nll_beta)
        return nll.mean()

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)


def window_stats(x: torch.Tensor, observed: torch.Tensor | None = None):
    """Instance normalization's loc and scale (B, 1) of x (B, L): mean and std (+eps) of the
    values that are observed (all of them without a mask)."""
    observed = torch.ones_like(x) if observed is None else observed
    count = observed.sum(dim=1, keepdim=True).clamp_min(1.0)
    loc = (x * observed).sum(dim=1, keepdim=True) / count
    var = (((x - loc) * observed) ** 2).sum(dim=1, keepdim=True) / count
    return loc, var.sqrt() + NORM_EPS


def seasonal_lag(patches: torch.Tensor, mask: torch.Tensor, slack: float = 0.0,
                 short: bool = False) -> torch.Tensor:
    """(B,) for each window (patches, mask (B, N, P)): the lag L, at least one patch and at most
    half the observed values, at which the window best repeats itself: the highest correlation
    between its values and those L earlier, after a straight line through it is taken out (a
    trend would make every lag look alike). Values one lag before a patch then forecast it, as
    seasonal naive does with a known season. A season shorter than a patch gives its smallest
    multiple that is a patch or longer (7 -> 35 with patches of 32), and a period that is not a
    whole number of values a multiple near one. Nothing repeats (noise, a trend): the lag is one
    patch, and the seasonal patch is the token's own.
    slack: a shorter peak also wins when its correlation is within this share of the best one
    (config.season_slack): a yearly season beats an irregular cycle that happened to line up
    once (El Niño's 11 years), at the cost of a long season that a short one nearly matches.
    short: a season shorter than a patch is its own lag (7, not 35), where it is a true peak
    (config.short_seasons; seasonal_patches then repeats its last cycle across the patch)."""
    B, N, P = patches.shape
    x, m = patches.reshape(B, N * P).double(), mask.reshape(B, N * P).double()
    t = torch.arange(N * P, dtype=x.dtype, device=x.device).expand(B, -1)
    count = m.sum(1, keepdim=True).clamp_min(1.0)
    t_mean = (t * m).sum(1, keepdim=True) / count
    dt = (t - t_mean) * m
    slope = (dt * x).sum(1, keepdim=True) / (dt * dt).sum(1, keepdim=True).clamp_min(1e-12)
    x_mean = (x * m).sum(1, keepdim=True) / count
    spread = (((x - x_mean) * m) ** 2).sum(1, keepdim=True)
    x = (x - x_mean - slope * (t - t_mean)) * m
    n_fft = 2 * N * P
    f = lambda a: torch.fft.rfft(a, n=n_fft)
    lagged = lambda a, b: torch.fft.irfft(f(a) * f(b).conj(), n=n_fft)[:, :N * P]  # [L]: sum a[t] b[t-L]
    together = lagged(x, x)
    energy_late, energy_early = lagged(x * x, m), lagged(m, x * x)
    corr = together / (energy_late * energy_early).sqrt().clamp_min(1e-12)
    lags = torch.arange(N * P, device=x.device)
    varies = together[:, :1] > 1e-6 * spread           # a straight line leaves only rounding errors
    longest = (count / 2).floor()
    shortest = 2 if short else P
    allowed = (lags >= shortest) & (lags <= longest) & varies             # (B, N * P)
    # a peak: the highest lag within 2 either side (looking 2 past the longest lag allowed, so
    # that a season of exactly half the window counts and a rising edge does not). Lag P counts
    # when the correlation falls after it: nothing repeats better than the nearest past (a random
    # walk's correlation only falls), or a season shorter than P, whose true peak is below it.
    peak = is_peak(corr, (lags >= P) & (lags <= longest + 2) & varies) & allowed
    seen_below = max(min(shortest - 1, P - 2), 1)      # a true peak also tops the lags just below it
    true_peak = is_peak(corr, (lags >= seen_below) & (lags <= longest + 2) & varies) & allowed
    if short:      # below a patch only true peaks that rise clearly above the dip before them:
        # a falling edge or a wiggle there is any smooth series
        dip = corr.masked_fill(lags < 1, 2.0).cummin(dim=1).values
        rises = corr - dip >= SHORT_SEASON_RISE
        peak = peak | (true_peak & (lags < P) & rises)
        true_peak = true_peak & ((lags >= P) | rises)
    # every multiple of a season correlates about as well, up to sampling noise (its standard
    # error is about (1 - r^2) / sqrt(pairs)): take the shortest peak within 2 standard errors
    # of the best one, or within the slack where it is a true peak (a season of 30 peaks at 60,
    # lag 32 is only its falling edge)
    best = corr.masked_fill(~peak, -2.0).max(dim=1, keepdim=True).values
    tolerance = 0.01 + 2 * (1 - best.clamp(-1, 1) ** 2) / (count / 2).sqrt()
    within_slack = corr >= best - tolerance - slack * best.clamp_min(0)
    chosen = (peak & (corr >= best - tolerance)) | (true_peak & within_slack)
    lag = chosen.to(torch.int8).argmax(dim=1)                             # the first such lag
    return torch.where(chosen.any(1), lag, torch.full_like(lag, P))


def is_peak(corr: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """(B, L) where corr is the highest of the seen lags within 2 either side."""
    corr = corr.masked_fill(~seen, -2.0)
    return seen & (corr >= F.max_pool1d(corr[:, None], 5, stride=1, padding=2)[:, 0])


def seasonal_patches(patches: torch.Tensor, mask: torch.Tensor, lag: torch.Tensor | None = None,
                     level: bool = False, slack: float = 0.0, cycles: int = 1, choose: bool = False,
                     short: bool = False, last: int | None = None, with_choice: bool = False):
    """For each token of a window (patches, mask (B, N, P)), the values one lag before the patch
    it predicts, and their mask (B, N, P): token n reads the values at positions (n + 1) P - L to
    (n + 2) P - L - 1, all before its target since L >= P (a lag shorter than a patch, from
    short_seasons: the last L values before its target, repeated). Before the window's start they are
    padding. lag (B,) or (1,) (default: seasonal_lag of the window, with this slack).
    level: shift them by how far the level moved in a season: the mean of the token's own patch
    minus the mean of the values one lag before it. A season copied across a trend or a level
    shift then starts where the series is now, not where it was a season ago.
    cycles: the mean of the copies 1, 2, ... cycles lags back (each moved to the level with
    `level`), where they are inside the window: one noisy cycle's noise averages out, as a
    classical forecaster averages a season over many cycles.
    choose: each token takes the mean of the first k copies (k from 1 to cycles) that forecast
    its recent patches best (recent_best): a season that repeats exactly is averaged over many
    cycles, one that just changed (a level shift, a growing amplitude) is copied from the last.
    last: only the last tokens' seasonal patches (B, last, P), e.g. a forecast path's own tokens
    after a shared context: the same values, less work.
    with_choice: also return how many seasons each token averaged (B, N) (cycles everywhere
    without `choose`), what the Attention page shows."""
    B, N, P = patches.shape
    lag = seasonal_lag(patches, mask, slack, short) if lag is None else lag.to(patches.device).expand(B)
    mean = lambda v, m: (v * m).sum(-1, keepdim=True) / m.sum(-1, keepdim=True).clamp_min(1.0)

    # only the last `last` tokens are wanted (and, to choose, the CHOICE_TOKENS tokens before them)
    start = 0 if last is None else max(0, N - last - (CHOICE_TOKENS if choose and cycles > 1 else 0))
    own, own_mask, n = patches[:, start:], mask[:, start:], N - start
    position = torch.arange(start * P, N * P, device=patches.device)
    # a season shorter than the patch repeats its last cycle: value j of the patch is copied from
    # j // lag + 1 lags back (just 1 lag for a season of a patch or longer)
    cycles_back = (position % P)[None] // lag[:, None] + 1                                 # (B, n * P)

    def back(offset, k):        # the values (and mask) at each position + offset - k seasons
        source = position + offset - (cycles_back + k - 1) * lag[:, None]                # (B, n * P)
        inside = source >= 0
        source = source.clamp_min(0)
        take = lambda a: (a.reshape(B, N * P).gather(1, source) * inside).view(B, n, P)
        return take(patches), take(mask)

    total, count = torch.zeros_like(own), torch.zeros_like(own_mask)
    means, seens = [], []           # the mean of the first k copies, k = 1 .. cycles
    own_level = mean(own, own_mask)
    for k in range(1, cycles + 1):
        values, seen = back(P, k)
        if level:
            before, before_seen = back(0, k)      # k lags before the token's own patch
            both = (own_mask.amax(-1, keepdim=True) * before_seen.amax(-1, keepdim=True)) > 0
            moved = (own_level - mean(before, before_seen)) * both
            # over a season shorter than the patch, value j came from further back the larger
            # j is: the level moved in proportion (1 for a season of a patch or longer)
            distance = (cycles_back + k - 1).view(B, n, P).float()
            values = (values + moved * distance / distance.mean(-1, keepdim=True)) * seen
        total, count = total + values * seen, count + seen
        means.append(total / count.clamp_min(1.0))
        seens.append((count > 0).to(mask.dtype))
    if not choose or cycles == 1:
        averaged = torch.full((B, n), cycles, device=patches.device)
        return (means[-1], seens[-1], averaged) if with_choice else (means[-1], seens[-1])
    pick = recent_best(torch.stack(means), torch.stack(seens), own, own_mask)       # (B, n)
    take = lambda a: torch.stack(a).gather(0, pick[None, ..., None].expand(1, B, n, P))[0]
    kept = n if last is None else min(last, n)
    values, seen = take(means)[:, -kept:], take(seens)[:, -kept:]
    return (values, seen, pick[:, -kept:] + 1) if with_choice else (values, seen)


def recent_best(candidates: torch.Tensor, seen: torch.Tensor, patches: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
    """(B, N) for each token, which of the candidate seasonal patches (K, B, N, P) forecast the
    window's patches best over the CHOICE_TOKENS tokens before it: the lowest mean absolute error
    against the patches they predicted, which are all before the token's target (so training sees
    the same choice a forecast makes). The first candidate wins ties and where there is nothing
    to judge by yet."""
    K, B, N, P = candidates.shape
    target, target_seen = patches[:, 1:], mask[:, 1:]                 # token n predicts patch n + 1
    both = seen[:, :, :-1] * target_seen                               # (K, B, N - 1, P)
    error = ((candidates[:, :, :-1] - target).abs() * both).sum(-1)    # (K, B, N - 1)
    judged = both.sum(-1)
    # token n's error: the sum over tokens n - CHOICE_TOKENS .. n - 1 (cumulative sums, shifted by one)
    cumulative = lambda a: F.pad(a.cumsum(-1), (1, 0))                 # (K, B, N): sum of tokens < n
    window = lambda c: c - F.pad(c, (CHOICE_TOKENS, 0))[..., :N]
    error, judged = window(cumulative(error)), window(cumulative(judged))
    mean_error = torch.where(judged > 0, error / judged.clamp_min(1.0), torch.zeros_like(error))
    return mean_error.argmin(dim=0)


def make_season_gate(config: ModelConfig) -> nn.Linear | None:
    """Each token's seasonal gate: one number read from its state (see with_season)."""
    return nn.Linear(config.d_model, 1) if config.seasonal_patch else None


def zero_season_gate(model) -> None:
    """Start the gates at zero: the model first learns whether to copy the season at all."""
    if model.season_gate is not None:
        nn.init.zeros_(model.season_gate.weight)
        nn.init.zeros_(model.season_gate.bias)


def with_before(patches, mask, before):
    """patches, mask (B, N, P) after the window's earlier ones, before (patches, mask) (1 or B, S, P)."""
    B = patches.size(0)
    return (torch.cat([before[0].expand(B, -1, -1), patches], dim=1),
            torch.cat([before[1].expand(B, -1, -1), mask], dim=1))


def positions(pos: nn.Embedding, n: int, following: int = 0) -> torch.Tensor:
    """Position embeddings of n patches, counted back from the newest: the last input patch
    always gets the last position, so the position a forecast reads is the same at any input
    length (as left-padding does in TimesFM). following: patches after these in the window."""
    end = pos.num_embeddings - following
    return pos.weight[end - n:end]


@contextmanager
def eval_mode(model: nn.Module):
    """Run a block in eval mode and put the model back as it was (a shared eval-mode model is
    never touched)."""
    was_training = model.training
    if was_training:
        model.eval()
    try:
        yield model
    finally:
        if was_training:
            model.train()


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

    def predict(self, patches, mask, need_attention, head_mask=None, lag=None):
        return self.linear(patches), None, []


class SingleHeadAttention(PatchForecaster):
    """Rung 2: embed each patch, one causal attention head over them, a linear head."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.embed = nn.Linear(self.embed_width, config.d_model)
        self.attn = CausalSelfAttention(config, n_heads=1)
        self.head = nn.Linear(config.d_model, config.patch_size)
        self.season_gate = make_season_gate(config)
        self.apply(self._init_weights)
        zero_season_gate(self)

    @property
    def head_grid(self) -> tuple[int, int]:
        return 1, 1

    def states(self, patches, mask, need_attention=False, head_mask=None, lag=None):
        """-> the attention's output (B, N, D), its weights, the seasonal patches (or None)."""
        season = self.season_inputs(patches, mask, lag=lag)
        x = self.embed(self.embed_input(patches, mask, season=season))   # (B, N, D)
        x, weights = self.attn(x, need_attention, head_mask=None if head_mask is None else head_mask[0])
        return x, weights, season

    def predict(self, patches, mask, need_attention, head_mask=None, lag=None):
        x, weights, season = self.states(patches, mask, need_attention, head_mask, lag)
        return self.with_season(self.head(x), x, season), None, [weights]

    def season_gates(self, x):
        if self.season_gate is None:
            return None
        h, _, _ = self.states(*self.patchify(x)[:2])
        return self.season_gate(h)[..., 0]

    def hidden_states(self, x):
        patches, mask, _, _ = self.patchify(x)
        h = self.embed(self.embed_input(patches, mask))
        return [("embeddings", h), ("attention", self.attn(h)[0])]

    def attention_scores(self, x: torch.Tensor, layer: int = 0) -> torch.Tensor:
        """(B, 1, N, N) query·key scores before the softmax of the one head."""
        patches, mask, _, _ = self.patchify(x)
        return self.attn.scores(self.embed(self.embed_input(patches, mask)))


class Transformer(PatchForecaster):
    """Rung 3: positions + pre-norm blocks (multi-head attention, GELU FFN, residuals)."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.embed = nn.Linear(self.embed_width, config.d_model)
        # learned positions are added to the embedding; rotary ones live in the attention
        learned = config.position in ("learned", "both")
        self.pos = nn.Embedding(config.n_patches, config.d_model) if learned else None
        self.drop = Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(config.d_model)
        self.head = self.make_head()
        self.season_gate = make_season_gate(config)
        self.apply(self._init_weights)
        zero_season_gate(self)
        # GPT-2 style: scale the residual projections by depth
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layers))

    def make_head(self) -> nn.Module:
        return nn.Linear(self.config.d_model, self.config.patch_size)

    def embed_patches(self, patches, mask, following: int = 0, before=None, season=None):
        """(B, N, P) patches and mask -> (B, N, D) token embeddings, positions included
        (following: patches after these in the window; before, season: see embed_input)."""
        h = self.embed(self.embed_input(patches, mask, before, season=season))
        if self.pos is not None:
            h = h + positions(self.pos, patches.size(1), following)
        return self.drop(h)

    @property
    def head_grid(self) -> tuple[int, int]:
        return self.config.n_layers, self.config.n_heads

    def encode(self, patches, mask, need_attention, last_only: bool = False, head_mask=None, lag=None):
        """-> final-norm states (B, N, D) (or (B, 1, D) with last_only), the attention per layer,
        and the seasonal patches (or None)."""
        season = self.season_inputs(patches, mask, lag=lag)
        x = self.embed_patches(patches, mask, season=season)                 # (B, N, D)
        attention = []
        for i, block in enumerate(self.blocks):
            x, weights = block(x, need_attention, last_only and i == len(self.blocks) - 1,
                               None if head_mask is None else head_mask[i])
            attention.append(weights)
        return self.ln_f(x), attention, season

    def season_gates(self, x):
        if self.season_gate is None:
            return None
        h, _, _ = self.encode(*self.patchify(x)[:2], False)
        return self.season_gate(h)[..., 0]

    def hidden_states(self, x):
        patches, mask, _, _ = self.patchify(x)
        h = self.embed_patches(patches, mask)
        states = [("embeddings", h)]
        for i, block in enumerate(self.blocks):
            h, _ = block(h)
            states.append((f"block {i}", h))
        return states

    def attention_scores(self, x: torch.Tensor, layer: int) -> torch.Tensor:
        """(B, H, N, N) query·key scores of one layer before the softmax."""
        states = self.hidden_states(x)               # embeddings, block 0, ...: block i reads states[i]
        block = self.blocks[layer]
        return block.attn.scores(block.ln_1(states[layer][1]))

    def read_out(self, h, season=None):
        """Final-norm states (B, T, D) -> mu (B, T, P) and sigma (or None). season: the
        seasonal patches of the same tokens (or of a window that ends with them)."""
        return self.with_season(self.head(h), h, season), None

    def predict(self, patches, mask, need_attention, head_mask=None, lag=None):
        x, attention, season = self.encode(patches, mask, need_attention, head_mask=head_mask, lag=lag)
        mu, sigma = self.read_out(x, season)
        return mu, sigma, attention

    def predict_next(self, x: torch.Tensor, head_mask: torch.Tensor | None = None, lag=None):
        """As PatchForecaster.predict_next, about a quarter cheaper: the last block runs its
        attention output, FFN and head for the last position only (tests check the numbers)."""
        patches, mask, loc, scale = self.patchify(x)
        self.check_head_mask(head_mask)
        h, _, season = self.encode(patches, mask, False, last_only=True, head_mask=head_mask, lag=lag)
        mu, sigma = self.read_out(h, season)                                # (B, 1, P)
        return mu[:, 0], None if sigma is None else sigma[:, 0], loc, scale

    def predict_next_shared(self, prefix, own, loc, scale, head_mask=None, lag=None):
        """As PatchForecaster.predict_next_shared, with the shared prefix's tokens run once
        (batch 1) and each window's own tokens attending to them: a forecast's second patch runs
        one token per path instead of a whole window (tests check the numbers)."""
        if not self.config.causal:      # every token would see the windows' own ends
            return super().predict_next_shared(prefix, own, loc, scale, head_mask, lag)
        self.check_head_mask(head_mask)
        if prefix.size(1) + own.size(1) > self.config.context_length:
            raise ValueError(f"windows of {prefix.size(1)} + {own.size(1)} values are longer than "
                             f"the context length {self.config.context_length}")
        pre_patches, pre_mask, _, _ = self.patchify(prefix, stats=(loc, scale))
        own_patches, own_mask, _, _ = self.patchify(own, stats=(loc, scale))
        if self.config.seasonal_patch and lag is None:    # the first (noise-free) window's
            lag = self.season_lag(torch.cat([pre_patches, own_patches[:1]], dim=1),
                                  torch.cat([pre_mask, own_mask[:1]], dim=1))
        before = (pre_patches, pre_mask)
        x_pre = self.embed_patches(pre_patches, pre_mask, following=own_patches.size(1),
                                   season=self.season_inputs(pre_patches, pre_mask, lag=lag))
        season = self.season_inputs(own_patches, own_mask, before, lag)
        x = self.embed_patches(own_patches, own_mask, before=before, season=season)
        for i, block in enumerate(self.blocks):
            x_pre, x = block.forward_shared(x_pre, x, i == len(self.blocks) - 1,
                                            None if head_mask is None else head_mask[i])
        mu, sigma = self.read_out(self.ln_f(x), season)                  # (N, 1, P)
        return mu[:, 0], None if sigma is None else sigma[:, 0]


class NanoTST(Transformer):
    """Rung 4: the transformer with a Gaussian head; trained with Gaussian NLL."""

    def make_head(self) -> nn.Module:
        return nn.Linear(self.config.d_model, 2 * self.config.patch_size)

    def read_out(self, h, season=None):
        mu, raw_sigma = self.head(h).chunk(2, dim=-1)           # (B, T, P) each
        return self.with_season(mu, h, season), F.softplus(raw_sigma) + self.config.min_sigma


LADDER = {
    "linear": LinearBaseline,
    "attention": SingleHeadAttention,
    "transformer": Transformer,
    "nanotst": NanoTST,
}


def build_model(config: ModelConfig) -> PatchForecaster:
    return LADDER[config.rung](config)


# the config fields no weight depends on
WEIGHTLESS = ("dropout", "season_slack", "season_cycles", "choose_cycles", "short_seasons", "mirror")
FORECAST_SETTINGS = WEIGHTLESS[1:]  # of those, how a model forecasts: how it finds and reads its
                                    # seasonal patch, and whether it also forecasts upside down
FORECAST_ONLY = ("mirror",)         # of those, what training never reads


def with_settings(model: PatchForecaster, **changes) -> PatchForecaster:
    """The same weights in a model whose config has these WEIGHTLESS fields changed: dropout (a
    training setting), how the seasonal patch is found and read (season_slack, season_cycles,
    choose_cycles, short_seasons) or whether forecasts mirror (mirror), so a run that continues
    from a checkpoint may change them (the rest of the config may not)."""
    if set(changes) - set(WEIGHTLESS):
        raise ValueError(f"only {', '.join(WEIGHTLESS)} can change without new weights, not "
                         f"{', '.join(sorted(set(changes) - set(WEIGHTLESS)))}")
    config = replace(model.config, **changes)
    if config == model.config:
        return model
    new = build_model(config)
    new.load_state_dict(model.state_dict())
    return new


def with_inputs(model: PatchForecaster, previous_patch: bool = False,
                seasonal_patch: bool = False, seasonal_level: bool = False) -> PatchForecaster:
    """The same weights in a model whose embedding also reads the patch before each token
    (config.previous_patch) and/or the values one season before the patch it predicts
    (config.seasonal_patch), the new inputs' weights zero: it forecasts exactly as before and
    learns to use them as it trains. seasonal_level (which implies seasonal_patch) shifts the
    seasonal patch to the token's level; it adds no weight. An input the model has stays; a model
    without an embedding is returned as it is."""
    old = model.config
    wanted = replace(old, previous_patch=old.previous_patch or previous_patch,
                     seasonal_patch=old.seasonal_patch or seasonal_patch or seasonal_level,
                     seasonal_level=old.seasonal_level or seasonal_level)
    if wanted == old or "embed.weight" not in model.state_dict():
        return model
    new = build_model(wanted)
    state = dict(model.state_dict())
    columns = lambda c: ["current"] + ["previous"] * c.previous_patch + ["seasonal"] * c.seasonal_patch
    old_blocks = dict(zip(columns(old), state["embed.weight"].chunk(len(columns(old)), dim=1)))
    state["embed.weight"] = torch.cat([old_blocks.get(name, torch.zeros_like(old_blocks["current"]))
                                       for name in columns(wanted)], dim=1)
    for name, value in new.state_dict().items():              # a new seasonal gate: zero
        state.setdefault(name, torch.zeros_like(value))
    new.load_state_dict(state)
    return new


def with_position(model: PatchForecaster, position: str) -> PatchForecaster:
    """The same weights in a model that encodes positions another way, where they fit. Learned
    and "both" share every weight (rotary positions add none); a rotary model going to "both"
    gets a learned table of zeros, so it forecasts exactly as before and learns the table as it
    trains. Raises ValueError where a weight would be lost (a learned table, going to rope)."""
    if position == model.config.position:
        return model
    new = build_model(replace(model.config, position=position))
    state, wanted = dict(model.state_dict()), new.state_dict()
    if model.config.position == "rope" and "pos.weight" in wanted and "pos.weight" not in state:
        state["pos.weight"] = torch.zeros_like(wanted["pos.weight"])
    have, need = set(state), set(wanted)
    if have != need:
        raise ValueError(f"a {model.config.position!r} model's weights do not fit position={position!r} "
                         f"({', '.join(sorted(have ^ need))} would be lost or missing)")
    new.load_state_dict(state)
    return new
