//! Exists so that `[build-dependencies]` in Cargo.toml take part in feature
//! resolution (see the comment there); it generates nothing.
fn main() {
    // Without this, cargo reruns the script (and relinks headstart) whenever any
    // file of the package changes, data and docs included.
    println!("cargo::rerun-if-changed=build.rs");
}
