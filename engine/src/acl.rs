//! ZooKeeper ACL logic: ids, permissions, `digest` / `ip` schemes, the
//! `auth` pseudo-scheme, super-user handling, ACL checks and the ACL
//! "fix-up" done when a node is created or its ACL is set. Pure (no I/O,
//! no clocks, no globals) and never panics, whatever the input.
//!
//! Behaviour follows Apache ZooKeeper 3.8:
//!
//! * `digest` ids are `user:base64(sha1("user:password"))`
//!   (`DigestAuthenticationProvider.generateDigest`).
//! * a session's auth info starts with `ip:<peer address>`; `addauth digest
//!   user:password` adds `digest:user:<hash>`.
//! * a session is *super* when it holds the digest id equal to the configured
//!   `superDigest` (`zookeeper.DigestAuthenticationProvider.superDigest`,
//!   e.g. `super:xQJmxLMiHGwaqBvst5y6rkB6HQs=` for `super:admin`). ZooKeeper
//!   records this as an extra `super:` id at `addauth` time; here it is
//!   evaluated at check time from the digest id, with the same result. A
//!   `super:` id added by another provider (the SASL or x509 super user)
//!   makes the session super too, as in ZooKeeper's `checkACL`.
//! * [`check`] mirrors `ZooKeeperServer.checkACL`, [`fix_acl`] mirrors
//!   `PrepRequestProcessor.fixupACL` (3.8: `removeDuplicates`, then
//!   per-entry validation / `auth` expansion).
//!
//! Deliberate differences from ZooKeeper 3.8 (documented, on purpose):
//!
//! * `addauth digest` with bytes that are not UTF-8, or with no `:` in them,
//!   fails with [`AuthFailed`]. (ZooKeeper decodes lossily and accepts a
//!   missing colon, hashing the whole string.)
//! * `ip` ACLs also accept IPv6 addresses and IPv6 CIDR prefixes. ZooKeeper
//!   3.8's `IPAuthenticationProvider` only parses IPv4 (an IPv6 client never
//!   matches an `ip` ACL and an IPv6 `ip` ACL is rejected as invalid); later
//!   ZooKeeper versions added IPv6 with the same matching rule used here
//!   (prefix mask, address families must agree).
//! * IPv4 octets and prefix lengths are parsed like Java's
//!   `Integer.parseInt` (leading zeros and a leading `+`/`-` are allowed,
//!   `010.0.0.1` is `10.0.0.1`), except that only ASCII digits are accepted.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use sha1::{Digest as _, Sha1};

/// An ACL identity: `scheme:id`, e.g. `world:anyone`, `ip:10.0.0.0/8`,
/// `digest:bob:Sk3...=`, `auth:`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Id {
    pub scheme: String,
    pub id: String,
}

impl Id {
    pub fn new(scheme: impl Into<String>, id: impl Into<String>) -> Id {
        Id { scheme: scheme.into(), id: id.into() }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.scheme, self.id)
    }
}

/// One ACL entry: a permission bit set for an [`Id`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Acl {
    pub perms: i32,
    pub id: Id,
}

impl Acl {
    pub fn new(perms: i32, id: Id) -> Acl {
        Acl { perms, id }
    }
}

/// Permission bits (`ZooDefs.Perms`).
pub mod perms {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 2;
    pub const CREATE: i32 = 4;
    pub const DELETE: i32 = 8;
    pub const ADMIN: i32 = 16;
    pub const ALL: i32 = READ | WRITE | CREATE | DELETE | ADMIN;
}

/// `world:anyone` (`ZooDefs.Ids.ANYONE_ID_UNSAFE`).
pub fn world_anyone() -> Id {
    Id::new("world", "anyone")
}

/// `auth:` (`ZooDefs.Ids.AUTH_IDS`): stands for "the creator's authenticated ids".
pub fn auth_ids() -> Id {
    Id::new("auth", "")
}

/// `[world:anyone cdrwa]` (`ZooDefs.Ids.OPEN_ACL_UNSAFE`).
pub fn open_acl_unsafe() -> Vec<Acl> {
    vec![Acl::new(perms::ALL, world_anyone())]
}

/// `[world:anyone r]` (`ZooDefs.Ids.READ_ACL_UNSAFE`).
pub fn read_acl_unsafe() -> Vec<Acl> {
    vec![Acl::new(perms::READ, world_anyone())]
}

/// `[auth: cdrwa]` (`ZooDefs.Ids.CREATOR_ALL_ACL`).
pub fn creator_all_acl() -> Vec<Acl> {
    vec![Acl::new(perms::ALL, auth_ids())]
}

