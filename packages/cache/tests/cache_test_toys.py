"""Toy transformers, helpers and an independent DBCache reference for the BlockAdapter tests.

Imported by ``test_block_adapter*.py`` (``conftest.py`` puts this folder on ``sys.path``; the
tests run with ``--import-mode=importlib``, where sibling test modules cannot be imported).
"""

from __future__ import annotations

import torch

import ditkit_cache as dc

P = dc.ForwardPattern
STEPS = 12
NAMES = ("flux", "qwen_image", "wan")


# -- helpers ------------------------------------------------------------------------------------
def caching_config(name: str, **extra) -> dc.DBCacheConfig:
    """A config that caches some steps and computes others on each tiny model."""
    threshold = 0.1 if name == "wan" else 0.3
    fields = dict(Fn_compute_blocks=1, residual_diff_threshold=threshold, max_warmup_steps=2)
    fields.update(extra)
    return dc.DBCacheConfig(**fields)


def count_calls(modules) -> list[int]:
    """Attach a forward pre-hook to each module; the returned list counts their calls."""
    counts = [0] * len(modules)
    for index, module in enumerate(modules):

        def hook(_module, _args, index=index):
            counts[index] += 1

        module.register_forward_pre_hook(hook)
    return counts


def assert_uncached(transformer: torch.nn.Module) -> None:
    """No trace of the cache on the transformer or any submodule."""
    assert not hasattr(transformer, "_ditkit_cache")
    assert not hasattr(transformer, "_ditkit_patch_record")
    for path, module in transformer.named_modules():
        assert "forward" not in vars(module), f"instance forward left on {path or 'root'}"


def manual_adapter(pipe, name: str) -> dc.BlockAdapter:
    """The BlockAdapter a user would write by hand for each tiny pipeline."""
    t = pipe.transformer
    if name == "flux":  # the registry's layout: one merged list, the single blocks as a dummy
        return dc.BlockAdapter(
            pipe=pipe,
            transformer=t,
            blocks=torch.nn.ModuleList([*t.transformer_blocks, *t.single_transformer_blocks]),
            blocks_name="transformer_blocks",
            dummy_blocks_names=["single_transformer_blocks"],
            forward_pattern=P.Pattern_1,
        )
    if name == "qwen_image":
        return dc.BlockAdapter(
            pipe=pipe, transformer=t, blocks=t.transformer_blocks, forward_pattern=P.Pattern_1
        )
    return dc.BlockAdapter(pipe=pipe, transformer=t, blocks=t.blocks, forward_pattern=P.Pattern_2)


def model_cached_steps(diffs: dict[int, float], warmup: int, threshold: float, steps: int):
    """Warmup + threshold only (no limits): the steps DBCache must cache, and those it measures."""
    return [s for s in range(warmup, steps) if diffs[s] < threshold], list(range(warmup, steps))


# -- a toy diffusers-like transformer with a Pattern_0 list and a Pattern_3 list ------------------
DIM = 16


class ToyDualBlock(torch.nn.Module):
    """Pattern_0: takes and returns ``(hidden_states, encoder_hidden_states)``."""

    def __init__(self) -> None:
        super().__init__()
        self.ff = torch.nn.Linear(DIM, DIM)
        self.ctx = torch.nn.Linear(DIM, DIM)

    def forward(self, hidden_states, encoder_hidden_states, temb=None):
        h = hidden_states + 0.5 * torch.tanh(self.ff(hidden_states + temb))
        e = encoder_hidden_states + 0.5 * torch.tanh(
            self.ctx(encoder_hidden_states + h.mean(1, keepdim=True))
        )
        return h, e


class ToySingleBlock(torch.nn.Module):
    """Pattern_3: ``hidden_states -> hidden_states``."""

    def __init__(self) -> None:
        super().__init__()
        self.ff = torch.nn.Linear(DIM, DIM)

    def forward(self, hidden_states, temb=None):
        return hidden_states + 0.5 * torch.tanh(self.ff(hidden_states * (1 + temb)))


