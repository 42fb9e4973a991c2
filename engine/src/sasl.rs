//! SASL for clients as ZooKeeper offers it without Kerberos: the DIGEST-MD5 mechanism
//! (RFC 2831) with its users read from a JAAS file's `Server` section
//! (`user_<name>="<password>"` options of ZooKeeper's DigestLoginModule).
//!
//! Pure: the nonce comes from the caller. The exchange, as ZooKeeper's Java client and
//! kazoo (pure-sasl) run it over the `sasl` opcode:
//! 1. the client sends an empty token; the server answers a challenge (realm, nonce, qop);
//! 2. the client sends its digest-response; the server checks it against the user's password
//!    and answers `rspauth=…`; the client's authorization id (its username, or the authzid it
//!    asked for if that is the same user) becomes a `sasl` id on the connection.
//!
//! Kerberos (GSSAPI) is not implemented: a JAAS `Server` section that names only a Kerberos
//! login module gives no users, and such clients fail to authenticate.

use std::collections::HashMap;

use md5::{Digest, Md5};

/// ZooKeeper's SASL server name for DIGEST-MD5: the realm, and the host part of the
/// digest-uri `zookeeper/zk-sasl-md5` its clients send.
pub const REALM: &str = "zk-sasl-md5";
const DIGEST_URI: &str = "zookeeper/zk-sasl-md5";

/// Why a JAAS file cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JaasError {
    #[error("line {line}: {what}")]
    Syntax { line: usize, what: String },
    #[error("no {0:?} section")]
    NoSection(String),
}

/// The users of a JAAS section: every `user_NAME="password"` option of its login modules.
pub fn jaas_users(text: &str, section: &str) -> Result<HashMap<String, String>, JaasError> {
    let sections = parse_jaas(text)?;
    let options = sections.get(section).ok_or_else(|| JaasError::NoSection(section.to_string()))?;
    Ok(options.iter().filter_map(|(k, v)| k.strip_prefix("user_").map(|u| (u.to_string(), v.clone()))).collect())
}

/// `Name { module flag key="value" …; … };` sections → every option of their modules.
fn parse_jaas(text: &str) -> Result<HashMap<String, Vec<(String, String)>>, JaasError> {
    let toks = tokens(text)?;
    let punct = |i: usize, p: &str| toks.get(i).is_some_and(|t| t.2 && t.1 == p);
    let word = |i: usize| toks.get(i).filter(|t| !t.2).map(|t| t.1.clone());
    let mut out = HashMap::new();
    let mut i = 0;
    let err = |line: usize, what: &str| JaasError::Syntax { line, what: what.to_string() };
    while i < toks.len() {
        let line = toks[i].0;
        let name = word(i).ok_or_else(|| err(line, "expected a section name"))?;
        if !punct(i + 1, "{") {
            return Err(err(line, "expected `{` after a section name"));
        }
        i += 2;
        let mut options = Vec::new();
        loop {
            if i >= toks.len() {
                return Err(err(line, "unterminated section"));
            }
            if punct(i, "}") {
                i += 1;
                if punct(i, ";") {
                    i += 1;
                }
                break;
            }
            if punct(i, ";") {
                i += 1;
                continue;
            }
            // A login module: class, control flag, then key=value options up to `;`.
            let mline = toks[i].0;
            if word(i).is_none() || word(i + 1).is_none() {
                return Err(err(mline, "expected a login module class and a control flag"));
            }
            i += 2;
            while i < toks.len() && !punct(i, ";") && !punct(i, "}") {
                let l = toks[i].0;
                match (word(i), punct(i + 1, "="), word(i + 2)) {
                    (Some(k), true, Some(v)) => options.push((k, v)),
                    _ => return Err(err(l, "expected key=value")),
                }
                i += 3;
            }
        }
        out.insert(name, options);
    }
    Ok(out)
}

/// A token: its line, its text, and whether it is punctuation (`{ } ; =`, never quoted).
type Tok = (usize, String, bool);

/// Words, quoted strings (quotes removed, `\"` and `\\` unescaped), and the punctuation
/// `{ } ; =`, with their line numbers; `//` and `/* */` comments skipped.
fn tokens(text: &str) -> Result<Vec<Tok>, JaasError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                    }
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
            }
            '{' | '}' | ';' | '=' => out.push((line, c.to_string(), true)),
            '"' => {
                let start = line;
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err(JaasError::Syntax { line: start, what: "unterminated string".into() }),
                        Some('"') => break,
                        Some('\\') => s.extend(chars.next()),
                        Some('\n') => {
                            line += 1;
                            s.push('\n');
                        }
                        Some(c) => s.push(c),
                    }
                }
                out.push((start, s, false));
            }
            c => {
                let mut s = c.to_string();
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || "{};=\"".contains(n) {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                out.push((line, s, false));
            }
        }
    }
    Ok(out)
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SaslError {
    #[error("malformed digest-response: {0}")]
    Malformed(&'static str),
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    #[error("wrong password for {0:?}")]
    BadResponse(String),
    #[error("the exchange is already complete")]
    Complete,
}

/// What a step produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge and wait for the next token.
    Challenge(Vec<u8>),
    /// Authenticated as this authorization id; send this final token.
    Done { authorization_id: String, token: Vec<u8> },
}