/// zkCli-style permission letters, in ZooKeeper's order `c d r w a`
/// (`ZKUtil.getPermString`). Unknown bits are ignored; `0` gives `""`.
pub fn perms_string(perms: i32) -> String {
    let mut s = String::with_capacity(5);
    for (bit, letter) in
        [(perms::CREATE, 'c'), (perms::DELETE, 'd'), (perms::READ, 'r'), (perms::WRITE, 'w'), (perms::ADMIN, 'a')]
    {
        if perms & bit != 0 {
            s.push(letter);
        }
    }
    s
}

/// Inverse of [`perms_string`] as zkCli does it (`ZKUtil.getPermFromString`):
/// letters in any order, unknown characters ignored.
pub fn perms_from_string(s: &str) -> i32 {
    let mut p = 0;
    for c in s.chars() {
        p |= match c {
            'r' => perms::READ,
            'w' => perms::WRITE,
            'c' => perms::CREATE,
            'd' => perms::DELETE,
            'a' => perms::ADMIN,
            _ => 0,
        };
    }
    p
}

/// `DigestAuthenticationProvider.generateDigest`: for `"user:password"`
/// returns `"user:" + base64(sha1("user:password"))`. The user part is
/// everything before the FIRST colon; the hash covers the whole input.
/// (With no colon at all, ZooKeeper returns `"<input>:<hash>"`; so does this.)
pub fn digest(user_colon_password: &str) -> String {
    let user = user_colon_password.split_once(':').map_or(user_colon_password, |(u, _)| u);
    let hash = Sha1::digest(user_colon_password.as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD.encode(hash);
    format!("{user}:{b64}")
}

/// Why `addauth` was refused (the server answers `AUTHFAILED` and closes
/// the connection, as ZooKeeper does).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailed {
    #[error("no authentication provider for scheme {0:?}")]
    UnknownScheme(String),
}

/// Why an ACL list was refused (ZooKeeper's `InvalidACL`, error code -114).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAcl {
    #[error("empty ACL list")]
    Empty,
    #[error("auth scheme used but the session holds no authenticated id")]
    NoAuthenticatedIds,
    #[error("invalid world id {0:?} (only \"anyone\" is allowed)")]
    BadWorldId(String),
    #[error("invalid digest id {0:?} (expected user:hash)")]
    BadDigestId(String),
    #[error("invalid ip id {0:?} (expected address or address/bits)")]
    BadIpId(String),
    #[error("unknown ACL scheme {0:?}")]
    UnknownScheme(String),
}

/// The identities a connection/session holds (`ServerCnxn.authInfo`).
///
/// Ids are kept in insertion order without duplicates (ZooKeeper keeps a set).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthInfo {
    ids: Vec<Id>,
    peer_ip: Option<String>,
}

impl AuthInfo {
    /// No identities at all (for internal requests; a client connection
    /// should use [`AuthInfo::for_connection`]).
    pub fn empty() -> AuthInfo {
        AuthInfo::default()
    }

    /// What every client connection starts with: `ip:<peer address>`.
    /// IPv4-mapped IPv6 peers (`::ffff:a.b.c.d`, from dual-stack sockets)
    /// are recorded as plain IPv4, as Java does; other IPv6 peers are
    /// written the way Java's `getHostAddress` writes them (eight
    /// uncompressed lower-case hex groups, e.g. `0:0:0:0:0:0:0:1`).
    pub fn for_connection(peer_ip: IpAddr) -> AuthInfo {
        let ip = java_host_address(peer_ip);
        let mut info = AuthInfo::default();
        info.add_id(Id::new("ip", ip.clone()));
        info.peer_ip = Some(ip);
        info
    }

    /// The identities a follower forwarded with a request, for the leader's checks.
    pub fn from_ids(ids: Vec<Id>) -> AuthInfo {
        AuthInfo { ids, peer_ip: None }
    }

    /// `addauth <scheme> <auth>` (the `auth` packet, xid -4).
    ///
    /// * `digest`: `auth` must be UTF-8 `user:password`; adds
    ///   `digest:user:<base64 sha1>`.
    /// * `ip`: accepted and re-adds the connection's `ip:` id (ZooKeeper's
    ///   `IPAuthenticationProvider` ignores the payload).
    /// * anything else: [`AuthFailed::UnknownScheme`].
    pub fn add_auth(&mut self, scheme: &str, auth: &[u8]) -> Result<(), AuthFailed> {
        match scheme {
            "digest" => {
                // As ZooKeeper: bytes decoded lossily (Java's new String), and no colon is
                // accepted too (the whole text is the user name and is hashed as is).
                let text = String::from_utf8_lossy(auth);
                self.add_id(Id::new("digest", digest(&text)));
                Ok(())
            }
            "ip" => {
                if let Some(ip) = self.peer_ip.clone() {
                    self.add_id(Id::new("ip", ip));
                }
                Ok(())
            }
            other => Err(AuthFailed::UnknownScheme(other.to_string())),
        }
    }

