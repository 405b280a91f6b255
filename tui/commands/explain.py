"""`bsx explain RUN_DIR --case ID`: Grad-CAM overlay of one case, with its self-checks.

The run's own checkpoint is used (the path and hash recorded in run.json): an
explanation from any other model would explain a different prediction.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from cohorts.errors import BsxError
from tui.console import out, safe


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("explain", help="Grad-CAM overlay for one case of a run",
                            description="Write gradcam/<case>.png (overlay) and .npy (raw heatmap) for one case "
                            "and print its deletion faithfulness and MC-dropout stability.")
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="run folder written by `bsx validate`")
    parser.add_argument("--case", required=True, help="case id (as in predictions.parquet)")
    parser.add_argument("--method", choices=["gradcam", "gradcam++"], default="gradcam")
    parser.add_argument("--checkpoint", type=Path,
                        help="checkpoint to use when it has moved since the run (must be the same weights)")
    parser.set_defaults(handler=_explain)


def load_run_checkpoint(run: dict, override: Path | None):
    """The run's checkpoint, refusing one whose weights differ from those the run used."""
    from engine.checkpoint import load_checkpoint

    recorded = (run.get("model") or {}).get("path")
    path = override or (Path(recorded) if recorded else None)
    if path is None or not path.exists():
        raise BsxError(f"the run's checkpoint is not available{f' at {recorded}' if recorded else ''}",
                       path=path, fix="pass --checkpoint PATH pointing at the same model")
    checkpoint = load_checkpoint(path)
    expected = (run.get("model") or {}).get("sha256")
    if expected and checkpoint.sha256 != expected:
        raise BsxError(f"checkpoint weights {checkpoint.sha256[:12]}… are not the run's {expected[:12]}…",
                       path=path, fix="pass --checkpoint pointing at the model the run was validated with")
    return checkpoint


def _explain(args: argparse.Namespace) -> int:
    from engine.explain import explain_case
    from tui.commands.integrity import open_run_folder

    folder = open_run_folder(args.run_dir)
    checkpoint = load_run_checkpoint(folder.run_info(), args.checkpoint)
    result = explain_case(folder, checkpoint, args.case, method=args.method)
    faith, stability = result["faithfulness"], result["stability"]
    out.print(f"case {safe(result['case_id'])}: {result['method']} for "
              f"'{safe(result['target_name'])}', probability {result['probability']:.3f}")
    out.print(f"  deletion faithfulness: top {faith['fraction']:.0%} removed -> drop "
              f"{faith['deletion_drop_top']:+.3f}; random -> drop {faith['deletion_drop_random']:+.3f}; "
              f"score {faith['score']:+.3f}")
    out.print(f"  stability over {stability['n']} MC dropout samples: mean correlation "
              f"{stability['mean_correlation']:.3f} (min {stability['min_correlation']:.3f})")
    # Paths are printed unwrapped so they can be copied from the terminal.
    out.print(f"  overlay: {safe(folder.gradcam_path(result['case_id']))}", soft_wrap=True)
    out.print(f"  heatmap: {safe(folder.gradcam_path(result['case_id'], '.npy'))}", soft_wrap=True)
    return 0
