//! The kinds of anomaly records (`pgwire.anomaly.kind`), below every stage: each
//! stage that notices something names one of these, and presenters and views match
//! on the enum, never on its word. One list, as docs/schema.md gives it.

/// Declares [`AnomalyKind`], its words and [`AnomalyKind::ALL`] from one list, so
/// that no kind can have a word without being listed or the other way round.
macro_rules! kinds {
    ($($(#[$doc:meta])* $variant:ident => $word:literal,)*) => {
        /// What an anomaly record reports (its `pgwire.anomaly.kind`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum AnomalyKind {
            $($(#[$doc])* $variant,)*
        }

        impl AnomalyKind {
            /// Every kind, in the order docs/schema.md lists them.
            #[cfg(test)]
            pub(crate) const ALL: &[AnomalyKind] = &[$(AnomalyKind::$variant,)*];

            /// The word the records use.
            pub(crate) fn as_str(self) -> &'static str {
                match self {
                    $(AnomalyKind::$variant => $word,)*
                }
            }
        }
    };
}

kinds! {
    /// The TCP layer lost bytes.
    Gap => "gap",
    /// A message boundary was found again after losing sync.
    Resync => "resync",
    /// A length or body that does not parse.
    Malformed => "malformed",
    /// A type byte not valid in its direction.
    UnknownMessage => "unknown_message",
    /// TLS or GSSAPI encryption started; the rest is not decoded.
    EncryptionSwitch => "encryption",
    /// A message longer than the buffer cap was not kept.
    Oversize => "oversize",
    /// The connection does not speak the PostgreSQL protocol.
    NotPostgres => "not_postgres",
    /// The capture file ends inside a record.
    TruncatedCapture => "truncated_capture",
    /// A client pipelined more requests than the pending queue holds.
    QueueOverflow => "queue_overflow",
    /// Frames of a link type net cannot read (once per type, at the end).
    UnsupportedLinktype => "unsupported_linktype",
    /// A record of impossible length or a malformed block: the rest is not read.
    CorruptCapture => "corrupt_capture",
    /// Packet times went back.
    ClockBackwards => "clock_backwards",
    /// A retransmitted segment carried other bytes than the copy decoded.
    RetransmissionConflict => "retransmission_conflict",
    /// The pooler correlator's window was full: server statements went out unlinked.
    PoolerWindowFull => "pooler_window_full",
    /// libpcap dropped packets.
    CaptureDrops => "capture_drops",
    /// `--tls-keylog`: the key log has no secrets for the handshake.
    TlsNoKey => "tls_no_key",
    /// A TLS record failed authentication: wrong key or corrupted bytes.
    TlsAuthFailed => "tls_auth_failed",
    /// The TLS stream ended inside a record, or lost bytes.
    TlsTruncated => "tls_truncated",
    /// A cipher suite (or TLS version) pgscope does not decrypt.
    TlsUnsupported => "tls_unsupported",
    /// Not a well-formed TLS stream.
    TlsMalformed => "tls_malformed",
}

#[cfg(test)]
mod tests {
    use super::AnomalyKind;

    /// The kinds docs/schema.md lists for `pgwire.anomaly.kind`: the backquoted
    /// words of its row outside parentheses (which explain them).
    fn documented() -> Vec<String> {
        let schema = include_str!("../docs/schema.md");
        let row = schema
            .lines()
            .find(|l| l.starts_with("| `pgwire.anomaly.kind` |"))
            .expect("docs/schema.md has a pgwire.anomaly.kind row");
        let row = &row["| `pgwire.anomaly.kind` |".len()..];
        let (mut depth, mut outside) = (0u32, String::new());
        for c in row.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                c if depth == 0 => outside.push(c),
                _ => {}
            }
        }
        outside
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn schema_lists_every_kind_and_no_other() {
        let words: Vec<&str> = AnomalyKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            documented(),
            words,
            "docs/schema.md and AnomalyKind disagree"
        );
    }
}
