"""Synthetic dermoscopy cohorts with real, learnable signal.

Malignancy drives the ABCD features of the drawn lesion (Asymmetry, Border
irregularity, Colour variegation, Diameter) through a noisy latent severity, so
classes overlap as in real data. Skin tone follows the Fitzpatrick type;
acquisition sites differ in camera (colour cast, blur, vignetting,
resolution); metadata (age, sex, body site) correlates with malignancy.
Named shifts make the same generator produce a drifted external cohort.
Deterministic for a seed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image, ImageFilter

from cohorts.errors import BsxError

SHIFTS = ("none", "new_site", "older", "darker_skin")
FITZPATRICK = ["I", "II", "III", "IV", "V", "VI"]
# Background skin RGB per Fitzpatrick type (light to dark).
SKIN_RGB = {"I": (236, 206, 186), "II": (224, 186, 160), "III": (198, 156, 120),
            "IV": (164, 118, 84), "V": (118, 80, 56), "VI": (78, 54, 40)}
BODY_SITES = ["head/neck", "upper extremity", "lower extremity", "anterior torso", "posterior torso",
              "palms/soles"]
BENIGN_DX = {"nevus": 0.65, "seborrheic keratosis": 0.2, "dermatofibroma": 0.08, "vascular lesion": 0.07}
MALIGNANT_DX = {"melanoma": 0.65, "basal cell carcinoma": 0.35}


@dataclass(frozen=True)
class Camera:
    cast: tuple[float, float, float]   # per-channel gain
    blur: float                        # Gaussian radius in px at base size
    vignette: float                    # 0 = none, 1 = black corners
    scale: float                       # resolution relative to the base size


CAMERAS = {
    "A": Camera((1.00, 1.00, 1.00), 0.0, 0.15, 1.0),
    "B": Camera((1.06, 0.98, 0.92), 0.6, 0.30, 1.25),
    "C": Camera((0.94, 1.00, 1.07), 0.3, 0.10, 0.85),
    "D": Camera((1.14, 0.90, 0.84), 1.4, 0.55, 1.5),   # the unseen site of the new_site shift
}


@dataclass
class SynthSpec:
    n: int = 400
    seed: int = 0
    prevalence: float = 0.3
    sites: dict[str, float] = field(default_factory=lambda: {"A": 0.45, "B": 0.35, "C": 0.2})
    skin_types: dict[str, float] = field(default_factory=lambda: {
        "I": 0.12, "II": 0.3, "III": 0.3, "IV": 0.16, "V": 0.07, "VI": 0.05})
    shift: str = "none"
    image_size: int = 128
    case_prefix: str = "SYN"

    def validate(self) -> None:
        if self.n < 1:
            raise BsxError(f"--n must be at least 1 (got {self.n})")
        if not 0.0 < self.prevalence < 1.0:
            raise BsxError(f"--prevalence must be between 0 and 1 (got {self.prevalence})")
        if self.shift not in SHIFTS:
            raise BsxError(f"unknown shift '{self.shift}'", fix=f"use one of: {', '.join(SHIFTS)}")
        unknown = set(self.sites) - set(CAMERAS)
        if unknown:
            raise BsxError(f"unknown site(s) {sorted(unknown)}", fix=f"sites are {', '.join(CAMERAS)}")
        if self.image_size < 32:
            raise BsxError(f"--image-size must be at least 32 (got {self.image_size})")


@dataclass
class SynthCase:
    case_id: str
    patient_id: str
    lesion_id: str
    diagnosis: str
    malignant: int
    age: float
    sex: str
    site: str
    body_site: str
    skin_type: str
    image: Image.Image


def _choice(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=float)
    return keys[rng.choice(len(keys), p=p / p.sum())]


def _shifted(spec: SynthSpec) -> tuple[dict[str, float], dict[str, float], float]:
    sites, skins, age_shift = dict(spec.sites), dict(spec.skin_types), 0.0
    if spec.shift == "new_site":
        sites = {"D": 1.0}
    elif spec.shift == "darker_skin":
        skins = {"III": 0.1, "IV": 0.3, "V": 0.35, "VI": 0.25}
    elif spec.shift == "older":
        age_shift = 15.0
    return sites, skins, age_shift


def _patients(spec: SynthSpec, rng: np.random.Generator) -> list[dict]:
    """About 1.25 lesions per patient; a patient's age, sex and skin type are shared."""
    sites, skins, age_shift = _shifted(spec)
    n_patients = max(1, int(round(spec.n / 1.25)))
    patients = []
    for k in range(n_patients):
        patients.append({
            "patient_id": f"{spec.case_prefix}P{spec.seed:03d}_{k:05d}",
            "sex": "male" if rng.random() < 0.52 else "female",
            "skin_type": _choice(rng, skins),
            "site": _choice(rng, sites),
            "age_base": rng.normal(50, 14) + age_shift,
        })
    return patients


