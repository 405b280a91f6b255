"""Terminal front ends: `bsx` (headless batch CLI) and the Textual workstation."""
