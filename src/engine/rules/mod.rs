//! The rules weir adds to DataFusion's optimizer, each measured on the TPC-H pipeline
//! (docs/src/benchmarks.md) and checked to give the results DataFusion gives without it. They
//! import nothing of weir.

pub mod build_side;
pub mod compact_views;
pub mod conjuncts;
pub mod decimal;
pub mod joins;
pub mod scan_filters;
