//! TLS decryption from an NSS key log: pure (no I/O but reading the key log files),
//! so a connection's TLS stream goes in and its plaintext comes out.

mod conn;
pub(crate) mod crypto;
mod keylog;
#[cfg(test)]
mod tests;

pub use conn::KeySource;
pub(crate) use conn::{Conn, Info, Out, Problem};
pub use keylog::{KeyFiles, KeyLog, Secret, Secrets};
