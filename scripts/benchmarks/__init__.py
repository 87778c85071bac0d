"""The comparisons of scripts/bench.py, one module each: `run(sizes, smoke)` returns its table
rows; `worker(key, sizes)` measures one variant in a fresh process (`bench.py --worker KEY`)."""
