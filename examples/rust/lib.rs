//! Examples live in `examples/rust/*.rs`; run one with
//! `cargo run -p kerno-examples --example embed_agent`.
