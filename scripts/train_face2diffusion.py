#!/usr/bin/env python
"""Train Face2Diffusion's mapping network and/or the rig-to-expression map on your own face photos.

Two steps:

    # 1. photos -> dataset folder (detect, align, face mask, MSID feature, rig expression)
    python scripts/train_face2diffusion.py prepare --photos faces/ --out data/ \\
        --msid ComfyUI/models/likeness/face2diffusion/f2d_msid.safetensors

    # 2. train against a diffusers-format Stable Diffusion 1.x folder (unet/ vae/ text_encoder/ tokenizer/ scheduler/)
    accelerate launch scripts/train_face2diffusion.py train --data data/ --base-model sd-v1-4/ --output run/ \\
        --init-mapping ComfyUI/models/likeness/face2diffusion/f2d_mapping.safetensors

`train` runs unchanged on one CPU, one GPU or many (`accelerate launch`, `torchrun --nproc_per_node N`).
The UNet, VAE and text encoder stay frozen; the loss is Face2Diffusion's class-guided denoising
regularisation (the identity prompt denoises the face, the background follows the class-word
prompt). `--freeze-mapping` learns only the rig map against a given (e.g. the official) mapping.
Every `--checkpoint-every` steps and at the end the main process writes, atomically,
`run/f2d_mapping.safetensors` and/or `run/f2d_rig_expression.safetensors` (copy them to
ComfyUI/models/likeness/face2diffusion) and the resumable state `run/state/step-NNNNNNN/`;
`--resume latest` continues from the newest state.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models.identity.files import MAPPING_FILE, load_mapping, load_msid_encoder  # noqa: E402
from models.identity.mapping import Img2TextMapping, MappingConfig  # noqa: E402
from models.identity.rig_expression import (RIG_MAP_FILE, RigExpressionMap,  # noqa: E402
                                            load_rig_expression_map)
from models.identity.training import (CGDRConfig, EpochShardSampler, Face2DiffusionTrainable,  # noqa: E402
                                      FaceTrainingDataset, FrozenParts, PromptConfig, TrainableConfig,
                                      batches_per_epoch, save_mapping, save_rig_map, training_loss)
from models.identity.training.prompts import DEFAULT_TEMPLATES  # noqa: E402

STATE_DIR = "state"
TRAINER_STATE = "trainer_state.json"


# prepare ------------------------------------------------------------------------------------------

def run_prepare(args: argparse.Namespace) -> int:
    from models.faces.detector import FaceDetector
    from models.faces.mediapipe_files import find_mediapipe_models
    from models.identity.training.prepare import PrepareConfig, photo_files, prepare_dataset

    config = PrepareConfig(resolution=args.resolution, padding=args.padding, min_score=args.min_score,
                           max_detect_side=args.max_detect_side, mask_grow=args.mask_grow, max_yaw=args.max_yaw)
    detector = FaceDetector(find_mediapipe_models(args.mediapipe_dir), device=args.device)
    msid = load_msid_encoder(args.msid, device=args.device)
    index = prepare_dataset(photo_files(args.photos), args.out, detector, msid, args.msid, config)
    print(f"{len(index.samples)} faces written to {args.out}, {len(index.skipped)} photos skipped")
    return 0 if index.samples else 1


# train: set-up ------------------------------------------------------------------------------------

def load_frozen_parts(base: Path, device: torch.device, dtype: torch.dtype, identifier: str) -> FrozenParts:
    """The diffusers-format SD 1.x folder's tokenizer, text encoder, VAE, UNet and noise schedule."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    missing = [d for d in ("unet", "vae", "text_encoder", "tokenizer", "scheduler") if not (base / d).is_dir()]
    if missing:
        raise SystemExit(f"{base} is not a diffusers Stable Diffusion folder: missing {', '.join(missing)}/")
    tokenizer = CLIPTokenizer.from_pretrained(base, subfolder="tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(base, subfolder="text_encoder").to(dtype)
    vae = AutoencoderKL.from_pretrained(base, subfolder="vae", torch_dtype=dtype)
    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet", torch_dtype=dtype)
    scheduler = DDPMScheduler.from_pretrained(base, subfolder="scheduler")
    length = min(tokenizer.model_max_length, text_encoder.config.max_position_embeddings)
    ids = tokenizer(identifier, add_special_tokens=False).input_ids
    if len(ids) != 2:
        raise SystemExit(f"the identifier '{identifier}' is {len(ids)} tokens; Face2Diffusion maps a face to two")

    def tokenize(prompts: list[str]) -> torch.Tensor:
        return tokenizer(prompts, padding="max_length", max_length=length, truncation=True,
                         return_tensors="pt").input_ids

    for module in (text_encoder, vae, unet):
        module.to(device)
    return FrozenParts(vae, unet, text_encoder, scheduler, tokenize, ids).freeze()


def build_trainable(args: argparse.Namespace, dataset: FaceTrainingDataset, token_dim: int) -> Face2DiffusionTrainable:
    index = dataset.index
    config = MappingConfig(identity_dim=index.identity_dim, hidden_dim=args.mapping_hidden_dim, token_dim=token_dim)
    if args.init_mapping:
        mapping = load_mapping(args.init_mapping, config=config).train()
    else:
        mapping = Img2TextMapping(config)
    rig_map = None
    if not args.no_rig_map:
        if args.init_rig_map:
            rig_map = load_rig_expression_map(args.init_rig_map).train()
            if rig_map.layout != index.rig_layout:
                raise SystemExit(f"{args.init_rig_map} was trained on '{rig_map.layout}' rigs, the dataset holds "
                                 f"'{index.rig_layout}'")
        else:
            rig_map = RigExpressionMap(index.rig_layout, index.rig_features, config.expression_dim)
    probability = args.null_expression_prob
    if probability is None:
        probability = 0.0 if args.freeze_mapping else 0.5
    return Face2DiffusionTrainable(mapping, rig_map, TrainableConfig(args.freeze_mapping, probability))


def parameter_groups(trainable: Face2DiffusionTrainable, args: argparse.Namespace) -> list[dict]:
    groups = []
    if not args.freeze_mapping:
        groups.append({"params": list(trainable.mapping.parameters()), "lr": args.lr, "name": "mapping"})
    if trainable.rig_map is not None:
        groups.append({"params": list(trainable.rig_map.parameters()), "lr": args.rig_lr, "name": "rig_map"})
    for group in groups:
        group["base_lr"] = group["lr"]
    return groups


def parameter_digest(module: torch.nn.Module) -> str:
    """sha256 of every parameter's bytes: equal on all processes iff they stayed in sync."""
    digest = hashlib.sha256()
    for name, value in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


# train: checkpoints -------------------------------------------------------------------------------

def latest_state(output: Path) -> Path | None:
    states = sorted(p for p in (output / STATE_DIR).glob("step-*")
                    if p.is_dir() and not p.name.endswith(".tmp") and (p / TRAINER_STATE).is_file())
    return states[-1] if states else None


def export_weights(trainable: Face2DiffusionTrainable, output: Path, step: int, args: argparse.Namespace,
                   dataset: FaceTrainingDataset) -> list[Path]:
    provenance = {"step": step, "base_model": Path(args.base_model).name, "dataset_faces": len(dataset),
                  "msid": dataset.index.msid.get("name", "")}
    written = []
    if not args.freeze_mapping:
        written.append(save_mapping(output / MAPPING_FILE, trainable.mapping, **provenance))
    if trainable.rig_map is not None:
        written.append(save_rig_map(output / RIG_MAP_FILE, trainable.rig_map, **provenance))
    return written


def save_checkpoint(accelerator, trainable, output: Path, step: int, batches_done: int, args: argparse.Namespace,
                    dataset: FaceTrainingDataset) -> None:
    """All processes save their part into step-N.tmp; the main process completes it and renames it."""
    final = output / STATE_DIR / f"step-{step:07d}"
    tmp = final.with_name(final.name + ".tmp")
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        state = {"step": step, "batches_done": batches_done, "world_size": accelerator.num_processes,
                 "batch_size": args.batch_size, "gradient_accumulation": args.gradient_accumulation,
                 "seed": args.seed, "freeze_mapping": args.freeze_mapping, "rig_map": not args.no_rig_map}
        (tmp / TRAINER_STATE).write_text(json.dumps(state, indent=1))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        export_weights(accelerator.unwrap_model(trainable), output, step, args, dataset)
        kept = sorted(p for p in (output / STATE_DIR).glob("step-*") if not p.name.endswith(".tmp"))
        for old in kept[:-args.keep_states] if args.keep_states > 0 else []:
            shutil.rmtree(old)
        print(f"step {step}: checkpoint {final.relative_to(output)} and weights written to {output}", flush=True)
    accelerator.wait_for_everyone()


# train: loop --------------------------------------------------------------------------------------

def epoch_loader(dataset: FaceTrainingDataset, args: argparse.Namespace, world: int, rank: int, epoch: int,
                 skip: int) -> torch.utils.data.DataLoader:
    """This process's batches of one epoch, the first `skip` left out (a resumed epoch)."""
    # the loader's own generator: drawing its worker seed from the global RNG would shift every random
    # number after a resume that starts mid-epoch
    return torch.utils.data.DataLoader(
        dataset, batch_size=args.batch_size, num_workers=args.num_workers,
        sampler=EpochShardSampler(len(dataset), world, rank, args.batch_size, args.seed, epoch, skip),
        generator=torch.Generator().manual_seed(args.seed * 1_000_003 + epoch))


def run_train(args: argparse.Namespace) -> int:
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    accelerators = getattr(torch, "accelerator", None)  # torch >= 2.6; older ones: CUDA or nothing
    has_device = accelerators.is_available() if accelerators is not None else torch.cuda.is_available()
    use_cpu = args.cpu or not has_device  # accelerate then runs several CPU processes over gloo
    accelerator = Accelerator(gradient_accumulation_steps=args.gradient_accumulation,
                              mixed_precision=args.mixed_precision, cpu=use_cpu)
    set_seed(args.seed, device_specific=True)  # noise, timesteps, dropout and prompts differ per process
    output = Path(args.output)
    rank, world = accelerator.process_index, accelerator.num_processes
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(args.mixed_precision, torch.float32)

    dataset = FaceTrainingDataset(args.data)
    parts = load_frozen_parts(Path(args.base_model), accelerator.device, dtype, args.identifier)
    if args.gradient_checkpointing:
        parts.unet.enable_gradient_checkpointing()
    trainable = build_trainable(args, dataset, parts.text_encoder.config.hidden_size).to(accelerator.device)
    optimizer = torch.optim.AdamW(parameter_groups(trainable, args), weight_decay=args.weight_decay)
    trainable, optimizer = accelerator.prepare(trainable, optimizer)

    step, batches_done = 0, 0
    resume = latest_state(output) if args.resume == "latest" else Path(args.resume) if args.resume else None
    if args.resume and resume is None:
        accelerator.print(f"no saved state under {output / STATE_DIR}: starting from step 0")
    if resume is not None and not (resume / TRAINER_STATE).is_file():
        raise SystemExit(f"{resume} is not a complete training state (no {TRAINER_STATE})")
    if resume is not None:
        accelerator.load_state(str(resume))
        saved = json.loads((resume / TRAINER_STATE).read_text())
        step, batches_done = int(saved["step"]), int(saved["batches_done"])
        if saved["world_size"] * saved["batch_size"] != world * args.batch_size:
            accelerator.print("warning: the global batch differs from the saved run's; the data order will too")
        accelerator.print(f"resumed from {resume} at step {step}")
    start_step = step

    prompts = PromptConfig(args.identifier, args.class_word, tuple(args.template or DEFAULT_TEMPLATES))
    cgdr = CGDRConfig(args.foreground_weight, args.background_weight)
    per_epoch = batches_per_epoch(len(dataset), world, args.batch_size)
    trained = [p for p in trainable.parameters() if p.requires_grad]
    seen, losses = [], []
    log_file = output / "logs" / "train.jsonl"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    trainable.train()
    started = time.perf_counter()
    accelerator.print(f"training {sum(p.numel() for p in trained)} parameters on {len(dataset)} faces, "
                      f"{world} process(es), {per_epoch} batch(es) per process and epoch")
    while step < args.max_steps:
        epoch, skip = divmod(batches_done, per_epoch)
        loader = epoch_loader(dataset, args, world, rank, epoch, skip)
        totals = torch.zeros(3, device=accelerator.device)
        for batch in loader:
            with accelerator.accumulate(trainable):
                with accelerator.autocast():
                    terms = training_loss(batch, parts, trainable, prompts, cgdr)
                accelerator.backward(terms.total)
                if accelerator.sync_gradients and args.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(trained, args.max_grad_norm)
                warmup = min(1.0, (step + 1) / args.warmup_steps) if args.warmup_steps > 0 else 1.0
                for group in optimizer.param_groups:
                    group["lr"] = group["base_lr"] * warmup
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            batches_done += 1
            seen.extend(int(i) for i in batch["index"])
            totals += torch.stack([terms.total.detach(), terms.foreground, terms.background]).float()
            if not accelerator.sync_gradients:
                continue
            step += 1
            mean = accelerator.reduce(totals / args.gradient_accumulation, reduction="mean").tolist()
            losses.append(float(totals[0] / args.gradient_accumulation))
            totals.zero_()
            if accelerator.is_main_process:
                entry = {"step": step, "loss": mean[0], "foreground": mean[1], "background": mean[2],
                         "lr": warmup * optimizer.param_groups[0]["base_lr"]}
                with log_file.open("a") as stream:
                    stream.write(json.dumps(entry) + "\n")
            if accelerator.is_main_process and (step % args.log_every == 0 or step == args.max_steps):
                rate = (time.perf_counter() - started) / (step - start_step)
                print(f"step {step}/{args.max_steps} loss {mean[0]:.4f} (face {mean[1]:.4f}, background "
                      f"{mean[2]:.4f}) {rate:.2f} s/step", flush=True)
            if step % args.checkpoint_every == 0 or step == args.max_steps:
                save_checkpoint(accelerator, trainable, output, step, batches_done, args, dataset)
            if step >= args.max_steps:
                break

    if step == start_step and accelerator.is_main_process:  # nothing left to train: still give the files
        export_weights(accelerator.unwrap_model(trainable), output, step, args, dataset)
    # per process: what it trained on and where its parameters ended (equal digests = processes in sync)
    report = {"rank": rank, "world_size": world, "start_step": start_step, "end_step": step,
              "samples": seen, "losses": losses, "digest": parameter_digest(accelerator.unwrap_model(trainable))}
    (log_file.parent / f"rank{rank}.json").write_text(json.dumps(report))
    accelerator.end_training()
    return 0


# command line -------------------------------------------------------------------------------------

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    commands = parser.add_subparsers(dest="command", required=True)

    prep = commands.add_parser("prepare", help="photos folder -> dataset folder")
    prep.add_argument("--photos", type=Path, required=True, help="folder of photos, one person's face each")
    prep.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    prep.add_argument("--msid", type=Path, required=True, help="converted f2d_msid.safetensors")
    prep.add_argument("--resolution", type=int, default=512, help="crop side in pixels (512 for SD 1.x)")
    prep.add_argument("--padding", type=float, default=0.0, help="extra context around the FFHQ framing")
    prep.add_argument("--mask-grow", type=float, default=0.0, help="widen the face-mesh mask by this fraction")
    prep.add_argument("--min-score", type=float, default=0.5, help="face detector threshold")
    prep.add_argument("--max-detect-side", type=int, default=1024, help="detect on a copy at most this large")
    prep.add_argument("--max-yaw", type=float, default=45.0, help="skip faces turned further (degrees)")
    prep.add_argument("--mediapipe-dir", type=Path, action="append", default=[],
                      help="folder with the mediapipe .tflite files (default: the installed mediapipe wheel)")
    prep.add_argument("--device", default="cpu", help="torch device for detection and MSID")

    train = commands.add_parser("train", help="train the mapping network and/or the rig expression map")
    train.add_argument("--data", type=Path, required=True, help="dataset folder written by `prepare`")
    train.add_argument("--base-model", type=Path, required=True,
                       help="diffusers-format SD 1.x folder (unet/ vae/ text_encoder/ tokenizer/ scheduler/)")
    train.add_argument("--output", type=Path, required=True, help="folder for weights, states and logs")
    train.add_argument("--init-mapping", type=Path, help="start from this f2d_mapping.safetensors")
    train.add_argument("--init-rig-map", type=Path, help="start from this f2d_rig_expression.safetensors")
    train.add_argument("--freeze-mapping", action="store_true",
                       help="train only the rig map (give --init-mapping, e.g. the official mapping)")
    train.add_argument("--no-rig-map", action="store_true",
                       help="no rig map: the expression slot is always null_exp")
    train.add_argument("--mapping-hidden-dim", type=int, default=1536, help="mapping MLP width (official 1536)")
    train.add_argument("--identifier", default="f l", help="the two-token identifier (official 'f l')")
    train.add_argument("--class-word", default="person", help="what stands in the identifier's place for CGDR")
    train.add_argument("--template", action="append",
                       help="prompt template with {} for the subject (repeat; default: a few photo prompts)")
    train.add_argument("--foreground-weight", type=float, default=1.0, help="CGDR face-denoising weight")
    train.add_argument("--background-weight", type=float, default=1.0,
                       help="CGDR class-guided background weight (0: plain masked denoising)")
    train.add_argument("--null-expression-prob", type=float,
                       help="chance of swapping a face's expression code for null_exp (default 0.5, 0 if frozen)")
    train.add_argument("--batch-size", type=int, default=4, help="faces per process and micro-batch")
    train.add_argument("--gradient-accumulation", type=int, default=1, help="micro-batches per optimiser step")
    train.add_argument("--lr", type=float, default=1e-5, help="mapping network learning rate (fine-tuning; "
                       "about 1e-4 from scratch)")
    train.add_argument("--rig-lr", type=float, default=1e-3, help="rig map learning rate")
    train.add_argument("--weight-decay", type=float, default=1e-2)
    train.add_argument("--warmup-steps", type=int, default=0, help="linear learning-rate warm-up")
    train.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping (0: off)")
    train.add_argument("--max-steps", type=int, default=1000, help="optimiser steps in total (resumed runs too)")
    train.add_argument("--checkpoint-every", type=int, default=500, help="save weights and state every N steps")
    train.add_argument("--keep-states", type=int, default=2, help="resumable states to keep (0: all)")
    train.add_argument("--resume", help="'latest' or a state folder to continue from")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default="no",
                       help="frozen models in this precision, autocast for the forward passes")
    train.add_argument("--gradient-checkpointing", action="store_true", help="recompute UNet activations")
    train.add_argument("--num-workers", type=int, default=2, help="data loader worker processes")
    train.add_argument("--log-every", type=int, default=10, help="print the loss every N steps")
    train.add_argument("--cpu", action="store_true", help="train on the CPU even if an accelerator exists")
    args = parser.parse_args(argv)
    if args.command == "train":
        if args.freeze_mapping and (args.no_rig_map or not args.init_mapping):
            parser.error("--freeze-mapping trains the rig map against a given mapping: needs --init-mapping "
                         "and no --no-rig-map")
        if min(args.batch_size, args.gradient_accumulation, args.max_steps, args.checkpoint_every) < 1:
            parser.error("batch size, accumulation, steps and checkpoint interval must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_prepare(args) if args.command == "prepare" else run_train(args)


if __name__ == "__main__":
    sys.exit(main())
