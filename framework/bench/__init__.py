"""``execlab bench``: throughput, latency, memory and guard cost of the whole pipeline."""
