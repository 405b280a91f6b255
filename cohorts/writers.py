"""Write cases in each public layout (file names, columns and vocabularies as distributed).

Used by the synthetic generator, so every reader is tested on the exact
layout it will meet. Where a layout lacks one of our diagnoses, the closest
class of the same malignancy is used (HAM10000 and PAD-UFES-20 have no
dermatofibroma/vascular classes in every release), so labels round-trip.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Callable, Iterable

from cohorts.atomic import atomic_write_text
from cohorts.errors import BsxError

LAYOUT_NAMES = ("generic", "isic2019", "isic2020", "ham10000", "padufes20", "ddi")
ISIC_COLLECTION = {"A": "BCN", "B": "HAM", "C": "MSK", "D": "ODN"}
HAM_DATASET = {"A": "vidir_modern", "B": "rosendahl", "C": "vienna_dias", "D": "vidir_molemax"}
ISIC2019_DX = {"melanoma": "MEL", "basal cell carcinoma": "BCC", "nevus": "NV", "seborrheic keratosis": "BKL",
               "dermatofibroma": "DF", "vascular lesion": "VASC"}
HAM_DX = {"melanoma": "mel", "basal cell carcinoma": "bcc", "nevus": "nv", "seborrheic keratosis": "bkl",
          "dermatofibroma": "df", "vascular lesion": "vasc"}
PAD_DX = {"melanoma": "MEL", "basal cell carcinoma": "BCC", "nevus": "NEV", "seborrheic keratosis": "SEK",
          "dermatofibroma": "NEV", "vascular lesion": "SEK"}
DDI_DX = {"melanoma": "melanoma-invasive", "basal cell carcinoma": "basal-cell-carcinoma",
          "nevus": "melanocytic-nevi", "seborrheic keratosis": "seborrheic-keratosis",
          "dermatofibroma": "dermatofibroma", "vascular lesion": "angioma"}
HAM_LOCALIZATION = {"head/neck": "face", "upper extremity": "upper extremity",
                    "lower extremity": "lower extremity", "anterior torso": "trunk",
                    "posterior torso": "back", "palms/soles": "acral"}
PAD_REGION = {"head/neck": "FACE", "upper extremity": "ARM", "lower extremity": "THIGH",
              "anterior torso": "CHEST", "posterior torso": "BACK", "palms/soles": "HAND"}
DDI_TONE = {"I": "12", "II": "12", "III": "34", "IV": "34", "V": "56", "VI": "56"}
FITZ_NUMBER = {"I": "1", "II": "2", "III": "3", "IV": "4", "V": "5", "VI": "6"}
ISIC2019_CLASSES = ["MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC", "UNK"]


def _csv_text(header: list[str], rows: list[list]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _age5(age: float) -> str:
    return f"{5 * round(age / 5):.1f}"


class _Layout:
    """Where one case's image goes and what its CSV row(s) hold."""

    def __init__(self, out: Path, n: int) -> None:
        self.out, self.n = out, n
        self.rows: list[list] = []

    def save(self, case, index: int) -> None:
        path = self.out / self.image_relpath(case, index)
        path.parent.mkdir(parents=True, exist_ok=True)
        fmt = "PNG" if path.suffix == ".png" else "JPEG"
        case.image.save(path, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
        self.rows.append(self.row(case, index))


class Generic(_Layout):
    header = ["case_id", "patient_id", "lesion_id", "image_path", "age", "sex", "skin_type", "diagnosis",
              "site", "body_site"]

    def image_relpath(self, case, index):
        return f"images/{case.case_id}.jpg"

    def row(self, case, index):
        return [case.case_id, case.patient_id, case.lesion_id, self.image_relpath(case, index), f"{case.age:g}",
                case.sex, case.skin_type, case.diagnosis, case.site, case.body_site]

    def finish(self):
        return {"cohort.csv": _csv_text(self.header, self.rows)}


class Isic2019(_Layout):
    def image_relpath(self, case, index):
        return f"ISIC_2019_Training_Input/{case.case_id}.jpg"

    def row(self, case, index):
        return [case.case_id, _age5(case.age), case.body_site,
                f"{ISIC_COLLECTION[case.site]}_{index:07d}", case.sex, ISIC2019_DX[case.diagnosis]]

    def finish(self):
        meta = [r[:5] for r in self.rows]
        truth = [[r[0]] + [f"{float(r[5] == c):.1f}" for c in ISIC2019_CLASSES] for r in self.rows]
        return {"ISIC_2019_Training_Metadata.csv": _csv_text(
                    ["image", "age_approx", "anatom_site_general", "lesion_id", "sex"], meta),
                "ISIC_2019_Training_GroundTruth.csv": _csv_text(["image"] + ISIC2019_CLASSES, truth)}


class Isic2020(_Layout):
    def image_relpath(self, case, index):
        return f"jpeg/train/{case.case_id}.jpg"

    def row(self, case, index):
        return [case.case_id, case.patient_id, case.sex, _age5(case.age), case.body_site, case.diagnosis,
                "malignant" if case.malignant else "benign", case.malignant]

    def finish(self):
        return {"train.csv": _csv_text(["image_name", "patient_id", "sex", "age_approx",
                                        "anatom_site_general_challenge", "diagnosis", "benign_malignant",
                                        "target"], self.rows)}


class Ham10000(_Layout):
    def image_relpath(self, case, index):
        part = 1 if index < (self.n + 1) // 2 else 2
        return f"HAM10000_images_part_{part}/{case.case_id}.jpg"

    def row(self, case, index):
        return [case.lesion_id, case.case_id, HAM_DX[case.diagnosis], "histo" if case.malignant else "follow_up",
                f"{_age5(case.age)}", case.sex, HAM_LOCALIZATION[case.body_site], HAM_DATASET[case.site]]

    def finish(self):
        return {"HAM10000_metadata.csv": _csv_text(
            ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization", "dataset"], self.rows)}


class PadUfes(_Layout):
    def image_relpath(self, case, index):
        return f"images/{case.case_id}.png"

    def row(self, case, index):
        return [case.patient_id, index, "False", "False", f"{case.age:g}", case.sex.upper(),
                FITZ_NUMBER[case.skin_type], PAD_REGION[case.body_site], PAD_DX[case.diagnosis],
                "True" if case.malignant else "False", f"{case.case_id}.png"]

    def finish(self):
        return {"metadata.csv": _csv_text(
            ["patient_id", "lesion_id", "smoke", "drink", "age", "gender", "fitspatrick", "region",
             "diagnostic", "biopsed", "img_id"], self.rows)}


class Ddi(_Layout):
    def image_relpath(self, case, index):
        return f"{index + 1:06d}.png"

    def row(self, case, index):
        return [index + 1, self.image_relpath(case, index), DDI_TONE[case.skin_type],
                "True" if case.malignant else "False", DDI_DX[case.diagnosis]]

    def finish(self):
        return {"ddi_metadata.csv": _csv_text(["DDI_ID", "DDI_file", "skin_tone", "malignant", "disease"],
                                              self.rows)}


LAYOUTS = {"generic": Generic, "isic2019": Isic2019, "isic2020": Isic2020, "ham10000": Ham10000,
           "padufes20": PadUfes, "ddi": Ddi}


def write_layout(cases: Iterable, n: int, out: Path, layout: str,
                 progress: Callable[[int, int], None] | None = None) -> Path:
    if layout not in LAYOUTS:
        raise BsxError(f"unknown layout '{layout}'", fix=f"use one of: {', '.join(LAYOUTS)}")
    if out.exists() and any(out.iterdir()):
        raise BsxError("output folder is not empty", path=out, fix="choose a new folder or remove this one")
    out.mkdir(parents=True, exist_ok=True)
    writer = LAYOUTS[layout](out, n)
    for index, case in enumerate(cases):
        writer.save(case, index)
        if progress:
            progress(index + 1, n)
    files = writer.finish()
    for name, text in files.items():
        atomic_write_text(out / name, text, mode=0o644)
    return out / next(iter(files))
