//! Message bodies and the pure, zero-copy decoder.

use super::Dir;
use super::fields::{Bad, Cursor, ErrorFields, Fields, Formats, List, Oids, Strings, Values};

pub(crate) const SSL_REQUEST_CODE: u32 = 80877103;
pub(crate) const GSSENC_REQUEST_CODE: u32 = 80877104;
pub(crate) const CANCEL_REQUEST_CODE: u32 = 80877102;

/// Protocol 3.2 lets cancel keys grow up to 256 bytes; 3.0 keys are 4 bytes.
const CANCEL_KEY_LEN: std::ops::RangeInclusive<usize> = 4..=256;

/// One framed message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msg<'a> {
    pub(crate) dir: Dir,
    /// Type byte; `None` for untyped startup packets and one-byte answers.
    pub(crate) typ: Option<u8>,
    /// The length field (includes itself); total packet length for untyped
    /// packets; 1 for the one-byte SSL/GSSENC answers.
    pub(crate) len: u32,
    /// The decoded body.
    pub body: Body<'a>,
    /// Values of the body were withheld before presentation (secrets, or bind
    /// parameters with `--redact-params`): their slices are emptied or zeroed and
    /// presenters show a placeholder. Never set by decoding.
    pub(crate) withheld: bool,
}

/// Decoded body; byte strings borrow from the captured data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body<'a> {
    // Untyped startup-phase packets (frontend).
    /// StartupMessage: protocol version and parameters.
    Startup {
        /// Protocol major version (3).
        major: u16,
        /// Protocol minor version (0 or 2).
        minor: u16,
        /// Raw NUL-separated name/value list without the final terminator;
        /// iterate with [`super::startup_params`].
        params: &'a [u8],
    },
    /// SSLRequest: the client asks for TLS.
    SslRequest,
    /// GSSENCRequest: the client asks for GSSAPI encryption.
    GssEncRequest,
    /// CancelRequest, on a connection of its own.
    CancelRequest {
        /// Process id of the backend to cancel.
        pid: u32,
        /// Secret key (4 bytes before protocol 3.2, up to 256 since).
        key: &'a [u8],
    },
    /// An untyped startup packet with a request code this decoder does not know.
    UnknownStartup {
        /// The request code (the version field).
        code: u32,
    },
    // One-byte answers (backend).
    /// The server's one-byte answer to SSLRequest.
    SslResponse {
        /// `S` (TLS follows) or `N` (refused).
        answer: u8,
    },
    /// The server's one-byte answer to GSSENCRequest.
    GssEncResponse {
        /// `G` (GSSAPI follows) or `N` (refused).
        answer: u8,
    },

    // Frontend typed messages.
    /// Query (`Q`): simple query protocol.
    Query {
        /// The query string.
        sql: &'a [u8],
    },
    /// Parse (`P`): prepares a statement.
    Parse {
        /// Prepared statement name (empty: the unnamed one).
        statement: &'a [u8],
        /// The query string.
        query: &'a [u8],
        /// Parameter type OIDs the client specified (0: unspecified).
        param_types: Oids<'a>,
    },
    /// Bind (`B`): a portal from a prepared statement and parameters.
    Bind {
        /// Portal name (empty: the unnamed one).
        portal: &'a [u8],
        /// Prepared statement name.
        statement: &'a [u8],
        /// Parameter format codes (0 text, 1 binary; none or one apply to all).
        param_formats: Formats<'a>,
        /// Parameter values (`None`: NULL).
        params: Values<'a>,
        /// Result column format codes.
        result_formats: Formats<'a>,
    },
    /// Describe (`D`) of a statement or portal.
    Describe {
        /// `S` statement or `P` portal.
        kind: u8,
        /// Statement or portal name.
        name: &'a [u8],
    },
    /// Close (`C`) of a statement or portal.
    Close {
        /// `S` statement or `P` portal.
        kind: u8,
        /// Statement or portal name.
        name: &'a [u8],
    },
    /// Execute (`E`) of a portal.
    Execute {
        /// Portal name.
        portal: &'a [u8],
        /// Row limit (0: none).
        max_rows: i32,
    },
    /// Sync (`S`): ends an extended-query batch.
    Sync,
    /// Flush (`H`).
    Flush,
    /// Terminate (`X`).
    Terminate,
    /// CopyFail (`f`): the client aborts COPY FROM STDIN.
    CopyFail {
        /// The client's reason.
        message: &'a [u8],
    },
    /// FunctionCall (`F`): the fast-path interface.
    FunctionCall {
        /// OID of the function.
        oid: u32,
        /// Argument format codes.
        arg_formats: Formats<'a>,
        /// Argument values (`None`: NULL).
        args: Values<'a>,
        /// Result format code.
        result_format: u16,
    },
    /// PasswordMessage (`p`): cleartext or MD5 password.
    PasswordMessage {
        /// The password (cleartext or `md5`-hashed): a secret.
        password: &'a [u8],
    },
    /// SASLInitialResponse (`p`): the chosen mechanism and the client-first message.
    SaslInitialResponse {
        /// The chosen mechanism (e.g. `SCRAM-SHA-256`).
        mechanism: &'a [u8],
        /// Client-first message (`None`: length -1).
        data: Option<&'a [u8]>,
    },
    /// SASLResponse (`p`): a later SASL message from the client.
    SaslResponse {
        /// Mechanism-specific data.
        data: &'a [u8],
    },
    /// GSSResponse (`p`): a GSSAPI or SSPI token from the client.
    GssResponse {
        /// The token.
        data: &'a [u8],
    },

    // Both directions.
    /// CopyData (`d`).
    CopyData {
        /// A chunk of the COPY stream.
        data: &'a [u8],
    },
    /// CopyDone (`c`).
    CopyDone,

    // Backend typed messages.
    /// AuthenticationOk (`R`, 0).
    AuthenticationOk,
    /// AuthenticationKerberosV5 (`R`, 2).
    AuthenticationKerberosV5,
    /// AuthenticationCleartextPassword (`R`, 3).
    AuthenticationCleartextPassword,
    /// AuthenticationMD5Password (`R`, 5).
    AuthenticationMd5Password {
        /// Salt for the MD5 hash.
        salt: [u8; 4],
    },
    /// AuthenticationGSS (`R`, 7).
    AuthenticationGss,
    /// AuthenticationGSSContinue (`R`, 8).
    AuthenticationGssContinue {
        /// GSSAPI or SSPI token.
        data: &'a [u8],
    },
    /// AuthenticationSSPI (`R`, 9).
    AuthenticationSspi,
    /// AuthenticationSASL (`R`, 10): the mechanisms offered.
    AuthenticationSasl {
        /// Mechanism names.
        mechanisms: Strings<'a>,
    },
    /// AuthenticationSASLContinue (`R`, 11).
    AuthenticationSaslContinue {
        /// Server-first message.
        data: &'a [u8],
    },
    /// AuthenticationSASLFinal (`R`, 12).
    AuthenticationSaslFinal {
        /// Server-final message.
        data: &'a [u8],
    },
    /// An authentication request (`R`) with a code this decoder does not know.
    AuthenticationUnknown {
        /// The authentication code.
        code: u32,
        /// The rest of the body.
        data: &'a [u8],
    },
    /// BackendKeyData (`K`): what a CancelRequest must quote.
    BackendKeyData {
        /// Process id of the backend.
        pid: u32,
        /// Secret key for CancelRequest.
        key: &'a [u8],
    },
    /// NegotiateProtocolVersion (`v`).
    NegotiateProtocolVersion {
        /// Newest minor protocol version the server supports.
        newest_minor: u32,
        /// Names of the `_pq_.` options the server did not recognise.
        options: Strings<'a>,
    },
    /// ParameterStatus (`S`).
    ParameterStatus {
        /// Run-time parameter name.
        name: &'a [u8],
        /// Its current value.
        value: &'a [u8],
    },
    /// ReadyForQuery (`Z`).
    ReadyForQuery {
        /// Transaction status: `I` idle, `T` in a transaction, `E` failed transaction.
        status: u8,
    },
    /// RowDescription (`T`).
    RowDescription {
        /// One description per result column.
        fields: Fields<'a>,
    },
    /// DataRow (`D`).
    DataRow {
        /// Column values (`None`: NULL).
        columns: Values<'a>,
    },
    /// CommandComplete (`C`).
    CommandComplete {
        /// Command tag, e.g. `SELECT 1`.
        tag: &'a [u8],
    },
    /// EmptyQueryResponse (`I`).
    EmptyQueryResponse,
    /// ErrorResponse (`E`).
    ErrorResponse {
        /// The error's fields (severity, code, message, ...).
        fields: ErrorFields<'a>,
    },
    /// NoticeResponse (`N`).
    NoticeResponse {
        /// The notice's fields (severity, code, message, ...).
        fields: ErrorFields<'a>,
    },
    /// ParseComplete (`1`).
    ParseComplete,
    /// BindComplete (`2`).
    BindComplete,
    /// CloseComplete (`3`).
    CloseComplete,
    /// NoData (`n`).
    NoData,
    /// PortalSuspended (`s`): Execute's row limit reached.
    PortalSuspended,
    /// ParameterDescription (`t`).
    ParameterDescription {
        /// Parameter type OIDs.
        types: Oids<'a>,
    },
    /// CopyInResponse (`G`).
    CopyInResponse {
        /// Overall format: 0 text, 1 binary.
        format: u8,
        /// Per-column format codes.
        columns: Formats<'a>,
    },
    /// CopyOutResponse (`H`).
    CopyOutResponse {
        /// Overall format: 0 text, 1 binary.
        format: u8,
        /// Per-column format codes.
        columns: Formats<'a>,
    },
    /// CopyBothResponse (`W`).
    CopyBothResponse {
        /// Overall format: 0 text, 1 binary.
        format: u8,
        /// Per-column format codes.
        columns: Formats<'a>,
    },
    /// NotificationResponse (`A`): a NOTIFY delivered.
    NotificationResponse {
        /// Process id of the notifying backend.
        pid: u32,
        /// Channel name.
        channel: &'a [u8],
        /// Payload string.
        payload: &'a [u8],
    },
    /// FunctionCallResponse (`V`).
    FunctionCallResponse {
        /// Result value (`None`: NULL).
        value: Option<&'a [u8]>,
    },

    // Not decoded.
    /// Type byte not valid in this direction.
    Unknown {
        /// The body.
        data: &'a [u8],
    },
    /// The body's fields are inconsistent with its length.
    Malformed {
        /// What did not add up.
        reason: &'static str,
    },
    /// Longer than the buffer cap: `typ` and `len` kept, and for the frontend
    /// messages whose identity lies in their first bytes (see [`keeps_head`]) the
    /// head of the body, read with [`oversize_head`]; the rest is dropped.
    Oversize {
        /// The first bytes of the body, kept for the messages that need them (may be empty).
        head: &'a [u8],
    },
}