    /// Adds an id if not already present (`ServerCnxn.addAuthInfo`).
    /// For schemes authenticated elsewhere (e.g. `x509`, `sasl`).
    pub fn add_id(&mut self, id: Id) {
        if !self.ids.contains(&id) {
            self.ids.push(id);
        }
    }

    /// The ids held, in the order they were added.
    pub fn ids(&self) -> &[Id] {
        &self.ids
    }

    /// True when the session holds the digest id equal to the configured
    /// super digest (`super:<base64 sha1("super:<password>")>`), i.e. it did
    /// `addauth digest super:<password>`. `None` (no superDigest configured)
    /// is never super.
    pub fn is_super(&self, super_digest: Option<&str>) -> bool {
        self.ids
            .iter()
            .any(|i| i.scheme == "super" || super_digest.is_some_and(|sd| i.scheme == "digest" && i.id == sd))
    }
}

/// ZooKeeper's ACL check (`ZooKeeperServer.checkACL`): may a session with
/// `auth` do `wanted_perm` on a node whose ACL is `acl`?
///
/// * empty ACL list: allowed;
/// * super session: allowed;
/// * otherwise an entry grants when `entry.perms & wanted_perm != 0` and
///   its id is `world:anyone`, or one of the session's ids of the same
///   scheme matches it: `digest` / `x509` / `sasl` by string equality,
///   `ip` by address prefix. `auth` entries (normally rewritten at create
///   time) and unknown schemes never match.
pub fn check(acl: &[Acl], wanted_perm: i32, auth: &AuthInfo, super_digest: Option<&str>) -> bool {
    if acl.is_empty() {
        return true;
    }
    if auth.is_super(super_digest) {
        return true;
    }
    for entry in acl {
        if entry.perms & wanted_perm == 0 {
            continue;
        }
        let scheme = entry.id.scheme.as_str();
        if scheme == "world" && entry.id.id == "anyone" {
            return true;
        }
        let matcher: fn(&str, &str) -> bool = match scheme {
            "digest" | "x509" | "sasl" => |held, expr| held == expr,
            "ip" => ip_matches,
            _ => continue,
        };
        if auth.ids().iter().any(|held| held.scheme == scheme && matcher(&held.id, &entry.id.id)) {
            return true;
        }
    }
    false
}

/// ZooKeeper's ACL fix-up on create / setACL (`PrepRequestProcessor.fixupACL`).
///
/// 1. exact duplicates are removed, first occurrence kept;
/// 2. an empty list is [`InvalidAcl::Empty`];
/// 3. `world:anyone` is kept; any other `world` id is invalid;
/// 4. each `auth` entry (its id is ignored) is replaced by one entry with the
///    same perms per *authenticated* id of the session, in the session's
///    order: `digest`, `x509` and `sasl` ids count, `ip` ids do not. None at
///    all is [`InvalidAcl::NoAuthenticatedIds`];
/// 5. `digest` ids must split on `:` into exactly two parts the way Java's
///    `String.split(":")` does (trailing empty parts dropped);
/// 6. `ip` ids must be an address or `address/bits` (see module docs);
/// 7. `sasl` and `x509` ids (non-empty) are kept; any other scheme is
///    [`InvalidAcl::UnknownScheme`].
///
/// Permissions are not validated (ZooKeeper stores them as given). As in
/// ZooKeeper, de-duplication happens before `auth` expansion, so an expanded
/// id can repeat an explicit entry.
pub fn fix_acl(acl: &[Acl], auth: &AuthInfo) -> Result<Vec<Acl>, InvalidAcl> {
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    if unique.is_empty() {
        return Err(InvalidAcl::Empty);
    }
    let mut out = Vec::with_capacity(unique.len());
    for a in unique {
        match a.id.scheme.as_str() {
            "world" => {
                if a.id.id == "anyone" {
                    out.push(a.clone());
                } else {
                    return Err(InvalidAcl::BadWorldId(a.id.id.clone()));
                }
            }
            "auth" => {
                let mut any = false;
                for held in auth.ids() {
                    if is_authenticated_scheme(&held.scheme) {
                        any = true;
                        out.push(Acl::new(a.perms, held.clone()));
                    }
                }
                if !any {
                    return Err(InvalidAcl::NoAuthenticatedIds);
                }
            }
            "digest" => {
                if digest_id_is_valid(&a.id.id) {
                    out.push(a.clone());
                } else {
                    return Err(InvalidAcl::BadDigestId(a.id.id.clone()));
                }
            }
            "ip" => {
                if ip_id_is_valid(&a.id.id) {
                    out.push(a.clone());
                } else {
                    return Err(InvalidAcl::BadIpId(a.id.id.clone()));
                }
            }
            // Ids of schemes authenticated by the connection (SASL, a TLS client certificate).
            // ZooKeeper accepts them once their provider is registered; Warren always does,
            // so an ACL can be set before the first client of that scheme connects.
            "sasl" | "x509" if !a.id.id.is_empty() => out.push(a.clone()),
            other => return Err(InvalidAcl::UnknownScheme(other.to_string())),
        }
    }
    Ok(out)
}