/// One connection's DIGEST-MD5 exchange.
#[derive(Debug)]
pub struct DigestMd5 {
    nonce: String,
    challenged: bool,
    complete: bool,
}

impl DigestMd5 {
    /// `nonce`: fresh random bytes from the caller (encoded here).
    pub fn new(nonce: &[u8]) -> DigestMd5 {
        use base64::Engine;
        DigestMd5 { nonce: base64::engine::general_purpose::STANDARD.encode(nonce), challenged: false, complete: false }
    }

    /// The next client token.
    pub fn step(&mut self, token: &[u8], users: &HashMap<String, String>) -> Result<Step, SaslError> {
        if self.complete {
            return Err(SaslError::Complete);
        }
        if !self.challenged {
            // DIGEST-MD5 has no initial response: whatever the first token holds, challenge.
            self.challenged = true;
            let c = format!("realm=\"{REALM}\",nonce=\"{}\",qop=\"auth\",charset=utf-8,algorithm=md5-sess", self.nonce);
            return Ok(Step::Challenge(c.into_bytes()));
        }
        let text = std::str::from_utf8(token).map_err(|_| SaslError::Malformed("not UTF-8"))?;
        let f = directives(text).ok_or(SaslError::Malformed("bad directive syntax"))?;
        let get = |k: &str| f.get(k).map(String::as_str);
        let username = get("username").ok_or(SaslError::Malformed("no username"))?;
        let realm = get("realm").unwrap_or("");
        let (nonce, cnonce) = (get("nonce").unwrap_or(""), get("cnonce").ok_or(SaslError::Malformed("no cnonce"))?);
        let nc = get("nc").ok_or(SaslError::Malformed("no nc"))?;
        let qop = get("qop").unwrap_or("auth");
        let uri = get("digest-uri").ok_or(SaslError::Malformed("no digest-uri"))?;
        let response = get("response").ok_or(SaslError::Malformed("no response"))?;
        let authzid = get("authzid");
        if nonce != self.nonce {
            return Err(SaslError::Malformed("nonce does not match the challenge"));
        }
        if qop != "auth" {
            return Err(SaslError::Malformed("only qop=auth is offered"));
        }
        if uri != DIGEST_URI {
            return Err(SaslError::Malformed("digest-uri is not zookeeper/zk-sasl-md5"));
        }
        let password = users.get(username).ok_or_else(|| SaslError::UnknownUser(username.to_string()))?;
        let digest = |a2_prefix: &str| {
            let mut a1 = Md5::digest(format!("{username}:{realm}:{password}").as_bytes()).to_vec();
            a1.extend_from_slice(format!(":{nonce}:{cnonce}").as_bytes());
            if let Some(z) = authzid {
                a1.extend_from_slice(format!(":{z}").as_bytes());
            }
            let ha1 = hex(&Md5::digest(&a1));
            let ha2 = hex(&Md5::digest(format!("{a2_prefix}:{uri}").as_bytes()));
            hex(&Md5::digest(format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}").as_bytes()))
        };
        let expected = digest("AUTHENTICATE");
        if !bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), response.as_bytes())) {
            return Err(SaslError::BadResponse(username.to_string()));
        }
        // As Java's DIGEST-MD5 server with ZooKeeper's callback: an authzid must be the user.
        let authorization_id = match authzid {
            Some(z) if z != username => return Err(SaslError::BadResponse(username.to_string())),
            _ => username.to_string(),
        };
        self.complete = true;
        Ok(Step::Done { authorization_id, token: format!("rspauth={}", digest("")).into_bytes() })
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `key=value,key="quoted, value",…` → map (RFC 2831 directives).
fn directives(text: &str) -> Option<HashMap<String, String>> {
    let mut out = HashMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = rest[..eq].trim().to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(q) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => v.extend(chars.next().map(|(_, c)| c)),
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => v.push(c),
                }
            }
            rest = &q[end? + 1..];
            value = v;
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        out.insert(key, value);
        rest = rest.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    Some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The client side of RFC 2831 (tests only), written from the RFC, to drive the server.
    pub(crate) fn client_response(challenge: &str, user: &str, pw: &str, cnonce: &str) -> (String, String) {
        let f = directives(challenge).unwrap();
        let (realm, nonce) = (&f["realm"], &f["nonce"]);
        let mut a1 = Md5::digest(format!("{user}:{realm}:{pw}").as_bytes()).to_vec();
        a1.extend_from_slice(format!(":{nonce}:{cnonce}").as_bytes());
        let ha1 = hex(&Md5::digest(&a1));
        let kd = |prefix: &str| {
            let ha2 = hex(&Md5::digest(format!("{prefix}:{DIGEST_URI}").as_bytes()));
            hex(&Md5::digest(format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}").as_bytes()))
        };
        let resp = format!(
            "charset=utf-8,username=\"{user}\",realm=\"{realm}\",nonce=\"{nonce}\",nc=00000001,cnonce=\"{cnonce}\",\
         digest-uri=\"{DIGEST_URI}\",maxbuf=65536,response={},qop=auth",
            kd("AUTHENTICATE")
        );
        (resp, format!("rspauth={}", kd("")))
    }

    const JAAS: &str = r#"
// ZooKeeper's sample
Server {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       user_super="adminsecret"
       user_bob="bob's \"pw\"";
};
Client { org.apache.zookeeper.server.auth.DigestLoginModule required username="bob" password="x"; };
"#;

    #[test]
    fn jaas_users_of_a_section() {
        let users = jaas_users(JAAS, "Server").unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users["super"], "adminsecret");
        assert_eq!(users["bob"], "bob's \"pw\"");
        assert_eq!(jaas_users(JAAS, "Client").unwrap().len(), 0);
        assert_eq!(jaas_users(JAAS, "Nope"), Err(JaasError::NoSection("Nope".into())));
        assert!(matches!(jaas_users("Server { m required a=; };", "Server"), Err(JaasError::Syntax { line: 1, .. })));
        assert!(matches!(jaas_users("Server { m required a=\"x", "Server"), Err(JaasError::Syntax { .. })));
        assert!(matches!(jaas_users("Server", "Server"), Err(JaasError::Syntax { .. })));
    }

    #[test]
    fn a_full_exchange_authenticates_and_proves_the_server() {
        let users = jaas_users(JAAS, "Server").unwrap();
        let mut s = DigestMd5::new(b"0123456789abcdef");
        let Step::Challenge(c) = s.step(b"", &users).unwrap() else { panic!("challenge") };
        let c = String::from_utf8(c).unwrap();
        assert!(c.contains("realm=\"zk-sasl-md5\"") && c.contains("qop=\"auth\""), "{c}");
        let (resp, rspauth) = client_response(&c, "super", "adminsecret", "OA6MHXh6VqTrRk");
        let done = s.step(resp.as_bytes(), &users).unwrap();
        assert_eq!(done, Step::Done { authorization_id: "super".into(), token: rspauth.into_bytes() });
        assert_eq!(s.step(b"", &users), Err(SaslError::Complete));
    }

    #[test]
    fn wrong_password_unknown_user_and_replayed_nonce_fail() {
        let users = jaas_users(JAAS, "Server").unwrap();
        let mut s = DigestMd5::new(b"n1");
        let Step::Challenge(c) = s.step(b"", &users).unwrap() else { panic!() };
        let c = String::from_utf8(c).unwrap();
        let (bad, _) = client_response(&c, "super", "guess", "x");
        assert_eq!(s.step(bad.as_bytes(), &users), Err(SaslError::BadResponse("super".into())));
        let (nobody, _) = client_response(&c, "mallory", "x", "x");
        assert_eq!(s.step(nobody.as_bytes(), &users), Err(SaslError::UnknownUser("mallory".into())));
        // A response computed for another server's nonce.
        let mut other = DigestMd5::new(b"n2");
        let Step::Challenge(c2) = other.step(b"", &users).unwrap() else { panic!() };
        let (replay, _) = client_response(&String::from_utf8(c2).unwrap(), "super", "adminsecret", "x");
        assert!(matches!(s.step(replay.as_bytes(), &users), Err(SaslError::Malformed(_))));
        assert!(matches!(s.step(b"\xff", &users), Err(SaslError::Malformed(_))));
        assert!(matches!(s.step(b"username=\"x", &users), Err(SaslError::Malformed(_))));
    }

    #[test]
    fn directive_parsing() {
        let d = directives("a=1, b=\"x, \\\"y\\\"\",c=\"\"").unwrap();
        assert_eq!(d["a"], "1");
        assert_eq!(d["b"], "x, \"y\"");
        assert_eq!(d["c"], "");
        assert!(directives("novalue").is_none());
    }
}