impl Msg<'_> {
    /// A frontend Sync, the smallest message: tests feed it to move capture time.
    #[cfg(test)]
    pub(crate) fn sync() -> Msg<'static> {
        Msg {
            dir: Dir::Frontend,
            typ: Some(b'S'),
            len: 4,
            body: Body::Sync,
            withheld: false,
        }
    }

    /// Message name as used in the PostgreSQL protocol docs. For
    /// `Malformed` and `Oversize` bodies of a known type byte this is the
    /// type's name (inspect `body` to tell them apart).
    pub fn name(&self) -> &'static str {
        if let Some(n) = self.body.name() {
            return n;
        }
        let by_type = self.typ.and_then(|t| type_name(self.dir, t));
        match self.body {
            Body::Unknown { .. } => "Unknown",
            Body::Malformed { .. } => by_type.unwrap_or("Malformed"),
            _ => by_type.unwrap_or("Oversize"),
        }
    }
}

impl Body<'_> {
    /// Name of a decoded body; `None` for the undecoded variants.
    pub fn name(&self) -> Option<&'static str> {
        use Body::*;
        Some(match self {
            Startup { .. } => "StartupMessage",
            SslRequest => "SSLRequest",
            GssEncRequest => "GSSENCRequest",
            CancelRequest { .. } => "CancelRequest",
            UnknownStartup { .. } => "UnknownStartup",
            SslResponse { .. } => "SSLResponse",
            GssEncResponse { .. } => "GSSENCResponse",
            Query { .. } => "Query",
            Parse { .. } => "Parse",
            Bind { .. } => "Bind",
            Describe { .. } => "Describe",
            Close { .. } => "Close",
            Execute { .. } => "Execute",
            Sync => "Sync",
            Flush => "Flush",
            Terminate => "Terminate",
            CopyFail { .. } => "CopyFail",
            FunctionCall { .. } => "FunctionCall",
            PasswordMessage { .. } => "PasswordMessage",
            SaslInitialResponse { .. } => "SASLInitialResponse",
            SaslResponse { .. } => "SASLResponse",
            GssResponse { .. } => "GSSResponse",
            CopyData { .. } => "CopyData",
            CopyDone => "CopyDone",
            AuthenticationOk => "AuthenticationOk",
            AuthenticationKerberosV5 => "AuthenticationKerberosV5",
            AuthenticationCleartextPassword => "AuthenticationCleartextPassword",
            AuthenticationMd5Password { .. } => "AuthenticationMD5Password",
            AuthenticationGss => "AuthenticationGSS",
            AuthenticationGssContinue { .. } => "AuthenticationGSSContinue",
            AuthenticationSspi => "AuthenticationSSPI",
            AuthenticationSasl { .. } => "AuthenticationSASL",
            AuthenticationSaslContinue { .. } => "AuthenticationSASLContinue",
            AuthenticationSaslFinal { .. } => "AuthenticationSASLFinal",
            AuthenticationUnknown { .. } => "Authentication",
            BackendKeyData { .. } => "BackendKeyData",
            NegotiateProtocolVersion { .. } => "NegotiateProtocolVersion",
            ParameterStatus { .. } => "ParameterStatus",
            ReadyForQuery { .. } => "ReadyForQuery",
            RowDescription { .. } => "RowDescription",
            DataRow { .. } => "DataRow",
            CommandComplete { .. } => "CommandComplete",
            EmptyQueryResponse => "EmptyQueryResponse",
            ErrorResponse { .. } => "ErrorResponse",
            NoticeResponse { .. } => "NoticeResponse",
            ParseComplete => "ParseComplete",
            BindComplete => "BindComplete",
            CloseComplete => "CloseComplete",
            NoData => "NoData",
            PortalSuspended => "PortalSuspended",
            ParameterDescription { .. } => "ParameterDescription",
            CopyInResponse { .. } => "CopyInResponse",
            CopyOutResponse { .. } => "CopyOutResponse",
            CopyBothResponse { .. } => "CopyBothResponse",
            NotificationResponse { .. } => "NotificationResponse",
            FunctionCallResponse { .. } => "FunctionCallResponse",
            Unknown { .. } | Malformed { .. } | Oversize { .. } => return None,
        })
    }
}

