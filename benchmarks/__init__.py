"""Speed measurements: ``python -m benchmarks`` (the README table) and the detection tuning scripts."""