class ToyTransformer(torch.nn.Module):
    """3 dual-stream blocks (Pattern_0), then 5 single-stream blocks (Pattern_3)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.time_embed = torch.nn.Linear(1, DIM)
        self.transformer_blocks = torch.nn.ModuleList(ToyDualBlock() for _ in range(3))
        self.single_transformer_blocks = torch.nn.ModuleList(ToySingleBlock() for _ in range(5))
        self.proj_out = torch.nn.Linear(DIM, DIM)

    def embed(self, timestep):
        return torch.sin(self.time_embed(timestep.reshape(-1, 1, 1) / 1000.0))

    @staticmethod
    def mix(hidden_states, encoder_hidden_states):
        return hidden_states + encoder_hidden_states.mean(1, keepdim=True)

    def forward(self, hidden_states, encoder_hidden_states, timestep):
        temb = self.embed(timestep)
        for block in self.transformer_blocks:
            hidden_states, encoder_hidden_states = block(
                hidden_states, encoder_hidden_states, temb=temb
            )
        hidden_states = self.mix(hidden_states, encoder_hidden_states)
        for block in self.single_transformer_blocks:
            hidden_states = block(hidden_states, temb=temb)
        return self.proj_out(hidden_states)


def toy_request(forward, steps: int = STEPS, seed: int = 0) -> torch.Tensor:
    """A flow-matching-like loop: timesteps fall from 1000, the latents move a little each step."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 12, DIM, generator=generator)
    e = torch.randn(1, 6, DIM, generator=generator)
    for i in range(steps):
        t = torch.tensor([1000.0 * (1 - i / steps)])
        x = x - forward(x, e, t) / steps
    return x


class ReferenceDBCache:
    """DBCache for one block list, written from reference §3.2 (not from the engine)."""

    def __init__(self, blocks, pattern, Fn, Bn, threshold, warmup) -> None:
        self.blocks, self.pattern = list(blocks), pattern
        self.Fn, self.Bn, self.threshold, self.warmup = Fn, Bn, threshold, warmup
        self.step = -1
        self.prev_fn = self.bn_hidden = self.bn_encoder = None
        self.cached_steps: list[int] = []
        self.diffs: dict[int, float] = {}

    def _run(self, blocks, h, e, temb):
        for block in blocks:
            if self.pattern is P.Pattern_0:
                h, e = block(h, e, temb=temb)
            else:
                h = block(h, temb=temb)
        return h, e

    def __call__(self, h, e, temb):
        self.step += 1
        n = len(self.blocks)
        h0 = h
        h, e = self._run(self.blocks[: self.Fn], h, e, temb)
        residual = h - h0
        hit = False
        if self.step >= self.warmup and self.prev_fn is not None:
            mean_diff = (self.prev_fn - residual).abs().mean().item()
            mean_prev = self.prev_fn.abs().mean().item()
            self.diffs[self.step] = mean_diff / mean_prev
            hit = self.diffs[self.step] < self.threshold
        if hit:
            self.cached_steps.append(self.step)
            h = (h + self.bn_hidden).contiguous()
            if e is not None and self.pattern is P.Pattern_0:
                e = (e + self.bn_encoder).contiguous()
        else:
            self.prev_fn = residual
            h_fn, e_fn = h, e
            h, e = self._run(self.blocks[self.Fn : n - self.Bn], h, e, temb)
            h = h.contiguous()
            self.bn_hidden = h - h_fn
            if self.pattern is P.Pattern_0:
                e = e.contiguous()
                self.bn_encoder = e - e_fn
        return self._run(self.blocks[n - self.Bn :], h, e, temb)


DUAL = dict(Fn=1, Bn=0, threshold=0.25, warmup=2)
SINGLE = dict(Fn=2, Bn=1, threshold=0.12, warmup=3)


def toy_modifiers():
    def modifier(fields):
        return dc.ParamsModifier(
            cache_config=dc.DBCacheConfig().reset(
                Fn_compute_blocks=fields["Fn"],
                Bn_compute_blocks=fields["Bn"],
                residual_diff_threshold=fields["threshold"],
                max_warmup_steps=fields["warmup"],
            )
        )

    return [modifier(DUAL), modifier(SINGLE)]
