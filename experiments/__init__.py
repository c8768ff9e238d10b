"""The LRA benchmarking harness: data, Lightning modules, training, benchmarks, results."""