/// Schemes whose provider reports `isAuthenticated() == true`.
fn is_authenticated_scheme(scheme: &str) -> bool {
    matches!(scheme, "digest" | "x509" | "sasl")
}

/// `DigestAuthenticationProvider.isValid`: `id.split(":").length == 2`,
/// with Java's split semantics (no match gives the whole string; trailing
/// empty strings are removed; leading empty strings are kept).
pub fn digest_id_is_valid(id: &str) -> bool {
    let mut parts: Vec<&str> = id.split(':').collect();
    if parts.len() > 1 {
        while parts.last().is_some_and(|p| p.is_empty()) {
            parts.pop();
        }
    }
    parts.len() == 2
}

/// `IPAuthenticationProvider.isValid`: `addr` or `addr/bits` with
/// `0 <= bits <= address length in bits`.
pub fn ip_id_is_valid(id: &str) -> bool {
    parse_ip_expr(id).is_some()
}

/// `IPAuthenticationProvider.matches`: does the session's ip id `held`
/// fall within the ACL expression `acl_expr` (`addr` = whole address,
/// `addr/bits` = prefix)? Different address families never match.
pub fn ip_matches(held: &str, acl_expr: &str) -> bool {
    let Some((mut acl_addr, bits)) = parse_ip_expr(acl_expr) else {
        return false;
    };
    let Some(mut remote) = addr_to_bytes(held) else {
        return false;
    };
    if remote.len() != acl_addr.len() {
        return false;
    }
    mask(&mut acl_addr, bits);
    mask(&mut remote, bits);
    remote == acl_addr
}

/// Parses `addr[/bits]`; returns the address bytes and the prefix length.
fn parse_ip_expr(expr: &str) -> Option<(Vec<u8>, usize)> {
    let (addr_part, bits_part) = match expr.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (expr, None),
    };
    let addr = addr_to_bytes(addr_part)?;
    let max_bits = addr.len() * 8;
    let bits = match bits_part {
        None => max_bits,
        Some(b) => {
            let v = java_parse_int(b)?;
            if v < 0 || v as usize > max_bits {
                return None;
            }
            v as usize
        }
    };
    Some((addr, bits))
}

/// An address string as 4 (IPv4) or 16 (IPv6) bytes.
fn addr_to_bytes(addr: &str) -> Option<Vec<u8>> {
    if addr.contains(':') {
        addr.parse::<Ipv6Addr>().ok().map(|a| a.octets().to_vec())
    } else if addr.contains('.') {
        v4_to_bytes(addr)
    } else {
        None
    }
}

/// `v4addr2Bytes`: exactly four dot-separated `Integer.parseInt` values in 0..=255.
fn v4_to_bytes(addr: &str) -> Option<Vec<u8>> {
    let parts: Vec<&str> = addr.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut out = Vec::with_capacity(4);
    for p in parts {
        let v = java_parse_int(p)?;
        if !(0..=255).contains(&v) {
            return None;
        }
        out.push(v as u8);
    }
    Some(out)
}

/// Keeps the first `bits` bits, zeroes the rest (`IPAuthenticationProvider.mask`).
fn mask(bytes: &mut [u8], bits: usize) {
    let start = bits / 8;
    let keep = bits % 8;
    let mut m: u8 = if keep == 0 { 0 } else { 0xFFu8 << (8 - keep) };
    for b in bytes.iter_mut().skip(start) {
        *b &= m;
        m = 0;
    }
}