/// Docs name for a type byte valid in `dir` (`'p'` is reported as
/// PasswordMessage, `'R'` as Authentication: their subtype needs the body).
pub(crate) fn type_name(dir: Dir, typ: u8) -> Option<&'static str> {
    Some(match (dir, typ) {
        (_, b'd') => "CopyData",
        (_, b'c') => "CopyDone",
        (Dir::Frontend, b'B') => "Bind",
        (Dir::Frontend, b'C') => "Close",
        (Dir::Frontend, b'D') => "Describe",
        (Dir::Frontend, b'E') => "Execute",
        (Dir::Frontend, b'F') => "FunctionCall",
        (Dir::Frontend, b'H') => "Flush",
        (Dir::Frontend, b'P') => "Parse",
        (Dir::Frontend, b'Q') => "Query",
        (Dir::Frontend, b'S') => "Sync",
        (Dir::Frontend, b'X') => "Terminate",
        (Dir::Frontend, b'f') => "CopyFail",
        (Dir::Frontend, b'p') => "PasswordMessage",
        (Dir::Backend, b'1') => "ParseComplete",
        (Dir::Backend, b'2') => "BindComplete",
        (Dir::Backend, b'3') => "CloseComplete",
        (Dir::Backend, b'A') => "NotificationResponse",
        (Dir::Backend, b'C') => "CommandComplete",
        (Dir::Backend, b'D') => "DataRow",
        (Dir::Backend, b'E') => "ErrorResponse",
        (Dir::Backend, b'G') => "CopyInResponse",
        (Dir::Backend, b'H') => "CopyOutResponse",
        (Dir::Backend, b'I') => "EmptyQueryResponse",
        (Dir::Backend, b'K') => "BackendKeyData",
        (Dir::Backend, b'N') => "NoticeResponse",
        (Dir::Backend, b'R') => "Authentication",
        (Dir::Backend, b'S') => "ParameterStatus",
        (Dir::Backend, b'T') => "RowDescription",
        (Dir::Backend, b'V') => "FunctionCallResponse",
        (Dir::Backend, b'W') => "CopyBothResponse",
        (Dir::Backend, b'Z') => "ReadyForQuery",
        (Dir::Backend, b'n') => "NoData",
        (Dir::Backend, b's') => "PortalSuspended",
        (Dir::Backend, b't') => "ParameterDescription",
        (Dir::Backend, b'v') => "NegotiateProtocolVersion",
        _ => return None,
    })
}

