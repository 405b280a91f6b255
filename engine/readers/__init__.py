"""Reader studies: interchange formats for ratings and the SQLite study file."""
from engine.readers.interchange import (
    FORMATS, LONG_COLUMNS, from_mrmc_data, read_ratings, to_mrmc_data, write_ratings,
)

__all__ = ["FORMATS", "LONG_COLUMNS", "from_mrmc_data", "read_ratings", "to_mrmc_data", "write_ratings"]
