"""PDF reports built from a run folder (reportlab). Never imports textual."""
