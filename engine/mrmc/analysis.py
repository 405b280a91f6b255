"""One call that runs the whole MRMC analysis of a study and shapes it for JSON and tables."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cohorts.atomic import to_jsonable
from cohorts.errors import BsxError
from engine.mrmc.agreement import Agreement, OperatingPoint, operating_points, reader_agreement
from engine.mrmc.auc import delong_covariance, empirical_auc, jackknife_covariance
from engine.mrmc.data import MrmcData
from engine.mrmc.dbm import DbmResult, dbm_analysis
from engine.mrmc.obuchowski_rockette import (
    AnovaTable, DesignResult, Difference, ErrorCovariances, GlobalTest, SingleModality, VarianceComponents,
    anova_of_aucs, error_covariances, fixed_readers_random_cases, random_readers_fixed_cases,
    random_readers_random_cases, variance_components,
)
from engine.mrmc.standalone import AlgorithmComparison, OneSampleTest, algorithm_vs_readers

COVARIANCE_METHODS = ("jackknife", "delong")


@dataclass(frozen=True)
class MrmcResult:
    modalities: list[str]
    readers: list[str]
    n_normal: int
    n_abnormal: int
    covariance_method: str
    auc: np.ndarray
    mean_auc: np.ndarray
    anova: AnovaTable
    covariances: ErrorCovariances
    components: VarianceComponents | None
    rrrc: DesignResult
    frrc: DesignResult
    rrfc: DesignResult
    dbm: DbmResult | None
    algorithm: list[AlgorithmComparison] = field(default_factory=list)
    operating_points: list[OperatingPoint] = field(default_factory=list)
    agreement: list[Agreement] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The `bsx reader analyze --json` object (NaN becomes null)."""
        out: dict[str, Any] = {
            "modalities": self.modalities,
            "readers": self.readers,
            "n_normal": self.n_normal,
            "n_abnormal": self.n_abnormal,
            "covariance": self.covariance_method,
            "auc": {m: dict(zip(self.readers, self.auc[i].tolist())) for i, m in enumerate(self.modalities)},
            "mean_auc": dict(zip(self.modalities, self.mean_auc.tolist())),
            "comparisons": self._comparisons(),
            "global": self._global() if len(self.modalities) > 1 else None,
            "single_modality": {
                s.modality: {d.design: _single_json(d.single_modality[i]) for d in self._designs()}
                for i, s in enumerate(self.rrrc.single_modality)},
            "single_reader_frrc": [
                {"reader": s.reader, **_difference_json(s.difference), "var_error": s.var_error, "cov1": s.cov1}
                for s in self.frrc.single_reader],
            "anova": _plain(self.anova),
            "error_covariances": _plain(self.covariances),
            "variance_components": _plain(self.components) if self.components else None,
            "dbm": _dbm_json(self.dbm) if self.dbm else None,
            "warnings": self.warnings,
        }
        if self.algorithm:
            out["algorithm"] = {**_algorithm_json(self.algorithm[0]),
                                "by_modality": [_algorithm_json(a) for a in self.algorithm]}
        if self.operating_points:
            out["operating_points"] = [_plain(p) for p in self.operating_points]
        if self.agreement:
            out["agreement"] = [{"modality": a.modality, "basis": a.basis,
                                 "cohen_kappa": [{"a": k[0], "b": k[1], "kappa": v} for k, v in a.cohen_kappa.items()],
                                 "fleiss_kappa": a.fleiss_kappa, "icc_2_1": a.icc} for a in self.agreement]
        return to_jsonable(out)

    def _designs(self) -> list[DesignResult]:
        return [self.rrrc, self.frrc, self.rrfc]

    def _comparisons(self) -> list[dict[str, Any]]:
        rows = []
        for k, diff in enumerate(self.rrrc.differences):
            row = {"a": diff.a, "b": diff.b, "difference": diff.estimate}
            for design in self._designs():
                row[design.design] = _difference_json(design.differences[k])
            rows.append(row)
        return rows

    def _global(self) -> dict[str, Any]:
        return {d.design: _global_json(d.global_test) for d in self._designs()}


