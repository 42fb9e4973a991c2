"""Test certificates made with python ``cryptography``: a CA, server key stores for
127.0.0.1 and localhost, client certificates of that CA (alice, bob), and a rogue CA with a
client certificate of its own (mallory). Used by test_tls.py and ci/bench_tls.py."""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(cn: str, ou: str) -> x509.Name:
    # DER order O, OU, CN: RFC 2253 (ZooKeeper's getName()) prints it reversed, CN first.
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Warren Test"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def _cert(subject, key, issuer, issuer_key, *, ca=False, san=None, client=False, expired=False, peer=False):
    now = datetime.datetime.now(datetime.timezone.utc)
    if expired:
        now -= datetime.timedelta(days=3)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(hours=1))
         .not_valid_after(now + datetime.timedelta(days=2))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                          content_commitment=False, key_encipherment=False,
                                          data_encipherment=False, key_agreement=False,
                                          encipher_only=False, decipher_only=False), critical=True)
    elif peer:
        # A server of an ensemble both accepts and dials: TLS server and TLS client.
        b = b.add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                                                   x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    else:
        usage = x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH if client else x509.oid.ExtendedKeyUsageOID.SERVER_AUTH
        b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if san:
        b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _pem(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class Pki:
    """The files of one set of certificates."""

    def __init__(self, d: Path):
        self.dir = d
        d.mkdir(parents=True, exist_ok=True)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca_name = _name("Warren Test CA", "ca")
        self.ca = _cert(self.ca_name, self.ca_key, self.ca_name, self.ca_key, ca=True)
        (d / "ca.pem").write_bytes(_pem(self.ca))
        self.server_pem = d / "server.pem"
        self.write_server_cert("server-1", self.server_pem)
        for who in ("alice", "bob"):
            self._client(who, self.ca_name, self.ca_key)
        self._client("expired", self.ca_name, self.ca_key, expired=True)
        rogue_key = ec.generate_private_key(ec.SECP256R1())
        rogue_name = _name("Rogue CA", "ca")
        rogue = _cert(rogue_name, rogue_key, rogue_name, rogue_key, ca=True)
        (d / "rogue-ca.pem").write_bytes(_pem(rogue))
        self._client("mallory", rogue_name, rogue_key)

    def write_server_cert(self, cn: str, path: Path, hosts: tuple = ("127.0.0.1", "localhost"),
                          peer: bool = False) -> None:
        """A server key store (key and certificate in one PEM file) naming `cn`, valid for
        `hosts` (IP addresses and DNS names). `peer`: usable by an ensemble member for its
        quorum links (extended key usage serverAuth and clientAuth)."""
        key = ec.generate_private_key(ec.SECP256R1())

        def name(h):
            try:
                return x509.IPAddress(ipaddress.ip_address(h))
            except ValueError:
                return x509.DNSName(h)
        san = [name(h) for h in hosts]
        cert = _cert(_name(cn, "servers"), key, self.ca_name, self.ca_key, san=san, peer=peer)
        path.write_bytes(_key_pem(key) + _pem(cert))

    def write_pkcs12_key_store(self, path: Path, password: str) -> None:
        """The server's key and certificate (from its PEM key store) as a PKCS12 file."""
        from cryptography.hazmat.primitives.serialization import pkcs12
        pem = self.server_pem.read_bytes()
        key = serialization.load_pem_private_key(pem, None)
        cert = x509.load_pem_x509_certificate(pem[pem.index(b"-----BEGIN CERTIFICATE"):])
        enc = serialization.BestAvailableEncryption(password.encode())
        path.write_bytes(pkcs12.serialize_key_and_certificates(b"server", key, cert, None, enc))

    def write_pkcs12_trust_store(self, path: Path, password: str) -> None:
        """The CA certificate as a PKCS12 trust store made the way Java users make one
        (`keytool -importcert`: a trusted-certificate entry, no key)."""
        subprocess.run(["keytool", "-importcert", "-noprompt", "-storetype", "PKCS12", "-alias", "warren-test-ca",
                        "-file", self.ca_file, "-keystore", str(path), "-storepass", password],
                       check=True, capture_output=True)

    def _client(self, who, issuer, issuer_key, expired=False):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(_name(who, "clients"), key, issuer, issuer_key, client=True, expired=expired)
        (self.dir / f"{who}.crt").write_bytes(_pem(cert))
        (self.dir / f"{who}.key").write_bytes(_key_pem(key))
        # Key and certificate in one file: a PEM key store for the Java client.
        (self.dir / f"{who}.pem").write_bytes(_key_pem(key) + _pem(cert))

    @property
    def ca_file(self) -> str:
        return str(self.dir / "ca.pem")

    def client_files(self, who: str | None) -> dict:
        if who is None:
            return {}
        return {"certfile": str(self.dir / f"{who}.crt"), "keyfile": str(self.dir / f"{who}.key")}
