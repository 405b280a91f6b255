"""Engine: models, training, inference and every analysis; writes run folders.

Never imports textual or reportlab.
"""