def analyze_mrmc(data: MrmcData, *, covariance: str = "jackknife", algorithm_reader: str | None = None,
                 threshold: float | None = None) -> MrmcResult:
    """OR (three designs), DBM cross-check, optional algorithm comparison, operating points, agreement."""
    if covariance not in COVARIANCE_METHODS:
        raise BsxError(f"unknown covariance method '{covariance}'", fix=f"use one of {', '.join(COVARIANCE_METHODS)}")
    warnings = list(data.warnings) + data.constant_reader_warnings()
    comparisons: list[AlgorithmComparison] = []
    if algorithm_reader is not None:
        comparisons, data = _split_algorithm(data, algorithm_reader, covariance)
    ratings, truth = data.ratings, data.truth
    t, r = ratings.shape[:2]
    auc = empirical_auc(ratings, truth)
    cov = (delong_covariance if covariance == "delong" else jackknife_covariance)(ratings, truth)
    anova = anova_of_aucs(auc)
    err = error_covariances(cov)
    components = variance_components(anova, err, t, r) if r > 1 else None
    if not err.var_error > 0:
        warnings.append("no case-sampling variance (every reader separates the classes perfectly or rates "
                        "everything alike): tests and CIs are undefined")
    if r == 1:
        warnings.append("one reader: random-reader analyses (RRRC, RRFC) are undefined; only fixed-reader results")
    if t == 1:
        warnings.append("one modality: no modality comparison; single-modality CIs only")
    rrrc = random_readers_random_cases(auc, data.modalities, anova, err)
    rrfc = random_readers_fixed_cases(auc, data.modalities, anova)
    if r == 1:
        rrrc, rrfc = _undefined(rrrc), _undefined(rrfc)
    frrc = fixed_readers_random_cases(auc, data.modalities, data.readers, anova, err)
    dbm = dbm_analysis(ratings, truth, data.modalities) if covariance == "jackknife" and r > 1 else None
    points = operating_points(ratings, truth, threshold, data.modalities, data.readers) if threshold is not None else []
    agreement = reader_agreement(ratings, data.modalities, data.readers, threshold)
    return MrmcResult(data.modalities, data.readers, data.n_normal, data.n_abnormal, covariance, auc,
                      auc.mean(axis=1), anova, err, components, rrrc, frrc, rrfc, dbm, comparisons,
                      points, agreement, warnings)


def _split_algorithm(data: MrmcData, algorithm: str, covariance: str) -> tuple[list[AlgorithmComparison], MrmcData]:
    if algorithm not in data.readers:
        raise BsxError(f"algorithm reader '{algorithm}' is not among the readers ({', '.join(data.readers)})",
                       fix="pass the reader id the algorithm's ratings are stored under")
    humans = [r for r in data.readers if r != algorithm]
    if not humans:
        raise BsxError("the study has no human readers besides the algorithm")
    a = data.readers.index(algorithm)
    h = [data.readers.index(r) for r in humans]
    comparisons = [algorithm_vs_readers(data.ratings[i, a], data.ratings[i][h], data.truth, modality=m,
                                        algorithm_name=algorithm, reader_names=humans, covariance=covariance)
                   for i, m in enumerate(data.modalities)]
    return comparisons, data.select(readers=humans)


def _undefined(design: DesignResult) -> DesignResult:
    nan = float("nan")
    diffs = [Difference(d.a, d.b, d.estimate, nan, d.statistic, nan, nan, nan, (nan, nan)) for d in design.differences]
    single = [SingleModality(s.modality, s.auc, nan, nan, (nan, nan), s.ms_r, s.var_error, s.cov2)
              for s in design.single_modality]
    return DesignResult(design.design, None, diffs, single, [])


def _plain(obj: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(obj).items()}


def _global_json(test: GlobalTest | None) -> dict[str, Any] | None:
    if test is None:
        return None
    if test.statistic == "chi2":
        return {"chi2": test.value, "df": test.df_num, "p": test.p, "error_term": test.error_term}
    return {"f": test.value, "df_num": test.df_num, "df_den": test.df_den, "p": test.p, "error_term": test.error_term}


def _difference_json(d: Difference) -> dict[str, Any]:
    if d.statistic == "z":
        return {"chi2": d.value ** 2, "z": d.value, "df": 1, "p": d.p, "se": d.se, "ci": list(d.ci)}
    return {"t": d.value, "df": d.df, "p": d.p, "se": d.se, "ci": list(d.ci)}


def _single_json(s: SingleModality) -> dict[str, Any]:
    return {"auc": s.auc, "se": s.se, "df": s.df, "ci": list(s.ci)}


def _one_sample_json(t: OneSampleTest | None) -> dict[str, Any] | None:
    if t is None:
        return None
    return {t.statistic: t.value, "df": t.df, "p": t.p, "se": t.se, "ci": list(t.ci)}


def _algorithm_json(a: AlgorithmComparison) -> dict[str, Any]:
    return {"modality": a.modality, "reader": a.algorithm, "auc": a.auc, "mean_reader_auc": a.mean_reader_auc,
            "difference": a.difference, "reader_auc": dict(zip(a.readers, a.reader_auc.tolist())),
            "rrrc": _one_sample_json(a.rrrc), "frrc": _one_sample_json(a.frrc), "rrfc": _one_sample_json(a.rrfc)}


def _dbm_json(d: DbmResult) -> dict[str, Any]:
    return {"mean_squares": d.mean_squares, "df": d.degrees_of_freedom,
            "components": {"var_r": d.var_r, "var_c": d.var_c, "var_tr": d.var_tr, "var_tc": d.var_tc,
                           "var_rc": d.var_rc, "var_error": d.var_error},
            "global": {k: _global_json(getattr(d, k)) for k in ("rrrc", "frrc", "rrfc")},
            "rrrc_differences": [{"a": x.a, "b": x.b, **_difference_json(x)} for x in d.rrrc_differences]}
