"""Optional MLflow tracking (`bsx train --mlflow`); mlflow is imported only when asked for."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from cohorts.errors import BsxError


class MlflowTracker:
    """Parameters at start, metrics per epoch, the checkpoint at the end."""

    def __init__(self, config) -> None:
        try:
            import mlflow
        except ImportError:
            raise BsxError("--mlflow needs the MLflow package, which is not installed",
                           fix="pip install 'biosignal-x[mlflow]' (or drop --mlflow)") from None
        self.mlflow = mlflow
        self.out = Path(config.out)
        import os
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            mlflow.set_tracking_uri(Path("mlruns").resolve().as_uri())
        mlflow.start_run(run_name=self.out.name)
        mlflow.log_params({k: v for k, v in asdict(config).items() if v is not None})

    def on_event(self, event: dict) -> None:
        if event.get("event") == "epoch":
            metrics = {k: float(v) for k, v in event.items()
                       if k not in ("event", "epoch", "best") and isinstance(v, (int, float)) and v == v}
            self.mlflow.log_metrics(metrics, step=int(event["epoch"]))
        elif event.get("event") == "done":
            for name in ("model.safetensors", "model.json", "metrics.csv"):
                if (self.out / name).is_file():
                    self.mlflow.log_artifact(str(self.out / name))

    def close(self, status: str) -> None:
        self.mlflow.end_run(status=status)
