//! pgscope: a passive PostgreSQL wire-protocol analyzer.
//!
//! Data flows one way, one stage a module:
//! capture → net → tcp → pgwire (tls) → session → output, with the sinks in front of
//! the presenters (pooler, metrics) and the TUI after it (docs/architecture.md,
//! "Layering"; scripts/layers.sh checks it).

// Unsafe code only where an item allows it, each block with its invariant
// (docs/architecture.md, "unsafe").
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]
// `pub` only for what the binary, the example, the integration tests and the fuzz
// targets reach (docs/architecture.md, "Public surface").
#![warn(unreachable_pub, missing_docs)]

pub mod anomaly;
pub mod capture;
pub mod cli;
pub mod filter;
pub(crate) mod hints;
pub mod metrics;
pub mod net;
pub mod output;
pub mod pgwire;
pub mod pipeline;
pub(crate) mod pooler;
pub mod privs;
pub mod session;
#[cfg(any(test, feature = "synth"))]
pub mod synth;
pub mod tcp;
pub(crate) mod text;
pub mod tls;
pub mod tui;
