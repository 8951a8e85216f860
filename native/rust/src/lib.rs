//! catoptc's native Rust runtime, on its own: the same `runtime` module that every generated
//! crate holds as `src/runtime.rs`, so that `cargo test` here covers it without any plan.

pub mod runtime;
