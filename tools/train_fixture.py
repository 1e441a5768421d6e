"""Train the fixture: a FluxPipeline (transformer + VAE) and a digit classifier on sklearn digits.

Stages (run all, or name some with ``--stages``), each resumable from ``--work``:

1. ``vae``: the AutoencoderKL, reconstruction + small KL, on the training split (32×32, gray
   replicated to RGB); then the latents' mean and std become ``shift_factor``/``scaling_factor``.
2. ``classifier``: the DigitClassifier on the same training split; scored on the held-out split.
3. ``transformer``: rectified flow matching (``x_t = (1-t) x0 + t ε``, target ``ε - x0``, ``t``
   logit-normal), prompts "a handwritten digit N" through the fixed random text encoders
   (10 % dropped to the empty prompt), EMA of the weights, TF32 matmuls on CUDA (``--bf16``
   for autocast). It stops at ``--max-minutes`` and checkpoints; the next run resumes (the
   step, the EMA, the optimizer).
4. ``evaluate``: samples every digit through the real FluxPipeline at 28 steps, scores them with
   the classifier, writes a sample grid, the loss curve and ``metrics.json``.
5. ``export``: the shipped weights: EMA transformer (float16), VAE (float32, factors in the
   metadata), classifier (float32) into ``--export`` (default: the ditkit-testing package).
6. ``reference``: (CPU) the reference samples the package tests reproduce: one image per digit,
   28 steps, seed 0, from the exported weights; plus the model card's assets.

Usage (GPU machine or CPU; the CPU takes hours for the transformer)::

    python tools/train_fixture.py --work /tmp/fixture --max-minutes 7
    python tools/train_fixture.py --work /tmp/fixture --stages evaluate export
    python tools/train_fixture.py --work /tmp/fixture --stages reference --device cpu
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional

ROOT = Path(__file__).resolve().parent.parent
for package in ("interfaces", "testing"):
    sys.path.insert(0, str(ROOT / "packages" / package / "src"))

from ditkit_testing.fixture import classifier as classifier_module  # noqa: E402
from ditkit_testing.fixture import data, model  # noqa: E402

STAGES = ("vae", "classifier", "transformer", "evaluate", "export", "reference")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Small random affine jitter (±8°, ±1.5 px, ×0.92..1.08), images in [-1, 1]."""
    n, device = images.shape[0], images.device
    rand = torch.rand(n, 4, generator=generator, device=device) * 2 - 1
    angle = rand[:, 0] * math.radians(8)
    scale = 1 + rand[:, 1] * 0.08
    shift = rand[:, 2:] * (1.5 * 2 / images.shape[-1])
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = functional.affine_grid(theta, list(images.shape), align_corners=False)
    out = functional.grid_sample(images + 1, grid, align_corners=False, padding_mode="zeros")
    return out - 1


def save_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=1))


def load_json(path: Path, default: Any) -> Any:
    return json.loads(path.read_text()) if path.is_file() else default


# ----------------------------------------------------------------------------------------- vae
def train_vae(args: argparse.Namespace, device: torch.device) -> None:
    from safetensors.torch import save_file

    images, _ = data.load_digits_split("train")
    images = images.to(device).repeat(1, 3, 1, 1)
    vae = model.new_fixture_vae().to(device).train()
    optimizer = torch.optim.AdamW(vae.parameters(), lr=1e-3, weight_decay=0.0)
    generator = torch.Generator(device=device).manual_seed(1)
    steps = args.vae_steps
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 1e-3, total_steps=steps)
    for step in range(steps):
        index = torch.randint(len(images), (args.batch,), generator=generator, device=device)
        batch = augment(images[index], generator)
        posterior = vae.encode(batch).latent_dist
        recon = vae.decode(posterior.sample(generator=generator)).sample
        kl = posterior.kl().mean() / posterior.mean[0].numel()
        loss = functional.mse_loss(recon, batch) + args.kl_weight * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 500 == 0 or step == steps - 1:
            psnr = 10 * math.log10(4.0 / functional.mse_loss(recon, batch).item())
            log(f"vae step {step}: loss {loss.item():.5f} recon PSNR {psnr:.2f} dB kl {kl:.3f}")
    vae.eval()
    with torch.no_grad():
        latents = torch.cat([vae.encode(chunk).latent_dist.mean for chunk in images.split(256)])
        recon = torch.cat([vae.decode(chunk).sample for chunk in latents.split(256)])
    mse = functional.mse_loss(recon.clamp(-1, 1), images).item()
    shift, std = latents.mean().item(), latents.std().item()
    stats = {"recon_psnr_db": 10 * math.log10(4.0 / mse), "shift": shift, "std": std}
    log(f"vae done: {stats}")
    state = {k: v.detach().float().cpu().contiguous() for k, v in vae.state_dict().items()}
    metadata = {"scaling_factor": repr(1.0 / std), "shift_factor": repr(shift)}
    save_file(state, str(args.work / "vae.safetensors"), metadata=metadata)
    save_json(args.work / "vae.json", stats)


