//! Criterion benchmarks of the pure core live in benches/.