/// Whether the framer keeps the head of an oversize message of this type: the
/// requests whose names and text come first, so that a statement over the cap keeps
/// its identity.
pub(crate) fn keeps_head(dir: Dir, typ: u8) -> bool {
    dir == Dir::Frontend && matches!(typ, b'Q' | b'P' | b'B' | b'F')
}

/// What the kept head of an oversize request says ([`Body::Oversize`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Head<'a> {
    /// The start of the text (no terminator: it was cut).
    Query {
        sql: &'a [u8],
    },
    Parse {
        statement: &'a [u8],
        query: &'a [u8],
    },
    /// The parameters were not kept.
    Bind {
        portal: &'a [u8],
        statement: &'a [u8],
    },
    FunctionCall {
        oid: u32,
    },
}

/// Reads the fields that lie whole in the head of an oversize request; a text cut
/// by the end of the head is returned cut. `None` for other types, or a head too
/// short for the names.
pub(crate) fn oversize_head(dir: Dir, typ: u8, head: &[u8]) -> Option<Head<'_>> {
    if !keeps_head(dir, typ) {
        return None;
    }
    let mut c = Cursor::new(head);
    // The text runs to its terminator or to the end of what was kept.
    fn text<'a>(c: &mut Cursor<'a>) -> &'a [u8] {
        let rest = c.remaining();
        c.cstr().unwrap_or(rest)
    }
    Some(match typ {
        b'Q' => Head::Query { sql: text(&mut c) },
        b'P' => {
            let statement = c.cstr().ok()?;
            Head::Parse {
                statement,
                query: text(&mut c),
            }
        }
        b'B' => Head::Bind {
            portal: c.cstr().ok()?,
            statement: c.cstr().ok()?,
        },
        _ => Head::FunctionCall { oid: c.u32().ok()? },
    })
}

