"""Malformed and hostile checkpoints through `bsx validate`: refused with exit 2 and a clear message,
no traceback, the checkpoint folder untouched, and no code from a pickle ever runs."""
from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from tests.corpus.make_corpus import CorpusCase, corpus_params, run_case, write_pickle_payload

CASES = corpus_params(("checkpoint",))


@pytest.mark.parametrize("case", CASES)
def test_malformed_checkpoint(case: CorpusCase):
    assert run_case(case) == []
    assert not Path(case.argv[case.argv.index("--out") + 1], "predictions.parquet").exists()


def test_corpus_has_the_untrusted_checkpoint_cases():
    cases = [param.values[0] for param in CASES]
    assert len(cases) >= 15
    assert sum(case.marker is not None for case in cases) == 2
    assert all(case.untrusted for case in cases if case.marker is not None)


@pytest.mark.parametrize("legacy", [False, True])
def test_payload_really_runs_code_when_unpickled_unsafely(tmp_path, legacy):
    """Positive control: the payload is live, so the refusal above is what keeps the marker absent."""
    import torch

    marker = tmp_path / "PWNED"
    path = write_pickle_payload(tmp_path / "evil.pt", marker, legacy)
    if legacy:
        pickle.loads(path.read_bytes())
    else:
        torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("legacy", [False, True])
def test_loader_refuses_payload_directly(tmp_path, legacy):
    from cohorts.errors import BsxError
    from engine.checkpoint import _load_state

    marker = tmp_path / "PWNED"
    with pytest.raises(BsxError, match="refused"):
        _load_state(write_pickle_payload(tmp_path / "evil.pt", marker, legacy))
    assert not marker.exists()