def _lesion_mask(size: int, rng: np.random.Generator, severity: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Soft lesion mask whose diameter, asymmetry and border irregularity grow with severity."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cx, cy = size / 2 + rng.normal(0, size * 0.04, 2)
    dx, dy = xx - cx, yy - cy
    theta = np.arctan2(dy, dx)
    dist = np.hypot(dx, dy)
    radius = size * np.clip(0.14 + 0.14 * severity + rng.normal(0, 0.02), 0.08, 0.42)
    asym = np.clip(0.02 + 0.25 * severity + rng.normal(0, 0.04), 0, 0.45)
    border = np.clip(0.01 + 0.09 * severity + rng.normal(0, 0.012), 0, 0.2)
    r = 1 + asym * np.cos(theta - rng.uniform(0, 2 * np.pi))
    for harmonic in (3, 5, 7, 11):
        r += border * rng.uniform(0.4, 1.0) * np.cos(harmonic * theta + rng.uniform(0, 2 * np.pi))
    edge = radius * r
    mask = np.clip((edge - dist) / (1.5 + 2.5 * border * size / 20), 0, 1)
    return mask, xx, yy


def _lesion_colour(size: int, rng: np.random.Generator, severity: float, mask: np.ndarray,
                   xx: np.ndarray, yy: np.ndarray, skin_type: str) -> np.ndarray:
    """Brown, darker than the surrounding skin; severity adds variegation blobs (black, blue-grey, red, tan)."""
    tone = np.array(SKIN_RGB[skin_type], dtype=np.float32)
    base = (tone * 0.5 + np.array([30, 12, 0], dtype=np.float32)) * rng.uniform(0.85, 1.05)
    colour = np.broadcast_to(base, (size, size, 3)).copy()
    palette = np.array([[35, 25, 22], [95, 105, 130], [165, 70, 70], [175, 125, 90]], dtype=np.float32)
    n_blobs = int(np.clip(round(5 * severity - 0.5 + rng.normal(0, 0.6)), 0, 6))
    inside = np.argwhere(mask > 0.6)
    for _ in range(n_blobs if len(inside) else 0):
        y0, x0 = inside[rng.integers(len(inside))]
        width = size * rng.uniform(0.04, 0.1)
        weight = np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * width ** 2))[..., None] * 0.85
        colour = colour * (1 - weight) + palette[rng.integers(len(palette))] * weight
    return colour


def _skin(size: int, rng: np.random.Generator, skin_type: str) -> np.ndarray:
    tone = np.array(SKIN_RGB[skin_type], dtype=np.float32) * rng.uniform(0.95, 1.05, 3)
    coarse = rng.normal(0, 6, (size // 8 + 2, size // 8 + 2)).astype(np.float32)
    texture = np.asarray(Image.fromarray(coarse, "F").resize((size, size), Image.BICUBIC))[..., None]
    return np.clip(tone + texture + rng.normal(0, 3, (size, size, 3)), 0, 255)


def _apply_camera(pixels: np.ndarray, camera: Camera, size: int) -> Image.Image:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    radial = np.hypot(xx - size / 2, yy - size / 2) / (size / np.sqrt(2))
    pixels = pixels * np.array(camera.cast, dtype=np.float32) * (1 - camera.vignette * radial ** 2)[..., None]
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    if camera.blur > 0:
        image = image.filter(ImageFilter.GaussianBlur(camera.blur))
    out_size = max(32, int(round(size * camera.scale)))
    return image.resize((out_size, out_size), Image.BILINEAR) if out_size != size else image


def draw_lesion(rng: np.random.Generator, severity: float, skin_type: str, camera: Camera,
                size: int) -> Image.Image:
    mask, xx, yy = _lesion_mask(size, rng, severity)
    colour = _lesion_colour(size, rng, severity, mask, xx, yy, skin_type)
    pixels = _skin(size, rng, skin_type) * (1 - mask[..., None]) + colour * mask[..., None]
    return _apply_camera(pixels, camera, size)


def _body_site(rng: np.random.Generator, malignant: int) -> str:
    weights = [0.22, 0.12, 0.18, 0.2, 0.24, 0.04] if malignant else [0.1, 0.15, 0.22, 0.25, 0.22, 0.06]
    return BODY_SITES[rng.choice(len(BODY_SITES), p=np.array(weights) / sum(weights))]


def generate(spec: SynthSpec) -> Iterator[SynthCase]:
    """Yield cases one by one (images are not held in memory)."""
    spec.validate()
    rng = np.random.default_rng(spec.seed)
    patients = _patients(spec, rng)
    for index in range(spec.n):
        patient = patients[index % len(patients)] if index < len(patients) else patients[rng.integers(len(patients))]
        malignant = int(rng.random() < spec.prevalence)
        # Latent severity: overlapping classes, so the task is learnable but not trivial.
        severity = float(np.clip(0.2 + 0.6 * malignant + rng.normal(0, 0.17), 0, 1.2))
        age_base = patient["age_base"] + (12 if malignant else 0)
        age = float(np.clip(round(age_base + rng.normal(0, 4)), 18, 95))
        diagnosis = _choice(rng, MALIGNANT_DX if malignant else BENIGN_DX)
        image = draw_lesion(rng, severity, patient["skin_type"], CAMERAS[patient["site"]], spec.image_size)
        yield SynthCase(
            case_id=f"{spec.case_prefix}{spec.seed:03d}_{index:06d}", patient_id=patient["patient_id"],
            lesion_id=f"{spec.case_prefix}L{spec.seed:03d}_{index:06d}", diagnosis=diagnosis,
            malignant=malignant, age=age, sex=patient["sex"], site=patient["site"],
            body_site=_body_site(rng, malignant), skin_type=patient["skin_type"], image=image)


def write_synthetic(spec: SynthSpec, out: Path, layout: str = "generic",
                    progress: Callable[[int, int], None] | None = None) -> Path:
    """Generate and write a cohort in a public layout; returns the metadata file."""
    from cohorts.writers import write_layout

    return write_layout(generate(spec), spec.n, Path(out), layout, progress=progress)
