"""`bsx train`: train the image + metadata fusion model on a cohort."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("train", help="train or fine-tune the fusion model on a cohort")
    parser.add_argument("--cohort", type=Path, required=True, help="training cohort folder or CSV")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint folder to write")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--backbone", default="efficientnet_b0", help="any timm model name")
    parser.add_argument("--backbone-weights", type=Path, default=None, help="local pretrained weights file")
    parser.add_argument("--target", choices=["binary", "multiclass"], default="binary")
    parser.add_argument("--site-split", action="store_true", help="stratify the split by site")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--patience", type=int, default=3, help="early-stopping patience in epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers")
    parser.add_argument("--device", default="auto", help="auto (a CUDA GPU when present) | cpu | cuda | cuda:N")
    parser.add_argument("--malignant", default=None, help="comma-separated diagnoses counted malignant")
    parser.add_argument("--skip-errors", action="store_true", help="train on usable rows of a cohort with errors")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out exactly")
    parser.add_argument("--mlflow", action="store_true", help="log to MLflow (./mlruns or MLFLOW_TRACKING_URI)")
    parser.add_argument("--progress", choices=["rich", "jsonl"], default="rich",
                        help="jsonl: one JSON object per step/epoch on stdout")
    parser.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace) -> int:
    from engine.train import TrainConfig, Trainer
    from tui.train_progress import jsonl_printer, rich_reporter

    config = TrainConfig(
        cohort=str(args.cohort), out=str(args.out), epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        image_size=args.image_size, backbone=args.backbone,
        backbone_weights=str(args.backbone_weights) if args.backbone_weights else None, target=args.target,
        site_split=args.site_split, val_fraction=args.val_fraction, patience=args.patience, seed=args.seed,
        skip_errors=args.skip_errors, device=args.device,
        malignant=[d.strip() for d in args.malignant.split(",")] if args.malignant else None)
    if args.workers is not None:
        config.workers = args.workers
    tracker = None
    if args.mlflow:
        from engine.tracking import MlflowTracker

        tracker = MlflowTracker(config)
    reporter = jsonl_printer() if args.progress == "jsonl" else rich_reporter()
    with reporter as emit:
        def progress(event: dict) -> None:
            emit(event)
            if tracker:
                tracker.on_event(event)
        try:
            result = Trainer(config, progress).run(resume=args.resume)
        except Exception as exc:
            if args.progress == "jsonl":
                print(json.dumps({"event": "error", "message": str(exc)}), flush=True)
            if tracker:
                tracker.close("FAILED")
            raise
    if tracker:
        tracker.close("FINISHED")
    if args.progress == "rich":
        print(f"best epoch {result['best_epoch']}; checkpoint in {result['checkpoint']}", file=sys.stderr)
    return 0
