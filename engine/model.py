"""Image + metadata fusion model.

A timm backbone (no classifier, global average pooling) feeds a fusion head;
a metadata MLP encodes patient data. Dropout lives only in the metadata MLP
and the fusion head, so the backbone is deterministic at inference and MC
Dropout can run it once per image and sample only the heads.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from cohorts.errors import BsxError


@dataclass
class ModelConfig:
    backbone: str = "efficientnet_b0"
    meta_dim: int = 0
    n_outputs: int = 1              # 1 = binary (sigmoid), K = multiclass (softmax)
    meta_hidden: int = 32
    fusion_hidden: int = 128
    dropout: float = 0.3

    def to_dict(self) -> dict:
        return asdict(self)


class FusionModel(nn.Module):
    def __init__(self, config: ModelConfig, backbone_weights: Path | None = None) -> None:
        super().__init__()
        import timm

        self.config = config
        try:
            # drop_rate/drop_path_rate 0: no stochasticity inside the backbone.
            self.backbone = timm.create_model(config.backbone, pretrained=False, num_classes=0,
                                              global_pool="avg", drop_rate=0.0, drop_path_rate=0.0)
        except RuntimeError as exc:
            raise BsxError(f"unknown timm backbone '{config.backbone}' ({exc})",
                           fix="use a timm model name such as efficientnet_b0") from None
        if backbone_weights is not None:
            load_backbone_weights(self.backbone, Path(backbone_weights))
        features = self.backbone.num_features
        self.meta = nn.Sequential(nn.Linear(max(config.meta_dim, 1), config.meta_hidden), nn.ReLU(),
                                  nn.Dropout(config.dropout))
        self.head = nn.Sequential(
            nn.Dropout(config.dropout), nn.Linear(features + config.meta_hidden, config.fusion_hidden), nn.ReLU(),
            nn.Dropout(config.dropout), nn.Linear(config.fusion_hidden, config.n_outputs))

    @property
    def embedding_dim(self) -> int:
        return self.backbone.num_features

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images)

    def heads(self, embeddings: torch.Tensor, meta: torch.Tensor) -> torch.Tensor:
        if meta.shape[1] == 0:  # a model without metadata still has the (constant) branch
            meta = meta.new_zeros((meta.shape[0], 1))
        return self.head(torch.cat([embeddings, self.meta(meta)], dim=1))

    def forward(self, images: torch.Tensor, meta: torch.Tensor) -> torch.Tensor:
        return self.heads(self.embed(images), meta)

    def dropout_modules(self) -> list[nn.Dropout]:
        return [m for m in list(self.meta.modules()) + list(self.head.modules()) if isinstance(m, nn.Dropout)]

    def mc_mode(self) -> "FusionModel":
        """Eval everywhere (BatchNorm frozen), dropout active in the heads only."""
        self.eval()
        for module in self.dropout_modules():
            module.train()
        return self


def load_backbone_weights(backbone: nn.Module, path: Path) -> None:
    """Local pretrained weights only: safetensors, or a .pth/.pt loaded with weights_only=True."""
    if not path.is_file():
        raise BsxError("backbone weights file not found", path=path, fix="check --backbone-weights")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # unpickling errors come in many types
            raise BsxError(f"refused to load weights: not a plain tensor file ({exc.__class__.__name__})",
                           path=path, fix="convert the weights to safetensors") from None
        state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict):
        raise BsxError("weights file does not hold a state dict", path=path)
    missing, _unexpected = backbone.load_state_dict(state, strict=False)
    if len(missing) == len(backbone.state_dict()):
        raise BsxError("no weight in the file matches the backbone", path=path,
                       fix="use weights for the same timm architecture")