def load_trained_vae(args: argparse.Namespace, device: torch.device):
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = args.work / "vae.safetensors"
    vae = model.new_fixture_vae()
    vae.load_state_dict(load_file(str(path)), strict=True)
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata()
    vae.register_to_config(
        scaling_factor=float(meta["scaling_factor"]), shift_factor=float(meta["shift_factor"])
    )
    return vae.to(device).eval().requires_grad_(False)


# ---------------------------------------------------------------------------------- classifier
def train_classifier(args: argparse.Namespace, device: torch.device) -> None:
    from safetensors.torch import save_file

    images, labels = data.load_digits_split("train")
    test_images, test_labels = data.load_digits_split("test")
    images, labels = images.to(device), labels.to(device)
    torch.manual_seed(2)
    net = classifier_module.DigitClassifier().to(device).train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = args.classifier_steps
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 2e-3, total_steps=steps)
    generator = torch.Generator(device=device).manual_seed(3)
    for _ in range(steps):
        index = torch.randint(len(images), (128,), generator=generator, device=device)
        batch = augment(images[index], generator) * 0.5 + 0.5  # the classifier takes [0, 1]
        loss = functional.cross_entropy(net(batch), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    predicted = net.predict(test_images.to(device) * 0.5 + 0.5).cpu()
    accuracy = (predicted == test_labels).float().mean().item()
    train_accuracy = (net.predict(images * 0.5 + 0.5) == labels).float().mean().item()
    log(f"classifier: held-out accuracy {accuracy:.4f}, train {train_accuracy:.4f}")
    state = {k: v.detach().float().cpu().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(args.work / "classifier.safetensors"))
    save_json(
        args.work / "classifier.json",
        {"heldout_accuracy": accuracy, "train_accuracy": train_accuracy, "steps": steps},
    )


# --------------------------------------------------------------------------------- transformer
def prompt_embeddings(device: torch.device) -> dict[str, torch.Tensor]:
    """T5 sequence and CLIP pooled embeddings of the 10 prompts (rows 0..9) and "" (row 10)."""
    from diffusers import FluxPipeline

    pipe = FluxPipeline(scheduler=None, vae=None, transformer=None, **model.build_text_components())
    prompts = [*model.fixture_prompts(list(range(10))), ""]
    with torch.no_grad():
        embeds, pooled, text_ids = pipe.encode_prompt(
            prompts, prompt_2=None, device="cpu", max_sequence_length=model.MAX_SEQUENCE_LENGTH
        )
    tensors = {"embeds": embeds, "pooled": pooled, "text_ids": text_ids}
    return {name: tensor.to(device) for name, tensor in tensors.items()}


def train_transformer(args: argparse.Namespace, device: torch.device) -> None:
    from diffusers import FluxPipeline
    from safetensors.torch import load_file, save_file

    deadline = time.monotonic() + args.max_minutes * 60
    vae = load_trained_vae(args, device)
    images, labels = data.load_digits_split("train")
    images, labels = images.to(device).repeat(1, 3, 1, 1), labels.to(device)
    text = prompt_embeddings(device)
    img_ids = FluxPipeline._prepare_latent_image_ids(1, 8, 8, device, torch.float32)

    net = model.new_fixture_transformer().to(device).train()
    ema = model.new_fixture_transformer().to(device).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=0.01)
    state = load_json(args.work / "transformer.json", {"step": 0, "losses": []})
    if state["step"]:
        net.load_state_dict(load_file(str(args.work / "transformer_train.safetensors")))
        ema.load_state_dict(load_file(str(args.work / "transformer_ema.safetensors")))
        moments = load_file(str(args.work / "optimizer_moments.safetensors"))
        for name, parameter in net.named_parameters():
            optimizer.state[parameter] = {
                "step": torch.tensor(float(state["step"])),
                "exp_avg": moments[f"{name}.exp_avg"].float().to(device),
                "exp_avg_sq": moments[f"{name}.exp_avg_sq"].float().to(device),
            }
        log(f"resumed at step {state['step']}")
    else:
        ema.load_state_dict(net.state_dict())

    def lr_at(step: int) -> float:
        warm = min(1.0, (step + 1) / 500)
        progress = min(1.0, step / args.steps)
        return args.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    generator = torch.Generator(device=device).manual_seed(10_000 + state["step"])
    # bf16 autocast hit CUBLAS_STATUS_EXECUTION_FAILED in backward (H100, torch 2.11 cu13);
    # the model is small and launch-bound, so fp32 with TF32 matmuls costs little
    autocast = torch.autocast("cuda", torch.bfloat16, enabled=args.bf16 and device.type == "cuda")
    scale, shift = vae.config.scaling_factor, vae.config.shift_factor
    step, window, started = state["step"], [], time.monotonic()
    while step < args.steps and time.monotonic() < deadline:
        index = torch.randint(len(images), (args.batch,), generator=generator, device=device)
        with torch.no_grad():
            pixels = augment(images[index], generator)
            latents = vae.encode(pixels).latent_dist.sample(generator=generator)
            x0 = FluxPipeline._pack_latents((latents - shift) * scale, args.batch, 4, 16, 16)
            rows = labels[index].clone()
            rows[torch.rand(args.batch, generator=generator, device=device) < 0.1] = 10
            normal = torch.randn(args.batch, generator=generator, device=device)
            t = torch.where(
                torch.rand(args.batch, generator=generator, device=device) < 0.9,
                torch.sigmoid(normal),
                torch.rand(args.batch, generator=generator, device=device),
            )
            noise = torch.randn(x0.shape, generator=generator, device=device)
            xt = (1 - t[:, None, None]) * x0 + t[:, None, None] * noise
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        with autocast:
            prediction = net(
                hidden_states=xt,
                timestep=t,
                pooled_projections=text["pooled"][rows],
                encoder_hidden_states=text["embeds"][rows],
                txt_ids=text["text_ids"],
                img_ids=img_ids,
                return_dict=False,
            )[0]
        loss = functional.mse_loss(prediction.float(), noise - x0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        with torch.no_grad():
            decay = min(args.ema, (1 + step) / (10 + step))
            torch._foreach_lerp_(list(ema.parameters()), list(net.parameters()), 1 - decay)
        window.append(loss.detach())
        step += 1
        if step % 250 == 0:
            mean = torch.stack(window).mean().item()
            window.clear()
            state["losses"].append([step, mean])
            rate = (step - state["step"]) / (time.monotonic() - started)
            log(f"transformer step {step}: loss {mean:.4f} lr {lr_at(step):.2e} {rate:.1f} it/s")
    state["step"] = step
    save_file(
        {k: v.detach().float().cpu().contiguous() for k, v in net.state_dict().items()},
        str(args.work / "transformer_train.safetensors"),
    )
    save_file(
        {k: v.detach().float().cpu().contiguous() for k, v in ema.state_dict().items()},
        str(args.work / "transformer_ema.safetensors"),
    )
    moments = {}
    for name, parameter in net.named_parameters():
        slot = optimizer.state[parameter]
        moments[f"{name}.exp_avg"] = slot["exp_avg"].to(torch.bfloat16).cpu().contiguous()
        moments[f"{name}.exp_avg_sq"] = slot["exp_avg_sq"].to(torch.bfloat16).cpu().contiguous()
    save_file(moments, str(args.work / "optimizer_moments.safetensors"))
    save_json(args.work / "transformer.json", state)
    log(f"transformer checkpoint at step {step} of {args.steps}")


# ------------------------------------------------------------------------- evaluate and export
def export(args: argparse.Namespace) -> None:
    from safetensors.torch import load_file, save_file

    target = args.export
    target.mkdir(parents=True, exist_ok=True)
    ema = load_file(str(args.work / "transformer_ema.safetensors"))
    save_file(
        {k: v.to(torch.float16).contiguous() for k, v in ema.items()},
        str(target / "transformer.safetensors"),
        metadata={"trained_steps": str(load_json(args.work / "transformer.json", {})["step"])},
    )
    for name in ("vae", "classifier"):
        source = args.work / f"{name}.safetensors"
        (target / f"{name}.safetensors").write_bytes(source.read_bytes())
    log(f"exported weights to {target}")


def evaluate(args: argparse.Namespace, device: torch.device) -> None:
    export(args)  # evaluate exactly what ships (float16 transformer)
    pipe = model.build_fixture_pipeline(args.export).to(device)
    net = model.load_digit_classifier(args.export).to(device)
    digits = [d for d in range(10) for _ in range(args.samples_per_digit)]
    images = []
    for start in range(0, len(digits), 100):
        chunk = digits[start : start + 100]
        kwargs = model.fixture_call_kwargs(chunk, num_inference_steps=28, seed=start)
        images.append(pipe(**kwargs).images.float().cpu())
    images = torch.cat(images)
    predicted = net.predict(images.to(device)).cpu()
    accuracy = (predicted == torch.tensor(digits)).float().mean().item()
    per_digit = {
        d: (predicted[torch.tensor(digits) == d] == d).float().mean().item() for d in range(10)
    }
    log(f"prompt accuracy at 28 steps: {accuracy:.4f} {per_digit}")
    metrics = {
        "prompt_accuracy_28_steps": accuracy,
        "per_digit": per_digit,
        "samples": len(digits),
        "vae": load_json(args.work / "vae.json", {}),
        "classifier": load_json(args.work / "classifier.json", {}),
        "transformer_steps": load_json(args.work / "transformer.json", {}).get("step"),
    }
    save_json(args.work / "metrics.json", metrics)
    _plots(args, images, digits)


def _plots(args: argparse.Namespace, images: torch.Tensor, digits: list[int]) -> None:
    from PIL import Image

    per = args.samples_per_digit
    cols = min(per, 10)
    grid = torch.ones(3, 10 * 34, cols * 34)
    for d in range(10):
        for c in range(cols):
            grid[:, d * 34 + 1 : d * 34 + 33, c * 34 + 1 : c * 34 + 33] = images[d * per + c]
    array = (grid.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    image = Image.fromarray(array).resize((cols * 68, 10 * 68), Image.NEAREST)
    image.save(args.work / "samples.png")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib missing: no loss-curve plot")
        return
    losses = load_json(args.work / "transformer.json", {"losses": []})["losses"]
    figure, axis = plt.subplots(figsize=(6, 3.2))
    axis.plot([s for s, _ in losses], [v for _, v in losses])
    axis.set_xlabel("step")
    axis.set_ylabel("flow-matching loss (mean of 250 steps)")
    axis.set_yscale("log")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(args.work / "loss.png", dpi=100)


def reference(args: argparse.Namespace) -> None:
    from safetensors.torch import save_file

    pipe = model.build_fixture_pipeline(args.export)
    images = pipe(**model.fixture_call_kwargs(list(range(10)), 28, seed=0)).images
    save_file(
        {"images": images.float().contiguous()},
        str(args.export / "reference_samples.safetensors"),
        metadata={"digits": "0-9", "steps": "28", "seed": "0", "device": "cpu"},
    )
    for name in ("samples.png", "loss.png", "metrics.json"):
        if (args.work / name).is_file():
            (args.export / name).write_bytes((args.work / name).read_bytes())
    log(f"reference samples and card assets written to {args.export}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="checkpoints and logs")
    parser.add_argument("--export", type=Path, default=model.WEIGHTS_DIR)
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--max-minutes", type=float, default=7.0)
    parser.add_argument("--steps", type=int, default=30_000, help="transformer steps in all")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--ema", type=float, default=0.999)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (transformer)")
    parser.add_argument("--vae-steps", type=int, default=4000)
    parser.add_argument("--kl-weight", type=float, default=1e-3)
    parser.add_argument("--classifier-steps", type=int, default=3000)
    parser.add_argument("--samples-per-digit", type=int, default=20)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = True
    log(f"device {device}, torch {torch.__version__}, stages {args.stages}")
    for stage in args.stages:
        started = time.monotonic()
        if stage == "vae":
            train_vae(args, device)
        elif stage == "classifier":
            train_classifier(args, device)
        elif stage == "transformer":
            train_transformer(args, device)
        elif stage == "evaluate":
            evaluate(args, device)
        elif stage == "export":
            export(args)
        else:
            reference(args)
        log(f"stage {stage} took {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
