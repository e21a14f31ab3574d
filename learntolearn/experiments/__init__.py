"""The research record: paper presets (YAML), result tables, the reproduction harness and plots."""
