//! A certificate's subject as ZooKeeper's `X509AuthenticationProvider` names it:
//! `X509Certificate.getSubjectX500Principal().getName()`, the RFC 2253 string, e.g.
//! `CN=client,OU=test,O=warren`.
//!
//! Java's RFC 2253 form, which this reproduces:
//! * relative distinguished names in reverse order of the DER encoding (most specific
//!   first), joined by `,`; the attributes of a multi-valued one joined by `+`;
//! * keywords for CN, C, L, ST, O, OU, STREET, DC and UID; any other attribute (emailAddress
//!   among them) as its dotted OID with `#` and the hex of its DER encoding;
//! * `,`, `+`, `"`, `\`, `<`, `>` and `;` escaped with `\`, as are a leading `#` or space and
//!   a trailing space.
//!
//! Only the walk to the subject is done here (a small DER reader): the certificate was already
//! verified by rustls, and nothing else of it is needed.

use std::fmt::Write as _;

/// The RFC 2253 subject of a DER certificate, or None if it cannot be read.
pub fn subject_rfc2253(cert_der: &[u8]) -> Option<String> {
    let (cert, _) = Tlv::read(cert_der, SEQUENCE)?;
    let (tbs, _) = Tlv::read(cert.body, SEQUENCE)?;
    let mut rest = tbs.body;
    // version [0] EXPLICIT, absent in v1 certificates.
    if rest.first() == Some(&0xa0) {
        rest = Tlv::read(rest, 0xa0)?.1;
    }
    rest = Tlv::read(rest, INTEGER)?.1; // serialNumber
    rest = Tlv::read(rest, SEQUENCE)?.1; // signature
    rest = Tlv::read(rest, SEQUENCE)?.1; // issuer
    rest = Tlv::read(rest, SEQUENCE)?.1; // validity
    let (subject, _) = Tlv::read(rest, SEQUENCE)?;
    name_rfc2253(subject.body)
}

/// The RFC 2253 form of the contents of a DER `Name` (a SEQUENCE OF SET OF attributes).
fn name_rfc2253(mut name: &[u8]) -> Option<String> {
    let mut rdns = Vec::new();
    while !name.is_empty() {
        let (set, rest) = Tlv::read(name, SET)?;
        name = rest;
        let mut avas = Vec::new();
        let mut body = set.body;
        while !body.is_empty() {
            let (ava, rest) = Tlv::read(body, SEQUENCE)?;
            body = rest;
            avas.push(ava_rfc2253(ava.body)?);
        }
        rdns.push(avas.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

fn ava_rfc2253(ava: &[u8]) -> Option<String> {
    let (oid, rest) = Tlv::read(ava, OID)?;
    let oid = dotted(oid.body)?;
    let value = Tlv::any(rest)?.0;
    match (keyword(&oid), decode_string(&value)) {
        (Some(k), Some(text)) => Some(format!("{k}={}", escape(&text))),
        _ => {
            let mut hex = String::with_capacity(value.whole.len() * 2);
            for b in value.whole {
                let _ = write!(hex, "{b:02x}");
            }
            Some(format!("{}=#{hex}", keyword(&oid).unwrap_or(&oid)))
        }
    }
}

/// The keywords Java's RFC 2253 output uses.
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

fn decode_string(v: &Tlv<'_>) -> Option<String> {
    match v.tag {
        // UTF8String, NumericString, PrintableString, IA5String, VisibleString
        0x0c | 0x12 | 0x13 | 0x16 | 0x1a => String::from_utf8(v.body.to_vec()).ok(),
        // TeletexString: Java reads it as ISO-8859-1.
        0x14 => Some(v.body.iter().map(|&b| char::from(b)).collect()),
        // BMPString: UTF-16BE.
        0x1e if v.body.len() % 2 == 0 => {
            let units: Vec<u16> = v.body.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16(&units).ok()
        }
        // UniversalString: UTF-32BE.
        0x1c if v.body.len() % 4 == 0 => {
            v.body.chunks(4).map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))).collect()
        }
        _ => None,
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let last = text.chars().count().saturating_sub(1);
    for (i, c) in text.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An OID's contents in dotted form.
fn dotted(body: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for (i, &b) in body.iter().enumerate() {
        value = value.checked_mul(128)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        } else if i == body.len() - 1 {
            return None;
        }
    }
    if arcs.is_empty() {
        return None;
    }
    Some(arcs.iter().map(u64::to_string).collect::<Vec<_>>().join("."))
}

const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;

/// One DER tag-length-value with a single-byte tag.
struct Tlv<'a> {
    tag: u8,
    body: &'a [u8],
    /// Tag, length and body together.
    whole: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// Reads a TLV of any tag; returns it and what follows.
    fn any(input: &'a [u8]) -> Option<(Tlv<'a>, &'a [u8])> {
        let (&tag, rest) = input.split_first()?;
        if tag & 0x1f == 0x1f {
            return None; // high tag numbers: not in a Name or on the way to it
        }
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return None;
        }
        let header = input.len() - rest.len();
        let whole = &input[..header + len];
        Some((Tlv { tag, body: &rest[..len], whole }, &rest[len..]))
    }

    /// Reads a TLV that must have `tag`.
    fn read(input: &'a [u8], tag: u8) -> Option<(Tlv<'a>, &'a [u8])> {
        let (tlv, rest) = Tlv::any(input)?;
        (tlv.tag == tag).then_some((tlv, rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_with(dn: rcgen::DistinguishedName) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = dn;
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn subject_in_java_rfc2253_order() {
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "DE");
        dn.push(rcgen::DnType::OrganizationName, "warren");
        dn.push(rcgen::DnType::OrganizationalUnitName, "test");
        dn.push(rcgen::DnType::CommonName, "client");
        assert_eq!(subject_rfc2253(&cert_with(dn)).unwrap(), "CN=client,OU=test,O=warren,C=DE");
    }

    #[test]
    fn special_characters_are_escaped() {
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::OrganizationName, "Acme, Inc.");
        dn.push(rcgen::DnType::CommonName, "#a+b ");
        assert_eq!(subject_rfc2253(&cert_with(dn)).unwrap(), r"CN=\#a\+b\ ,O=Acme\, Inc.");
    }

    #[test]
    fn other_attributes_are_oid_and_hex() {
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(
            rcgen::DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
            rcgen::DnValue::Ia5String("a@b".try_into().unwrap()),
        );
        dn.push(rcgen::DnType::CommonName, "x");
        // IA5String "a@b": 16 03 61 40 62.
        assert_eq!(subject_rfc2253(&cert_with(dn)).unwrap(), "CN=x,1.2.840.113549.1.9.1=#1603614062");
    }

    #[test]
    fn garbage_is_none_not_a_panic() {
        assert_eq!(subject_rfc2253(&[]), None);
        assert_eq!(subject_rfc2253(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(subject_rfc2253(&[0x30, 0x03, 0x30, 0x01]), None);
        let good = cert_with(rcgen::DistinguishedName::new());
        for cut in 0..good.len() {
            let _ = subject_rfc2253(&good[..cut]);
        }
        let mut flipped = good.clone();
        for i in 0..flipped.len() {
            flipped[i] ^= 0xff;
            let _ = subject_rfc2253(&flipped);
            flipped[i] ^= 0xff;
        }
    }

    #[test]
    fn oids_decode() {
        assert_eq!(dotted(&[0x55, 0x04, 0x03]).unwrap(), "2.5.4.3");
        assert_eq!(dotted(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]).unwrap(), "1.2.840.113549.1.9.1");
        assert_eq!(dotted(&[0x86]), None);
    }
}
