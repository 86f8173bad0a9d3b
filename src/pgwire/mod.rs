//! PostgreSQL frontend/backend protocol (3.0 and 3.2) for passive capture:
//! a pure zero-copy message decoder ([`decode`], [`decode_startup`]) and a
//! per-connection framer ([`ConnDecoder`]) that follows the startup phase,
//! buffers only messages straddling segments and resynchronises after gaps.

mod fields;
mod framer;
mod message;
#[cfg(test)]
mod tests;

pub(crate) use fields::{ErrorFields, List, error_field_name, startup_params};
pub(crate) use framer::sender_of;
pub use framer::{Anomaly, ConnDecoder, Event};
#[cfg(test)]
pub(crate) use message::decode;
pub use message::{Body, Msg};
pub(crate) use message::{
    CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, Head, SSL_REQUEST_CODE, oversize_head,
};

/// What protects a connection's stream after startup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encryption {
    /// Plaintext (the session stage's word once the server answered startup).
    None,
    Tls,
    /// GSSAPI encryption.
    Gss,
}

impl Encryption {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Encryption::None => "none",
            Encryption::Tls => "tls",
            Encryption::Gss => "gss",
        }
    }
}

/// Direction of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Client to server.
    Frontend,
    /// Server to client.
    Backend,
}
