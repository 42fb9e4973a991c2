//! How zkCli prints things: a Stat one `name = value` a line, times as Java's
//! `Date.toString()` (`Thu Jan 01 00:00:00 UTC 1970`, in the local time zone), ACL
//! permissions as letters in the order `cdrwa`, lists as Java's `List.toString()`.

use serde_json::{json, Value};
use zookeeper_client::{Acl, Permission, Stat};

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// A moment broken down in some zone: what `Date.toString()` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32, // 1..=12
    pub day: u32,   // 1..=31
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// Days since 1970-01-01 (a Thursday) in that zone, for the weekday.
    pub days: i64,
    pub zone: String,
}

/// Breaks `secs` (seconds since the epoch, already shifted into the zone) down; the
/// days-to-date step is the well-known proleptic-Gregorian era computation.
pub fn civil_from_secs(secs: i64, zone: &str) -> Civil {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: (rem / 3600) as u32,
        minute: (rem % 3600 / 60) as u32,
        second: (rem % 60) as u32,
        days,
        zone: zone.to_string(),
    }
}

/// Java's `Date.toString()` layout: `EEE MMM dd HH:mm:ss zzz yyyy`.
pub fn java_date(c: &Civil) -> String {
    let wd = DAYS[c.days.rem_euclid(7) as usize];
    let mon = MONTHS[(c.month.clamp(1, 12) - 1) as usize];
    format!("{wd} {mon} {:02} {:02}:{:02}:{:02} {} {}", c.day, c.hour, c.minute, c.second, c.zone, c.year)
}

/// The local zone's offset (seconds east of UTC) and abbreviation at `secs`.
fn local_zone(secs: i64) -> (i64, String) {
    let t = secs as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, which we own; tm_zone then points at a
    // static string owned by the C library (or is null).
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return (0, "UTC".into());
        }
        let zone = if tm.tm_zone.is_null() {
            "UTC".to_string()
        } else {
            std::ffi::CStr::from_ptr(tm.tm_zone).to_string_lossy().into_owned()
        };
        (tm.tm_gmtoff, zone)
    }
}

/// A ZooKeeper time (ms since the epoch) as zkCli prints it, in the local zone.
pub fn format_time_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (offset, zone) = local_zone(secs);
    java_date(&civil_from_secs(secs + offset, &zone))
}

/// `get -s`, `stat`, `ls -s`, `set -s`: eleven lines, zxids and the owner in unpadded hex.
pub fn format_stat(stat: &Stat, time: impl Fn(i64) -> String) -> String {
    format!(
        "cZxid = 0x{:x}\nctime = {}\nmZxid = 0x{:x}\nmtime = {}\npZxid = 0x{:x}\ncversion = {}\n\
         dataVersion = {}\naclVersion = {}\nephemeralOwner = 0x{:x}\ndataLength = {}\nnumChildren = {}\n",
        stat.czxid,
        time(stat.ctime),
        stat.mzxid,
        time(stat.mtime),
        stat.pzxid,
        stat.cversion,
        stat.version,
        stat.aversion,
        stat.ephemeral_owner,
        stat.data_length,
        stat.num_children
    )
}

pub fn stat_json(stat: &Stat) -> Value {
    json!({
        "czxid": stat.czxid, "mzxid": stat.mzxid, "pzxid": stat.pzxid,
        "ctime": stat.ctime, "mtime": stat.mtime,
        "version": stat.version, "cversion": stat.cversion, "aversion": stat.aversion,
        "ephemeralOwner": stat.ephemeral_owner,
        "dataLength": stat.data_length, "numChildren": stat.num_children,
    })
}

/// Letters in zkCli's order (ZKUtil.getPermString): create, delete, read, write, admin.
pub fn perm_string(p: Permission) -> String {
    let mut s = String::new();
    for (bit, c) in [
        (Permission::CREATE, 'c'),
        (Permission::DELETE, 'd'),
        (Permission::READ, 'r'),
        (Permission::WRITE, 'w'),
        (Permission::ADMIN, 'a'),
    ] {
        if p.has(bit) {
            s.push(c);
        }
    }
    s
}

/// Parses `cdrwa` letters; None on any other letter.
pub fn parse_perms(s: &str) -> Option<Permission> {
    let mut p = Permission::NONE;
    for c in s.chars() {
        p = p | match c {
            'c' => Permission::CREATE,
            'd' => Permission::DELETE,
            'r' => Permission::READ,
            'w' => Permission::WRITE,
            'a' => Permission::ADMIN,
            _ => return None,
        };
    }
    Some(p)
}

