//! Redaction, applied once in front of every presenter: [`Redact`] wraps the sink,
//! so JSON, the text trace, the summary and the TUI only ever see records whose
//! secrets and (with `--redact-params`) bind values are gone. Presenters show
//! [`REDACTED`] where [`Msg::withheld`] or [`QueryRecord::params_withheld`] says so.

use super::Sink;
use super::wrap::Wrap;
use crate::pgwire::{Body, List, Msg};
use crate::session::record::{QueryRecord, SessionRecord};
use crate::tcp::ConnMeta;
use std::io;

/// What presenters show in place of a withheld value.
pub(crate) const REDACTED: &str = "<redacted>";

/// What to withhold.
#[derive(Clone, Copy, Debug, Default)]
pub struct Redaction {
    /// Show passwords and other secrets (`--show-secrets`).
    pub show_secrets: bool,
    /// Withhold bind parameter values too (`--redact-params`).
    pub redact_params: bool,
}

/// Stands in for a cancel key: its length is shown, its bytes never.
static ZEROS: [u8; 256] = [0; 256];

impl Redaction {
    /// `msg` with its withheld values removed, or `None` when nothing is withheld.
    pub(crate) fn message<'a>(&self, msg: &Msg<'a>) -> Option<Msg<'a>> {
        let secrets = !self.show_secrets;
        let body = match msg.body {
            Body::PasswordMessage { .. } if secrets => Body::PasswordMessage { password: &[] },
            Body::SaslInitialResponse { mechanism, .. } if secrets => Body::SaslInitialResponse {
                mechanism,
                data: None,
            },
            Body::SaslResponse { .. } if secrets => Body::SaslResponse { data: &[] },
            Body::GssResponse { .. } if secrets => Body::GssResponse { data: &[] },
            Body::AuthenticationSaslContinue { .. } if secrets => {
                Body::AuthenticationSaslContinue { data: &[] }
            }
            Body::AuthenticationSaslFinal { .. } if secrets => {
                Body::AuthenticationSaslFinal { data: &[] }
            }
            Body::AuthenticationGssContinue { .. } if secrets => {
                Body::AuthenticationGssContinue { data: &[] }
            }
            Body::CancelRequest { pid, key } if secrets => Body::CancelRequest {
                pid,
                key: zeros(key),
            },
            Body::BackendKeyData { pid, key } if secrets => Body::BackendKeyData {
                pid,
                key: zeros(key),
            },
            Body::Bind {
                portal,
                statement,
                param_formats,
                result_formats,
                ..
            } if self.redact_params => Body::Bind {
                portal,
                statement,
                param_formats,
                params: List::empty(),
                result_formats,
            },
            _ => return None,
        };
        Some(Msg {
            body,
            withheld: true,
            ..*msg
        })
    }

    /// Removes a statement's bind values when they are withheld.
    pub(crate) fn query(&self, q: &mut QueryRecord) {
        if self.touches(q) {
            q.params = Default::default();
            q.params_withheld = true;
        }
    }

    /// Whether [`Redaction::query`] changes `q`.
    fn touches(&self, q: &QueryRecord) -> bool {
        self.redact_params && !q.params.is_empty()
    }
}

/// Cancel keys are 4 to 256 bytes long (the decoder checks it).
fn zeros(key: &[u8]) -> &'static [u8] {
    &ZEROS[..key.len().min(ZEROS.len())]
}

/// A sink that hands `inner` only redacted records.
pub struct Redact<S> {
    inner: S,
    policy: Redaction,
}

impl<S: Sink> Redact<S> {
    /// Withholds what `policy` says from everything passed on to `inner`.
    pub fn new(inner: S, policy: Redaction) -> Self {
        Redact { inner, policy }
    }
}

impl<S: Sink> Wrap for Redact<S> {
    type Inner = S;
    fn inner(&mut self) -> &mut S {
        &mut self.inner
    }
    fn inner_ref(&self) -> &S {
        &self.inner
    }
    fn message(&mut self, conn: &ConnMeta, ts: i64, msg: &Msg<'_>) -> io::Result<()> {
        match self.policy.message(msg) {
            Some(m) => self.inner.message(conn, ts, &m),
            None => self.inner.message(conn, ts, msg),
        }
    }
    fn query(
        &mut self,
        conn: &ConnMeta,
        session: &SessionRecord,
        q: &QueryRecord,
    ) -> io::Result<()> {
        if !self.policy.touches(q) {
            return self.inner.query(conn, session, q);
        }
        let mut q = q.clone();
        self.policy.query(&mut q);
        self.inner.query(conn, session, &q)
    }
    fn query_owned(
        &mut self,
        conn: &ConnMeta,
        session: &SessionRecord,
        mut q: Box<QueryRecord>,
    ) -> io::Result<()> {
        self.policy.query(&mut q);
        self.inner.query_owned(conn, session, q)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::pgwire::Dir;

    /// A frontend message with `body`.
    pub(crate) fn msg(body: Body<'_>) -> Msg<'_> {
        Msg {
            dir: Dir::Frontend,
            typ: Some(b'p'),
            len: 20,
            body,
            withheld: false,
        }
    }

    #[test]
    fn secrets_are_withheld_unless_shown() {
        let key = [7u8; 32];
        let cases = [
            Body::PasswordMessage {
                password: b"hunter2",
            },
            Body::SaslResponse {
                data: b"c=biws,r=abc,p=proof",
            },
            Body::CancelRequest { pid: 42, key: &key },
            Body::BackendKeyData { pid: 42, key: &key },
        ];
        for body in cases {
            let hide = Redaction::default();
            let m = hide.message(&msg(body)).expect("withheld");
            assert!(m.withheld);
            let shown = format!("{:?}", m.body);
            assert!(
                !shown.contains("104, 117") && !shown.contains("7, 7"),
                "{shown}"
            );
            if let Body::CancelRequest { key: k, .. } | Body::BackendKeyData { key: k, .. } = m.body
            {
                assert_eq!(k.len(), key.len());
            }
            let show = Redaction {
                show_secrets: true,
                redact_params: false,
            };
            assert_eq!(show.message(&msg(body)), None);
        }
        // Statements are not secrets.
        assert_eq!(
            Redaction::default().message(&msg(Body::Query { sql: b"SELECT 1" })),
            None
        );
    }
}
