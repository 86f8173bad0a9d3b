//! The fields of each decoded message, in one place for every presenter: the JSON
//! writer and the text trace both walk a message through [`visit`]. Redaction
//! happened before (see [`super::redact`]): `visit` shows what is left.

use crate::pgwire::{Body, Msg, error_field_name, startup_params};
use crate::text::utf8_lossless;
use std::borrow::Cow;

/// Where the fields of a message go.
pub(crate) trait FieldOut {
    /// Text from the wire (to be escaped by the presenter).
    fn text(&mut self, key: &'static str, v: &[u8]);
    fn num(&mut self, key: &'static str, v: i64);
    fn hex(&mut self, key: &'static str, v: &[u8]);
    /// A value withheld (secrets, unless asked for).
    fn redacted(&mut self, key: &'static str);
    /// A list of texts; `None` items are SQL NULLs.
    fn list(&mut self, key: &'static str, items: &mut dyn Iterator<Item = Option<Cow<'_, str>>>);
    /// Name/value pairs (startup parameters, error fields).
    fn pairs(
        &mut self,
        key: &'static str,
        items: &mut dyn Iterator<Item = (Cow<'_, str>, Cow<'_, str>)>,
    );
}

/// A value, or the placeholder when the message's values were withheld.
fn secret(out: &mut dyn FieldOut, withheld: bool, key: &'static str, v: &[u8]) {
    if withheld {
        out.redacted(key);
    } else {
        out.text(key, v);
    }
}

fn ch(b: u8) -> [u8; 1] {
    [b]
}

fn texts<'a, I: Iterator<Item = &'a [u8]> + 'a>(
    it: I,
) -> impl Iterator<Item = Option<Cow<'a, str>>> + 'a {
    it.map(|s| Some(utf8_lossless(s)))
}

fn nums<I: Iterator<Item = T>, T: ToString>(
    it: I,
) -> impl Iterator<Item = Option<Cow<'static, str>>> {
    it.map(|n| Some(Cow::Owned(n.to_string())))
}

/// Calls `out` once per field of the message body.
pub(crate) fn visit(msg: &Msg<'_>, out: &mut dyn FieldOut) {
    let w = msg.withheld;
    match msg.body {
        Body::Startup {
            major,
            minor,
            params,
        } => {
            out.text("protocol", format!("{major}.{minor}").as_bytes());
            out.pairs(
                "params",
                &mut startup_params(params).map(|(k, v)| (utf8_lossless(k), utf8_lossless(v))),
            );
        }
        Body::CancelRequest { pid, key } => {
            out.num("pid", pid as i64);
            out.num("key_len", key.len() as i64);
            if !w {
                out.hex("key", key);
            }
        }
        Body::UnknownStartup { code } => out.num("code", code as i64),
        Body::SslResponse { answer } | Body::GssEncResponse { answer } => {
            out.text("answer", &ch(answer))
        }
        Body::Query { sql } => out.text("query", sql),
        Body::Parse {
            statement,
            query,
            param_types,
        } => {
            out.text("statement", statement);
            out.text("query", query);
            out.list("param_types", &mut nums(param_types.iter()));
        }
        Body::Bind {
            portal,
            statement,
            param_formats,
            params,
            result_formats,
        } => {
            out.text("portal", portal);
            out.text("statement", statement);
            out.list("param_formats", &mut nums(param_formats.iter()));
            if w {
                out.redacted("params");
            } else {
                out.list(
                    "params",
                    &mut params.iter().enumerate().map(|(i, v)| {
                        v.map(|v| {
                            Cow::Owned(super::params::render(v, param_formats.is_binary(i), 0))
                        })
                    }),
                );
            }
            out.list("result_formats", &mut nums(result_formats.iter()));
        }
        // Body keys must not reuse `name`, `type`, `len` or `dir`: they sit next to the
        // message's own under `pgwire.msg.`.
        Body::Describe { kind, name } | Body::Close { kind, name } => {
            out.text("kind", &ch(kind));
            out.text("target", name);
        }
        Body::Execute { portal, max_rows } => {
            out.text("portal", portal);
            out.num("max_rows", max_rows as i64);
        }
        Body::CopyFail { message } => out.text("message", message),
        Body::FunctionCall {
            oid,
            args,
            result_format,
            ..
        } => {
            out.num("oid", oid as i64);
            out.num("nargs", args.len() as i64);
            out.num("result_format", result_format as i64);
        }
        Body::PasswordMessage { password } => secret(out, w, "password", password),
        Body::SaslInitialResponse { mechanism, data } => {
            out.text("mechanism", mechanism);
            secret(out, w, "data", data.unwrap_or_default());
        }
        Body::SaslResponse { data }
        | Body::GssResponse { data }
        | Body::AuthenticationSaslContinue { data }
        | Body::AuthenticationSaslFinal { data }
        | Body::AuthenticationGssContinue { data } => secret(out, w, "data", data),
        Body::CopyData { data } => out.num("data_len", data.len() as i64),
        Body::AuthenticationMd5Password { salt } => out.hex("salt", &salt),
        Body::AuthenticationSasl { mechanisms } => {
            out.list("mechanisms", &mut texts(mechanisms.iter()))
        }
        Body::AuthenticationUnknown { code, .. } => out.num("code", code as i64),
        Body::BackendKeyData { pid, key } => {
            out.num("pid", pid as i64);
            out.num("key_len", key.len() as i64);
            if !w {
                out.hex("key", key);
            }
        }
        Body::NegotiateProtocolVersion {
            newest_minor,
            options,
        } => {
            out.num("newest_minor", newest_minor as i64);
            out.list("unsupported_options", &mut texts(options.iter()));
        }
        Body::ParameterStatus { name, value } => {
            out.text("parameter", name);
            out.text("value", value);
        }
        Body::ReadyForQuery { status } => out.text("status", &ch(status)),
        Body::RowDescription { fields } => {
            out.num("nfields", fields.len() as i64);
            out.list(
                "fields",
                &mut fields.iter().map(|f| Some(utf8_lossless(f.name))),
            );
        }
        Body::DataRow { columns } => out.num("ncolumns", columns.len() as i64),
        Body::CommandComplete { tag } => out.text("tag", tag),
        Body::ErrorResponse { fields } | Body::NoticeResponse { fields } => {
            out.pairs(
                "fields",
                &mut fields.iter().map(|(c, v)| {
                    let name = error_field_name(c)
                        .map(Cow::Borrowed)
                        .unwrap_or_else(|| Cow::Owned(format!("field_{}", c as char)));
                    (name, utf8_lossless(v))
                }),
            );
        }
        Body::ParameterDescription { types } => out.list("param_types", &mut nums(types.iter())),
        Body::CopyInResponse { format, columns }
        | Body::CopyOutResponse { format, columns }
        | Body::CopyBothResponse { format, columns } => {
            out.num("format", format as i64);
            out.num("ncolumns", columns.len() as i64);
        }
        Body::NotificationResponse {
            pid,
            channel,
            payload,
        } => {
            out.num("pid", pid as i64);
            out.text("channel", channel);
            out.text("payload", payload);
        }
        Body::FunctionCallResponse { value } => match value {
            Some(v) => out.num("value_len", v.len() as i64),
            None => out.num("value_len", -1),
        },
        Body::Unknown { data } => out.num("data_len", data.len() as i64),
        Body::Malformed { reason } => out.text("malformed", reason.as_bytes()),
        Body::Oversize { .. } => out.text("oversize", b"body not kept"),
        Body::SslRequest
        | Body::GssEncRequest
        | Body::Sync
        | Body::Flush
        | Body::Terminate
        | Body::CopyDone
        | Body::AuthenticationOk
        | Body::AuthenticationKerberosV5
        | Body::AuthenticationCleartextPassword
        | Body::AuthenticationGss
        | Body::AuthenticationSspi
        | Body::EmptyQueryResponse
        | Body::ParseComplete
        | Body::BindComplete
        | Body::CloseComplete
        | Body::NoData
        | Body::PortalSuspended => {}
    }
}
