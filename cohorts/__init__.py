"""Cohorts: what a cohort is and how one gets in. Imports no torch, no textual."""
from cohorts.errors import BsxError

__all__ = ["BsxError", "load_cohort"]


def load_cohort(*args, **kwargs):  # re-exported lazily so `import cohorts` stays light
    from cohorts.cohort import load_cohort as _load

    return _load(*args, **kwargs)
