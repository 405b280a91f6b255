"""MRMC statistics for reader studies: empirical AUC, Obuchowski-Rockette with Hillis ddf, DBM,
algorithm vs readers, operating points and agreement. Reproduces OR-DBM MRMC 2.51."""
from engine.mrmc.agreement import (
    Agreement, OperatingPoint, cohen_kappa, fleiss_kappa, icc_absolute_agreement, operating_points,
    reader_agreement, wilson_interval,
)
from engine.mrmc.analysis import COVARIANCE_METHODS, MrmcResult, analyze_mrmc
from engine.mrmc.auc import (
    delong_covariance, empirical_auc, jackknife_aucs, jackknife_covariance, jackknife_pseudovalues,
    structural_components,
)
from engine.mrmc.data import MrmcData
from engine.mrmc.dbm import DbmResult, dbm_analysis
from engine.mrmc.obuchowski_rockette import (
    AnovaTable, DesignResult, Difference, ErrorCovariances, GlobalTest, SingleModality,
    SingleReaderDifference, VarianceComponents,
)
from engine.mrmc.standalone import AlgorithmComparison, OneSampleTest, algorithm_vs_readers

__all__ = [
    "Agreement", "AlgorithmComparison", "AnovaTable", "COVARIANCE_METHODS", "DbmResult", "DesignResult",
    "Difference", "ErrorCovariances", "GlobalTest", "MrmcData", "MrmcResult", "OneSampleTest",
    "OperatingPoint", "SingleModality", "SingleReaderDifference", "VarianceComponents",
    "algorithm_vs_readers", "analyze_mrmc", "cohen_kappa", "dbm_analysis", "delong_covariance",
    "empirical_auc", "fleiss_kappa", "icc_absolute_agreement", "jackknife_aucs", "jackknife_covariance",
    "jackknife_pseudovalues", "operating_points", "reader_agreement", "structural_components",
    "wilson_interval",
]