/// Whether `typ` is a message type byte the peer in `dir` may send.
pub(crate) fn valid_type(dir: Dir, typ: u8) -> bool {
    type_name(dir, typ).is_some()
}

/// Which authentication request the server made last; a frontend `'p'`
/// message's meaning depends on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) enum AuthExchange {
    /// None seen (e.g. mid-stream capture): `'p'` decodes as PasswordMessage.
    #[default]
    Unknown,
    /// Cleartext or MD5 password requested.
    Password,
    /// AuthenticationSASL: next `'p'` is SASLInitialResponse.
    Sasl,
    /// AuthenticationSASLContinue: next `'p'` is SASLResponse.
    SaslContinue,
    /// GSS, SSPI or GSSContinue: `'p'` is GSSResponse.
    Gss,
}

/// Connection state the decoder needs beyond the message bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct DecodeCtx {
    pub(crate) auth: AuthExchange,
}

impl DecodeCtx {
    /// Tracks the authentication exchange from a decoded backend body.
    pub(crate) fn observe(&mut self, body: &Body<'_>) {
        use Body::*;
        self.auth = match body {
            AuthenticationCleartextPassword | AuthenticationMd5Password { .. } => {
                AuthExchange::Password
            }
            AuthenticationSasl { .. } => AuthExchange::Sasl,
            AuthenticationSaslContinue { .. } => AuthExchange::SaslContinue,
            AuthenticationGss | AuthenticationSspi | AuthenticationGssContinue { .. } => {
                AuthExchange::Gss
            }
            AuthenticationOk | AuthenticationSaslFinal { .. } => AuthExchange::Unknown,
            _ => return,
        };
    }
}