/// `getAcl`: `'scheme,'id` then `: perms` for each entry.
pub fn format_acl(acls: &[Acl]) -> String {
    let mut out = String::new();
    for a in acls {
        out.push_str(&format!("'{},'{}\n: {}\n", a.scheme(), a.id(), perm_string(a.permission())));
    }
    out
}

pub fn acl_json(acls: &[Acl]) -> Value {
    Value::Array(
        acls.iter()
            .map(|a| json!({"scheme": a.scheme(), "id": a.id(), "perms": perm_string(a.permission())}))
            .collect(),
    )
}

/// Java's `List.toString()`: `[a, b]`.
pub fn java_list<S: AsRef<str>>(items: &[S]) -> String {
    let parts: Vec<&str> = items.iter().map(|s| s.as_ref()).collect();
    format!("[{}]", parts.join(", "))
}

/// Parses an ACL list as zkCli does: `scheme:id:perms[,scheme:id:perms]`; the id runs
/// from the first colon to the last (digest ids contain a colon).
pub fn parse_acl(text: &str) -> Result<Vec<Acl>, String> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let (Some(first), Some(last)) = (part.find(':'), part.rfind(':')) else {
            return Err(format!("{part} does not have the form scheme:id:perm"));
        };
        if first == last {
            return Err(format!("{part} does not have the form scheme:id:perm"));
        }
        let perms = &part[last + 1..];
        let Some(p) = parse_perms(perms) else {
            return Err(format!("Invalid permission {perms} in {part}"));
        };
        out.push(Acl::new(p, zookeeper_client::AuthId::new(&part[..first], &part[first + 1..last])));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat() -> Stat {
        Stat {
            czxid: 0x100000002,
            mzxid: 0x100000005,
            pzxid: 0x2,
            ctime: 0,
            mtime: 1_796_559_129_000,
            version: 2,
            cversion: -1,
            aversion: 0,
            ephemeral_owner: 0x1000a3b2c0000,
            data_length: 7,
            num_children: 1,
        }
    }

    #[test]
    fn java_date_layout() {
        assert_eq!(java_date(&civil_from_secs(0, "UTC")), "Thu Jan 01 00:00:00 UTC 1970");
        // 2026-12-06 12:12:09 UTC was a Sunday (seen in zkCli's output on this machine)
        assert_eq!(java_date(&civil_from_secs(1_796_559_129, "UTC")), "Sun Dec 06 12:12:09 UTC 2026");
        assert_eq!(java_date(&civil_from_secs(951_782_400, "UTC")), "Tue Feb 29 00:00:00 UTC 2000");
        assert_eq!(java_date(&civil_from_secs(-1, "GMT")), "Wed Dec 31 23:59:59 GMT 1969");
        assert_eq!(java_date(&civil_from_secs(4_102_444_800 + 3600 * 2, "CET")), "Fri Jan 01 02:00:00 CET 2100");
    }

    #[test]
    fn stat_like_zkcli() {
        let text = format_stat(&stat(), |ms| java_date(&civil_from_secs(ms / 1000, "UTC")));
        assert_eq!(
            text,
            "cZxid = 0x100000002\nctime = Thu Jan 01 00:00:00 UTC 1970\nmZxid = 0x100000005\n\
             mtime = Sun Dec 06 12:12:09 UTC 2026\npZxid = 0x2\ncversion = -1\ndataVersion = 2\n\
             aclVersion = 0\nephemeralOwner = 0x1000a3b2c0000\ndataLength = 7\nnumChildren = 1\n"
        );
        let j = stat_json(&stat());
        assert_eq!(j["cversion"], -1);
        assert_eq!(j["ephemeralOwner"], 0x1000a3b2c0000i64);
    }

    #[test]
    fn acls_and_lists() {
        assert_eq!(perm_string(Permission::ALL), "cdrwa");
        assert_eq!(perm_string(Permission::READ | Permission::ADMIN), "ra");
        assert_eq!(parse_perms("rw"), Some(Permission::READ | Permission::WRITE));
        assert_eq!(parse_perms("rx"), None);
        let acl = parse_acl("world:anyone:r,digest:alice:aYX=:cdrwa").unwrap();
        assert_eq!(format_acl(&acl), "'world,'anyone\n: r\n'digest,'alice:aYX=\n: cdrwa\n");
        assert!(parse_acl("world:r").is_err());
        assert!(parse_acl("world:anyone:q").is_err());
        assert_eq!(java_list(&["a", "b"]), "[a, b]");
        assert_eq!(java_list::<&str>(&[]), "[]");
    }
}
