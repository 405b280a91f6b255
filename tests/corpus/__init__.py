"""Bad-input corpus: malformed cohorts, checkpoints, run folders and study files, generated on the fly."""