/// The body of the small messages that come most often (no fields, or the one
/// status byte of ReadyForQuery), as [`decode`] gives it; `None` for every other
/// message. The framer's fast path: building one of these does not go through the
/// generic construction of a body, which copies the largest variant's size.
#[inline(always)]
pub(crate) fn small(dir: Dir, typ: u8, body: &[u8]) -> Option<Body<'static>> {
    Some(match (dir, typ, body) {
        (Dir::Frontend, b'S', []) => Body::Sync,
        (Dir::Frontend, b'H', []) => Body::Flush,
        (Dir::Backend, b'1', []) => Body::ParseComplete,
        (Dir::Backend, b'2', []) => Body::BindComplete,
        (Dir::Backend, b'3', []) => Body::CloseComplete,
        (Dir::Backend, b'n', []) => Body::NoData,
        (Dir::Backend, b'Z', [status @ (b'I' | b'T' | b'E')]) => {
            Body::ReadyForQuery { status: *status }
        }
        _ => return None,
    })
}

/// Decodes the body (after type byte and length) of a typed message.
// Inlined so the body is built where the caller keeps it: returned through a
// temporary, it was copied with wide loads right after narrow stores, and the
// store-forwarding stall was the framer's largest single cost.
#[inline(always)]
pub(crate) fn decode<'a>(dir: Dir, typ: u8, body: &'a [u8], ctx: &DecodeCtx) -> Body<'a> {
    let mut c = Cursor::new(body);
    let parsed = match dir {
        Dir::Frontend => frontend(typ, &mut c, ctx),
        Dir::Backend => backend(typ, &mut c),
    };
    finish(parsed, &c)
}

/// Decodes an untyped startup-phase packet; `body` follows the length field.
pub(crate) fn decode_startup(body: &[u8]) -> Body<'_> {
    let mut c = Cursor::new(body);
    let parsed = startup(&mut c);
    finish(parsed, &c)
}

/// Every message must be consumed exactly, as the server itself requires.
#[inline(always)]
fn finish<'a>(parsed: Result<Body<'a>, Bad>, c: &Cursor<'a>) -> Body<'a> {
    match parsed {
        Ok(_) if !c.is_empty() => Body::Malformed {
            reason: "trailing bytes after the last field",
        },
        Ok(b) => b,
        Err(reason) => Body::Malformed { reason },
    }
}

fn startup<'a>(c: &mut Cursor<'a>) -> Result<Body<'a>, Bad> {
    let code = c.u32()?;
    Ok(match code {
        SSL_REQUEST_CODE => Body::SslRequest,
        GSSENC_REQUEST_CODE => Body::GssEncRequest,
        CANCEL_REQUEST_CODE => Body::CancelRequest {
            pid: c.u32()?,
            key: cancel_key(c)?,
        },
        _ if code >> 16 == 3 => Body::Startup {
            major: 3,
            minor: code as u16,
            params: List::<(&[u8], &[u8])>::read_until_nul(c)?.raw(),
        },
        _ => {
            c.rest();
            Body::UnknownStartup { code }
        }
    })
}

fn cancel_key<'a>(c: &mut Cursor<'a>) -> Result<&'a [u8], Bad> {
    let key = c.rest();
    if CANCEL_KEY_LEN.contains(&key.len()) {
        Ok(key)
    } else {
        Err("cancel key length outside 4..=256")
    }
}

/// Describe/Close target: 'S' statement or 'P' portal, then its name.
// Inlined: a call returned its three-word result through memory.
#[inline(always)]
fn target<'a>(c: &mut Cursor<'a>) -> Result<(u8, &'a [u8]), Bad> {
    match c.u8()? {
        k @ (b'S' | b'P') => Ok((k, c.cstr()?)),
        _ => Err("target kind is not 'S' or 'P'"),
    }
}

#[inline(always)]
fn frontend<'a>(typ: u8, c: &mut Cursor<'a>, ctx: &DecodeCtx) -> Result<Body<'a>, Bad> {
    Ok(match typ {
        b'Q' => Body::Query { sql: c.cstr()? },
        b'P' => Body::Parse {
            statement: c.cstr()?,
            query: c.cstr()?,
            param_types: List::read_counted(c)?,
        },
        b'B' => Body::Bind {
            portal: c.cstr()?,
            statement: c.cstr()?,
            param_formats: List::read_counted(c)?,
            params: List::read_counted(c)?,
            result_formats: List::read_counted(c)?,
        },
        b'D' => {
            let (kind, name) = target(c)?;
            Body::Describe { kind, name }
        }
        b'C' => {
            let (kind, name) = target(c)?;
            Body::Close { kind, name }
        }
        b'E' => Body::Execute {
            portal: c.cstr()?,
            max_rows: c.i32()?,
        },
        b'S' => Body::Sync,
        b'H' => Body::Flush,
        b'X' => Body::Terminate,
        b'd' => Body::CopyData { data: c.rest() },
        b'c' => Body::CopyDone,
        b'f' => Body::CopyFail { message: c.cstr()? },
        b'F' => Body::FunctionCall {
            oid: c.u32()?,
            arg_formats: List::read_counted(c)?,
            args: List::read_counted(c)?,
            result_format: c.u16()?,
        },
        b'p' => match ctx.auth {
            AuthExchange::Unknown | AuthExchange::Password => Body::PasswordMessage {
                password: c.cstr()?,
            },
            AuthExchange::Sasl => Body::SaslInitialResponse {
                mechanism: c.cstr()?,
                data: c.value()?,
            },
            AuthExchange::SaslContinue => Body::SaslResponse { data: c.rest() },
            AuthExchange::Gss => Body::GssResponse { data: c.rest() },
        },
        _ => Body::Unknown { data: c.rest() },
    })
}

