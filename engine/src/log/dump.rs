//! `warren log-dump`: a segment's transactions as text (like ZooKeeper's LogFormatter) or as
//! JSON lines for tools. Formatting only, no I/O: the command reads the segment.

use crate::acl::{perms_string, Acl};
use crate::txn::{Txn, TxnOp};

fn op_name(op: &TxnOp) -> &'static str {
    match op {
        TxnOp::CreateSession { .. } => "createSession",
        TxnOp::CloseSession => "closeSession",
        TxnOp::Create { .. } => "create",
        TxnOp::Delete { .. } => "delete",
        TxnOp::DeleteContainer { .. } => "deleteContainer",
        TxnOp::SetData { .. } => "setData",
        TxnOp::SetAcl { .. } => "setACL",
        TxnOp::Check { .. } => "check",
        TxnOp::Multi(_) => "multi",
        TxnOp::Error(_) => "error",
    }
}

fn acl_text(acl: &[Acl]) -> String {
    let parts: Vec<String> =
        acl.iter().map(|a| format!("{}:{}:{}", a.id.scheme, a.id.id, perms_string(a.perms))).collect();
    format!("[{}]", parts.join(","))
}

fn data_text(d: &Option<Vec<u8>>) -> String {
    match d {
        None => "null".into(),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) if s.chars().all(|c| !c.is_control()) => format!("#{s:?}"),
            _ => format!("<{} bytes>", b.len()),
        },
    }
}

fn op_text(op: &TxnOp) -> String {
    match op {
        TxnOp::CreateSession { timeout_ms, .. } => format!("createSession {timeout_ms}"),
        TxnOp::CloseSession => "closeSession".into(),
        TxnOp::Create { kind, path, data, acl, ephemeral_owner, parent_cversion } => format!(
            "create {path},{},{},{ephemeral_owner:#x},{parent_cversion} ({kind:?})",
            data_text(data),
            acl_text(acl)
        ),
        TxnOp::Delete { path } | TxnOp::DeleteContainer { path } | TxnOp::Check { path } => {
            format!("{} {path}", op_name(op))
        }
        TxnOp::SetData { path, data, version } => format!("setData {path},{},{version}", data_text(data)),
        TxnOp::SetAcl { path, acl, version } => format!("setACL {path},{},{version}", acl_text(acl)),
        TxnOp::Multi(ops) => {
            let inner: Vec<String> = ops.iter().map(op_text).collect();
            format!("multi [{}]", inner.join("; "))
        }
        TxnOp::Error(e) => format!("error {}", e.code()),
    }
}

/// One line per transaction: time (ms since the epoch), session, cxid, zxid, the op.
pub fn text_line(t: &Txn) -> String {
    format!(
        "time {} session {:#x} cxid {:#x} zxid {:#x} {}",
        t.hdr.time_ms,
        t.hdr.session_id,
        t.hdr.cxid,
        t.hdr.zxid,
        op_text(&t.op)
    )
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn op_json(op: &TxnOp) -> String {
    let path = match op {
        TxnOp::Create { path, .. }
        | TxnOp::Delete { path }
        | TxnOp::DeleteContainer { path }
        | TxnOp::SetData { path, .. }
        | TxnOp::SetAcl { path, .. }
        | TxnOp::Check { path } => Some(path),
        _ => None,
    };
    let mut fields = vec![format!("\"op\":{}", json_str(op_name(op)))];
    if let Some(p) = path {
        fields.push(format!("\"path\":{}", json_str(p)));
    }
    match op {
        // The password is a secret: never printed.
        TxnOp::CreateSession { timeout_ms, .. } => fields.push(format!("\"timeout_ms\":{timeout_ms}")),
        TxnOp::Create { data, ephemeral_owner, parent_cversion, .. } => {
            fields.push(format!("\"data_length\":{}", data.as_ref().map_or(-1, |d| d.len() as i64)));
            fields.push(format!("\"ephemeral_owner\":{ephemeral_owner}"));
            fields.push(format!("\"parent_cversion\":{parent_cversion}"));
        }
        TxnOp::SetData { data, version, .. } => {
            fields.push(format!("\"data_length\":{}", data.as_ref().map_or(-1, |d| d.len() as i64)));
            fields.push(format!("\"version\":{version}"));
        }
        TxnOp::SetAcl { version, .. } => fields.push(format!("\"version\":{version}")),
        TxnOp::Multi(ops) => {
            let inner: Vec<String> = ops.iter().map(op_json).collect();
            fields.push(format!("\"ops\":[{}]", inner.join(",")));
        }
        TxnOp::Error(e) => fields.push(format!("\"err\":{}", e.code())),
        _ => {}
    }
    format!("{{{}}}", fields.join(","))
}

/// One JSON object per transaction.
pub fn json_line(t: &Txn) -> String {
    format!(
        "{{\"time_ms\":{},\"session\":{},\"cxid\":{},\"zxid\":{},\"txn\":{}}}",
        t.hdr.time_ms,
        t.hdr.session_id,
        t.hdr.cxid,
        t.hdr.zxid,
        op_json(&t.op)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::open_acl_unsafe;
    use crate::proto::CreateKind;
    use crate::txn::TxnHeader;

    #[test]
    fn lines() {
        let t = Txn {
            hdr: TxnHeader { session_id: 0x10, cxid: 2, zxid: 0x1f, time_ms: 5 },
            op: TxnOp::Create {
                kind: CreateKind::Create,
                path: "/a\"b".into(),
                data: Some(b"hi".to_vec()),
                acl: open_acl_unsafe(),
                ephemeral_owner: 0,
                parent_cversion: 1,
            },
        };
        assert_eq!(
            text_line(&t),
            "time 5 session 0x10 cxid 0x2 zxid 0x1f create /a\"b,#\"hi\",[world:anyone:cdrwa],0x0,1 (Create)"
        );
        assert_eq!(
            json_line(&t),
            "{\"time_ms\":5,\"session\":16,\"cxid\":2,\"zxid\":31,\"txn\":{\"op\":\"create\",\"path\":\"/a\\\"b\",\"data_length\":2,\"ephemeral_owner\":0,\"parent_cversion\":1}}"
        );
    }
}
