//! End-to-end tests: the real `headstart` binary (and the libraries in-process
//! where a test needs their internals) on small real data, built as one test
//! binary that provisions ONNX Runtime and the default backbone once
//! ([`common::home`]).
//!
//! Tests marked `#[ignore = "slow tier..."]` (pip provisioning races, killed and
//! resumed runs, concurrent shard processes, Python interop, a local S3 server) run with
//! `just test-all`, and in CI.

mod common;

mod byo;
mod deploy;
mod extract;
mod foundation;
mod objstore;
mod ours;
mod parquet_writers;
mod python;
mod quantize;
mod report;
mod scale;
mod shards_recipe;