/// Java `Integer.parseInt(s)` restricted to ASCII digits: optional single
/// leading `+`/`-`, at least one digit, value within `i32`.
fn java_parse_int(s: &str) -> Option<i32> {
    let (neg, digits) = match s.as_bytes().first()? {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut v: i64 = 0;
    for b in digits.bytes() {
        v = v * 10 + i64::from(b - b'0');
        if v > i64::from(i32::MAX) + 1 {
            return None;
        }
    }
    let v = if neg { -v } else { v };
    i32::try_from(v).ok()
}

/// Java's `InetAddress.getHostAddress()` text for a peer address:
/// IPv4-mapped IPv6 becomes IPv4; IPv6 is eight uncompressed hex groups.
pub fn java_host_address(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => Ipv4Addr::to_string(&v4),
            None => {
                let segs = v6.segments();
                let mut s = String::with_capacity(39);
                for (i, seg) in segs.iter().enumerate() {
                    if i > 0 {
                        s.push(':');
                    }
                    s.push_str(&format!("{seg:x}"));
                }
                s
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
        Acl::new(perms, Id::new(scheme, id))
    }

    // Expected values computed independently with Python:
    //   base64.b64encode(hashlib.sha1(b"user:password").digest())
    #[test]
    fn digest_known_vectors() {
        assert_eq!(digest("user:password"), "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=");
        // The example from the ZooKeeper admin guide (superDigest for super:admin).
        assert_eq!(digest("super:admin"), "super:xQJmxLMiHGwaqBvst5y6rkB6HQs=");
        assert_eq!(digest("super:superpw"), "super:g9oN2HttPfn8MMWJZ2r45Np/LIA=");
        // Split at the first colon only; the whole string is hashed.
        assert_eq!(digest("bob:secret:with:colons"), "bob:19SUbgVpClnpXew/2fLDw5Dt1fY=");
        assert_eq!(digest("nocolon"), "nocolon:Ra+cHr2ZoHvBjtNArFGNGlVie4g=");
        assert_eq!(digest(""), ":2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
    }

    #[test]
    fn canned_acls() {
        assert_eq!(open_acl_unsafe(), vec![acl(31, "world", "anyone")]);
        assert_eq!(read_acl_unsafe(), vec![acl(1, "world", "anyone")]);
        assert_eq!(creator_all_acl(), vec![acl(31, "auth", "")]);
        assert_eq!(perms::ALL, 31);
    }

    #[test]
    fn perm_strings() {
        assert_eq!(perms_string(perms::ALL), "cdrwa");
        assert_eq!(perms_string(perms::READ), "r");
        assert_eq!(perms_string(perms::READ | perms::ADMIN), "ra");
        assert_eq!(perms_string(perms::CREATE | perms::WRITE), "cw");
        assert_eq!(perms_string(0), "");
        assert_eq!(perms_string(-1), "cdrwa");
        assert_eq!(perms_from_string("cdrwa"), 31);
        assert_eq!(perms_from_string("arx"), perms::ADMIN | perms::READ);
        assert_eq!(perms_from_string(""), 0);
    }

    #[test]
    fn connection_auth_info() {
        let a = AuthInfo::for_connection(v4(10, 1, 2, 3));
        assert_eq!(a.ids(), &[Id::new("ip", "10.1.2.3")]);
        let a = AuthInfo::for_connection(IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(a.ids(), &[Id::new("ip", "0:0:0:0:0:0:0:1")]);
        let mapped: IpAddr = "::ffff:192.168.1.9".parse().unwrap();
        let a = AuthInfo::for_connection(mapped);
        assert_eq!(a.ids(), &[Id::new("ip", "192.168.1.9")]);
        let v6: IpAddr = "2001:db8::8a2e:370:7334".parse().unwrap();
        assert_eq!(java_host_address(v6), "2001:db8:0:0:0:8a2e:370:7334");
    }

    #[test]
    fn add_auth_rules() {
        let mut a = AuthInfo::for_connection(v4(127, 0, 0, 1));
        a.add_auth("digest", b"user:password").unwrap();
        assert_eq!(a.ids(), &[Id::new("ip", "127.0.0.1"), Id::new("digest", "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=")]);
        // Same credentials again: no duplicate.
        a.add_auth("digest", b"user:password").unwrap();
        assert_eq!(a.ids().len(), 2);
        // ip re-adds the connection's own address: no change.
        a.add_auth("ip", b"whatever").unwrap();
        assert_eq!(a.ids().len(), 2);
        assert_eq!(a.add_auth("world", b"anyone"), Err(AuthFailed::UnknownScheme("world".into())));
        assert_eq!(a.add_auth("sasl", b"x"), Err(AuthFailed::UnknownScheme("sasl".into())));
        // ZooKeeper accepts both (lossy decoding; no colon: the whole text is the user).
        assert_eq!(a.add_auth("digest", b"nocolon"), Ok(()));
        assert!(a.ids().iter().any(|i| i.id.starts_with("nocolon:")));
        assert_eq!(a.add_auth("digest", &[0xff, b':', 0xfe]), Ok(()));
        assert_eq!(a.ids().len(), 4);
        // Empty password is fine.
        a.add_auth("digest", b"u:").unwrap();
        assert_eq!(a.ids().len(), 5);
    }

    #[test]
    fn super_user() {
        let sd = Some("super:xQJmxLMiHGwaqBvst5y6rkB6HQs=");
        let mut a = AuthInfo::for_connection(v4(1, 2, 3, 4));
        assert!(!a.is_super(sd));
        a.add_auth("digest", b"super:wrong").unwrap();
        assert!(!a.is_super(sd));
        a.add_auth("digest", b"super:admin").unwrap();
        assert!(a.is_super(sd));
        assert!(!a.is_super(None));
        // The SASL and x509 super users get a `super:` id from their provider.
        let mut b = AuthInfo::for_connection("10.0.0.1".parse().unwrap());
        assert!(!b.is_super(None));
        b.add_id(Id::new("super", "CN=admin"));
        assert!(b.is_super(None));
        // Super bypasses every ACL.
        let locked = vec![acl(perms::READ, "digest", "someone:else")];
        assert!(check(&locked, perms::ADMIN, &a, sd));
        assert!(!check(&locked, perms::ADMIN, &a, None));
    }

    #[test]
    fn check_world_empty_and_perm_bits() {
        let a = AuthInfo::for_connection(v4(1, 2, 3, 4));
        assert!(check(&[], perms::ALL, &a, None));
        assert!(check(&open_acl_unsafe(), perms::DELETE, &a, None));
        let ro = read_acl_unsafe();
        assert!(check(&ro, perms::READ, &a, None));
        assert!(!check(&ro, perms::WRITE, &a, None));
        // wanted perms are a mask: any overlapping bit grants.
        assert!(check(&ro, perms::READ | perms::WRITE, &a, None));
        assert!(!check(&ro, 0, &a, None));
        // world with another id is not "anyone".
        assert!(!check(&[acl(31, "world", "everyone")], perms::READ, &a, None));
        // auth entries and unknown schemes never match at check time.
        assert!(!check(&[acl(31, "auth", "")], perms::READ, &a, None));
        assert!(!check(&[acl(31, "bogus", "1.2.3.4")], perms::READ, &a, None));
    }

    #[test]
    fn check_digest() {
        let mut a = AuthInfo::for_connection(v4(1, 2, 3, 4));
        let stored = vec![acl(perms::READ | perms::WRITE, "digest", &digest("user:password"))];
        assert!(!check(&stored, perms::READ, &a, None));
        a.add_auth("digest", b"user:wrong").unwrap();
        assert!(!check(&stored, perms::READ, &a, None));
        a.add_auth("digest", b"user:password").unwrap();
        assert!(check(&stored, perms::READ, &a, None));
        assert!(check(&stored, perms::WRITE, &a, None));
        assert!(!check(&stored, perms::DELETE, &a, None));
        // An ip id with the same text does not satisfy a digest entry.
        let weird = vec![acl(31, "digest", "1.2.3.4")];
        assert!(!check(&weird, perms::READ, &a, None));
    }

    #[test]
    fn check_x509_sasl_equality() {
        let mut a = AuthInfo::for_connection(v4(1, 2, 3, 4));
        a.add_id(Id::new("x509", "CN=client"));
        a.add_id(Id::new("sasl", "bob@EXAMPLE.COM"));
        assert!(check(&[acl(1, "x509", "CN=client")], 1, &a, None));
        assert!(!check(&[acl(1, "x509", "CN=other")], 1, &a, None));
        assert!(check(&[acl(1, "sasl", "bob@EXAMPLE.COM")], 1, &a, None));
        assert!(!check(&[acl(1, "sasl", "bob")], 1, &a, None));
    }

    #[test]
    fn ip_cidr_v4() {
        assert!(ip_matches("10.1.2.3", "10.0.0.0/8"));
        assert!(ip_matches("10.255.255.255", "10.0.0.0/8"));
        assert!(!ip_matches("11.0.0.1", "10.0.0.0/8"));
        assert!(ip_matches("192.168.1.77", "192.168.1.64/26"));
        assert!(!ip_matches("192.168.1.128", "192.168.1.64/26"));
        // Host bits set in the ACL are masked away too.
        assert!(ip_matches("10.9.9.9", "10.1.2.3/8"));
        // Plain address = /32.
        assert!(ip_matches("127.0.0.1", "127.0.0.1"));
        assert!(!ip_matches("127.0.0.2", "127.0.0.1"));
        // /0 matches every IPv4 address.
        assert!(ip_matches("8.8.8.8", "0.0.0.0/0"));
        // Odd bit counts.
        assert!(ip_matches("172.17.0.1", "172.16.0.0/12"));
        assert!(ip_matches("172.31.255.255", "172.16.0.0/12"));
        assert!(!ip_matches("172.32.0.0", "172.16.0.0/12"));
        // Java parseInt leniency.
        assert!(ip_matches("10.0.0.1", "010.0.0.1"));
        assert!(ip_matches("10.0.0.1", "10.0.0.0/+8"));
        // Malformed expressions never match.
        for bad in [
            "10.0.0.0/33",
            "10.0.0.0/-1",
            "10.0.0.0/",
            "10.0.0.0/x",
            "10.0.0",
            "10.0.0.0.0",
            "256.0.0.1",
            "10..0.1",
            "",
            "/8",
            "localhost",
            "10.0.0.0/8/8",
        ] {
            assert!(!ip_matches("10.0.0.1", bad), "{bad}");
        }
        // Malformed session ids never match either.
        assert!(!ip_matches("garbage", "0.0.0.0/0"));
    }

    #[test]
    fn ip_cidr_v6() {
        assert!(ip_matches("0:0:0:0:0:0:0:1", "::1"));
        assert!(ip_matches("0:0:0:0:0:0:0:1", "::1/128"));
        assert!(ip_matches("2001:db8:0:0:0:0:0:42", "2001:db8::/32"));
        assert!(!ip_matches("2001:db9:0:0:0:0:0:42", "2001:db8::/32"));
        assert!(ip_matches("fe80:0:0:0:1:2:3:4", "fe80::/10"));
        assert!(ip_matches("febf:0:0:0:0:0:0:1", "fe80::/10"));
        assert!(!ip_matches("fec0:0:0:0:0:0:0:1", "fe80::/10"));
        assert!(ip_matches("2001:db8:0:0:0:0:0:1", "::/0"));
        assert!(!ip_matches("2001:db8::1", "2001:db8::/129"));
        // Families never mix, even with /0.
        assert!(!ip_matches("10.0.0.1", "::/0"));
        assert!(!ip_matches("0:0:0:0:0:0:0:1", "0.0.0.0/0"));
        // End to end through check().
        let a = AuthInfo::for_connection("2001:db8::7".parse().unwrap());
        assert!(check(&[acl(31, "ip", "2001:db8::/64")], perms::READ, &a, None));
        assert!(!check(&[acl(31, "ip", "2001:db9::/64")], perms::READ, &a, None));
    }

    #[test]
    fn check_ip_end_to_end() {
        let a = AuthInfo::for_connection(v4(10, 20, 30, 40));
        let stored = vec![acl(perms::READ, "ip", "10.0.0.0/8"), acl(perms::ALL, "ip", "10.20.30.40")];
        assert!(check(&stored, perms::READ, &a, None));
        assert!(check(&stored, perms::DELETE, &a, None));
        let b = AuthInfo::for_connection(v4(10, 20, 30, 41));
        assert!(check(&stored, perms::READ, &b, None));
        assert!(!check(&stored, perms::DELETE, &b, None));
    }

    #[test]
    fn fix_acl_basic() {
        let a = AuthInfo::for_connection(v4(1, 2, 3, 4));
        assert_eq!(fix_acl(&[], &a), Err(InvalidAcl::Empty));
        assert_eq!(fix_acl(&open_acl_unsafe(), &a), Ok(open_acl_unsafe()));
        assert_eq!(fix_acl(&[acl(31, "world", "someone")], &a), Err(InvalidAcl::BadWorldId("someone".into())));
        assert_eq!(fix_acl(&[acl(31, "super", "")], &a), Err(InvalidAcl::UnknownScheme("super".into())));
        assert_eq!(fix_acl(&[acl(31, "x509", "CN=a")], &a), Ok(vec![acl(31, "x509", "CN=a")]));
        assert_eq!(fix_acl(&[acl(31, "sasl", "")], &a), Err(InvalidAcl::UnknownScheme("sasl".into())));
        // Perms are not validated.
        assert_eq!(fix_acl(&[acl(0, "world", "anyone")], &a), Ok(vec![acl(0, "world", "anyone")]));
        assert_eq!(fix_acl(&[acl(999, "world", "anyone")], &a), Ok(vec![acl(999, "world", "anyone")]));
        // One bad entry spoils the list.
        assert!(fix_acl(&[acl(31, "world", "anyone"), acl(1, "ip", "nope")], &a).is_err());
    }

    #[test]
    fn fix_acl_dedup_preserves_order() {
        let a = AuthInfo::for_connection(v4(1, 2, 3, 4));
        let input = vec![
            acl(1, "ip", "10.0.0.0/8"),
            acl(31, "world", "anyone"),
            acl(1, "ip", "10.0.0.0/8"),
            acl(2, "ip", "10.0.0.0/8"),
            acl(31, "world", "anyone"),
        ];
        assert_eq!(
            fix_acl(&input, &a).unwrap(),
            vec![acl(1, "ip", "10.0.0.0/8"), acl(31, "world", "anyone"), acl(2, "ip", "10.0.0.0/8")]
        );
    }

    #[test]
    fn fix_acl_auth_expansion() {
        let mut a = AuthInfo::for_connection(v4(1, 2, 3, 4));
        // Only an ip id: not authenticated, so auth is invalid.
        assert_eq!(fix_acl(&creator_all_acl(), &a), Err(InvalidAcl::NoAuthenticatedIds));
        a.add_auth("digest", b"alice:pw1").unwrap();
        a.add_auth("digest", b"bob:pw2").unwrap();
        let got = fix_acl(&[acl(perms::READ | perms::WRITE, "auth", "ignored")], &a).unwrap();
        assert_eq!(got, vec![acl(3, "digest", &digest("alice:pw1")), acl(3, "digest", &digest("bob:pw2")),]);
        // Mixed with other entries; order kept.
        let got = fix_acl(&[acl(1, "world", "anyone"), acl(31, "auth", "")], &a).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], acl(1, "world", "anyone"));
        assert_eq!(got[1].id.scheme, "digest");
        // x509 / sasl session ids count as authenticated.
        let mut b = AuthInfo::for_connection(v4(1, 2, 3, 4));
        b.add_id(Id::new("x509", "CN=c"));
        assert_eq!(fix_acl(&creator_all_acl(), &b), Ok(vec![acl(31, "x509", "CN=c")]));
        // Empty AuthInfo.
        assert_eq!(fix_acl(&creator_all_acl(), &AuthInfo::empty()), Err(InvalidAcl::NoAuthenticatedIds));
    }

    #[test]
    fn fix_acl_digest_validation() {
        let a = AuthInfo::for_connection(v4(1, 2, 3, 4));
        let ok = ["user:hash", ":hash", "user:hash:", "user:hash::", "u:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY="];
        for id in ok {
            assert!(fix_acl(&[acl(31, "digest", id)], &a).is_ok(), "{id}");
        }
        let bad = ["", "user", "user:", ":", "::", "a:b:c", "a::b", "user:hash:extra"];
        for id in bad {
            assert_eq!(fix_acl(&[acl(31, "digest", id)], &a), Err(InvalidAcl::BadDigestId(id.to_string())), "{id}");
        }
    }

    #[test]
    fn fix_acl_ip_validation() {
        let a = AuthInfo::empty();
        for id in ["10.0.0.1", "10.0.0.0/8", "0.0.0.0/0", "1.2.3.4/32", "::1", "2001:db8::/32", "::/0"] {
            assert!(fix_acl(&[acl(31, "ip", id)], &a).is_ok(), "{id}");
        }
        for id in ["", "10.0.0", "10.0.0.1/33", "10.0.0.1/", "host", "::1/129", "1.2.3.4/a", "1.2.3.999"] {
            assert_eq!(fix_acl(&[acl(31, "ip", id)], &a), Err(InvalidAcl::BadIpId(id.to_string())), "{id}");
        }
    }

    #[test]
    fn java_parse_int_edges() {
        assert_eq!(java_parse_int("0"), Some(0));
        assert_eq!(java_parse_int("007"), Some(7));
        assert_eq!(java_parse_int("+5"), Some(5));
        assert_eq!(java_parse_int("-0"), Some(0));
        assert_eq!(java_parse_int("2147483647"), Some(i32::MAX));
        assert_eq!(java_parse_int("-2147483648"), Some(i32::MIN));
        assert_eq!(java_parse_int("2147483648"), None);
        assert_eq!(java_parse_int("99999999999999999999999"), None);
        assert_eq!(java_parse_int(""), None);
        assert_eq!(java_parse_int("+"), None);
        assert_eq!(java_parse_int("1 "), None);
        assert_eq!(java_parse_int("٣"), None);
    }

    #[test]
    fn no_panics_on_odd_input() {
        let weird = [
            "",
            ":",
            "/",
            "//",
            "::::",
            "1.2.3.4/999999999999",
            "é",
            "\0",
            "1.2.3.4/-2147483648",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
            "[::1]",
            "::1%lo",
        ];
        let mut a = AuthInfo::for_connection(v4(0, 0, 0, 0));
        for w in weird {
            let _ = ip_matches(w, w);
            let _ = ip_id_is_valid(w);
            let _ = digest_id_is_valid(w);
            let _ = digest(w);
            let _ = a.add_auth(w, w.as_bytes());
            let _ = a.add_auth("digest", w.as_bytes());
            for scheme in ["ip", "digest", "world", "auth", w] {
                let list = vec![acl(i32::MIN, scheme, w), acl(-1, scheme, w)];
                let _ = fix_acl(&list, &a);
                let _ = check(&list, -1, &a, Some(w));
            }
        }
    }
}