#[inline(always)]
fn backend<'a>(typ: u8, c: &mut Cursor<'a>) -> Result<Body<'a>, Bad> {
    Ok(match typ {
        b'R' => authentication(c)?,
        b'K' => Body::BackendKeyData {
            pid: c.u32()?,
            key: cancel_key(c)?,
        },
        b'v' => {
            // The docs call it the newest minor version, but servers send the whole
            // version number (major << 16 | minor), as libpq expects.
            let version = c.u32()?;
            let newest_minor = if version >> 16 == 3 {
                version & 0xffff
            } else {
                version
            };
            let n = c.u32()?;
            Body::NegotiateProtocolVersion {
                newest_minor,
                options: List::read(c, n as usize)?,
            }
        }
        b'S' => Body::ParameterStatus {
            name: c.cstr()?,
            value: c.cstr()?,
        },
        b'Z' => match c.u8()? {
            status @ (b'I' | b'T' | b'E') => Body::ReadyForQuery { status },
            _ => return Err("transaction status is not I, T or E"),
        },
        b'T' => Body::RowDescription {
            fields: List::read_counted(c)?,
        },
        b'D' => Body::DataRow {
            columns: List::read_counted(c)?,
        },
        b'C' => Body::CommandComplete { tag: c.cstr()? },
        b'I' => Body::EmptyQueryResponse,
        b'E' => Body::ErrorResponse {
            fields: List::read_until_nul(c)?,
        },
        b'N' => Body::NoticeResponse {
            fields: List::read_until_nul(c)?,
        },
        b'1' => Body::ParseComplete,
        b'2' => Body::BindComplete,
        b'3' => Body::CloseComplete,
        b'n' => Body::NoData,
        b's' => Body::PortalSuspended,
        b't' => Body::ParameterDescription {
            types: List::read_counted(c)?,
        },
        b'G' | b'H' | b'W' => {
            let format = c.u8()?;
            let columns = List::read_counted(c)?;
            match typ {
                b'G' => Body::CopyInResponse { format, columns },
                b'H' => Body::CopyOutResponse { format, columns },
                _ => Body::CopyBothResponse { format, columns },
            }
        }
        b'd' => Body::CopyData { data: c.rest() },
        b'c' => Body::CopyDone,
        b'A' => Body::NotificationResponse {
            pid: c.u32()?,
            channel: c.cstr()?,
            payload: c.cstr()?,
        },
        b'V' => Body::FunctionCallResponse { value: c.value()? },
        _ => Body::Unknown { data: c.rest() },
    })
}

fn authentication<'a>(c: &mut Cursor<'a>) -> Result<Body<'a>, Bad> {
    Ok(match c.u32()? {
        0 => Body::AuthenticationOk,
        2 => Body::AuthenticationKerberosV5,
        3 => Body::AuthenticationCleartextPassword,
        5 => Body::AuthenticationMd5Password { salt: c.array()? },
        7 => Body::AuthenticationGss,
        8 => Body::AuthenticationGssContinue { data: c.rest() },
        9 => Body::AuthenticationSspi,
        10 => Body::AuthenticationSasl {
            mechanisms: List::read_until_nul(c)?,
        },
        11 => Body::AuthenticationSaslContinue { data: c.rest() },
        12 => Body::AuthenticationSaslFinal { data: c.rest() },
        code => Body::AuthenticationUnknown {
            code,
            data: c.rest(),
        },
    })
}
