"""judge/benchmarks package."""
