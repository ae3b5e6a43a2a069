"""Builds the chain-validation suite for tests/verify_suite.rs.

Every case is made here at test time: certificates are assembled field by field (a small
DER writer over Python `cryptography`'s keys, names and extension encodings), so that
malformed ones are possible too: duplicate or critical key-identifier extensions, weak and
explicit-parameter keys, broken name constraints and subjectAltNames. CRLs come from
`cryptography`'s CRL builder.

Usage: verify_cases.py OUTDIR. Writes OUTDIR/<case>/... and OUTDIR/cases.json, a list of
{name, class, leaf, chain, ca, crls, host, ip, purpose, expect, reason, warn, openssl,
java}: file names relative to OUTDIR, `chain` null for no --chain (an empty list for an
empty --chain file), `expect` "ok" or "fail", `reason` a phrase certmesh's message must
contain, `warn` one its warnings must contain, `openssl`/`java` whether that validator's
verdict applies to the case (no host name or purpose it cannot express).
"""

import datetime
import hashlib
import ipaddress
import json
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
DAY = datetime.timedelta(days=1)

# ---------------------------------------------------------------- DER writer


def tlv(tag, body):
    n = len(body)
    if n < 128:
        length = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + length + body


def seq(*parts):
    return tlv(0x30, b"".join(parts))


def integer(n):
    b = n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big")
    return tlv(0x02, b)


def oid(s):
    p = [int(x) for x in s.split(".")]
    body = bytes([40 * p[0] + p[1]])
    for v in p[2:]:
        enc = [v & 0x7F]
        v >>= 7
        while v:
            enc.append(0x80 | (v & 0x7F))
            v >>= 7
        body += bytes(reversed(enc))
    return tlv(0x06, body)


def time(t):
    if t.year < 2050:
        return tlv(0x17, t.strftime("%y%m%d%H%M%SZ").encode())
    return tlv(0x18, t.strftime("%Y%m%d%H%M%SZ").encode())


NULL = b"\x05\x00"

# ---------------------------------------------------------------- keys


class Key:
    def __init__(self, kind="ec"):
        self.kind = kind
        if kind == "ec":
            self.priv = ec.generate_private_key(ec.SECP256R1())
        elif kind == "p384":
            self.priv = ec.generate_private_key(ec.SECP384R1())
        elif kind == "p521":
            self.priv = ec.generate_private_key(ec.SECP521R1())
        elif kind == "p192":
            self.priv = ec.generate_private_key(ec.SECP192R1())
        elif kind.startswith("rsa"):
            self.priv = rsa.generate_private_key(65537, int(kind[3:] or 2048))
        elif kind == "ed25519":
            self.priv = ed25519.Ed25519PrivateKey.generate()
        elif kind == "dsa":
            self.priv = dsa.generate_private_key(2048)
        elif kind == "explicit":
            # An EC P-256 key whose SPKI spells the curve out instead of naming it.
            self.priv = ec.generate_private_key(ec.SECP256R1())
        self.pub = self.priv.public_key()

    def spki(self):
        der = self.pub.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if self.kind != "explicit":
            return der
        n = self.pub.public_numbers()
        point = b"\x04" + n.x.to_bytes(32, "big") + n.y.to_bytes(32, "big")
        p = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
        a = p - 3
        b = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
        gx = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
        gy = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5
        order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
        params = seq(
            integer(1),
            seq(oid("1.2.840.10045.1.1"), integer(p)),
            seq(tlv(0x04, a.to_bytes(32, "big")), tlv(0x04, b.to_bytes(32, "big"))),
            tlv(0x04, b"\x04" + gx.to_bytes(32, "big") + gy.to_bytes(32, "big")),
            integer(order),
            integer(1),
        )
        return seq(seq(oid("1.2.840.10045.2.1"), params), tlv(0x03, b"\x00" + point))

    def key_id(self):
        return hashlib.sha1(self.spki()).digest()

    def sign(self, data, digest="sha256"):
        h = {"sha256": hashes.SHA256(), "sha1": hashes.SHA1(), "md5": hashes.MD5()}[digest]
        if isinstance(self.priv, rsa.RSAPrivateKey):
            alg = {"sha256": "1.2.840.113549.1.1.11", "sha1": "1.2.840.113549.1.1.5",
                   "md5": "1.2.840.113549.1.1.4"}[digest]
            return seq(oid(alg), NULL), self.priv.sign(data, padding.PKCS1v15(), h)
        if isinstance(self.priv, ec.EllipticCurvePrivateKey):
            alg = {"sha256": "1.2.840.10045.4.3.2", "sha1": "1.2.840.10045.4.1"}[digest]
            return seq(oid(alg)), self.priv.sign(data, ec.ECDSA(h))
        if isinstance(self.priv, ed25519.Ed25519PrivateKey):
            return seq(oid("1.3.101.112")), self.priv.sign(data)
        if isinstance(self.priv, dsa.DSAPrivateKey):
            return seq(oid("2.16.840.1.101.3.4.3.2")), self.priv.sign(data, hashes.SHA256())
        raise ValueError(self.kind)


# ---------------------------------------------------------------- extensions

SERVER = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT = ExtendedKeyUsageOID.CLIENT_AUTH


def ext(oid_s, value, critical=False):
    return (oid_s, critical, value)


def bc(ca=True, pathlen=None, critical=True):
    return ext("2.5.29.19", x509.BasicConstraints(ca=ca, path_length=pathlen).public_bytes(), critical)


def ku(*names, critical=True):
    flags = dict(digital_signature=False, content_commitment=False, key_encipherment=False,
                 data_encipherment=False, key_agreement=False, key_cert_sign=False,
                 crl_sign=False, encipher_only=False, decipher_only=False)
    for n in names:
        flags[n] = True
    return ext("2.5.29.15", x509.KeyUsage(**flags).public_bytes(), critical)


def eku(*oids, critical=False):
    return ext("2.5.29.37", x509.ExtendedKeyUsage(list(oids)).public_bytes(), critical)


def san(dns=(), ip=(), email=(), critical=False):
    names = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ip]
    names += [x509.RFC822Name(e) for e in email]
    return ext("2.5.29.17", x509.SubjectAlternativeName(names).public_bytes(), critical)


def raw_san(*general_names):
    """A subjectAltName from raw GeneralName encodings (for malformed ones)."""
    return ext("2.5.29.17", seq(*general_names))


def nc(permitted=(), excluded=(), critical=True):
    def tree(items):
        out = []
        for kind, v in items:
            if kind == "dns":
                out.append(x509.DNSName(v))
            elif kind == "ip":
                out.append(x509.IPAddress(ipaddress.ip_network(v)))
            elif kind == "email":
                out.append(x509.RFC822Name(v))
            elif kind == "dir":
                out.append(x509.DirectoryName(name(v)))
        return out or None

    value = x509.NameConstraints(tree(permitted), tree(excluded)).public_bytes()
    return ext("2.5.29.30", value, critical)


def ski(key, critical=False):
    return ext("2.5.29.14", tlv(0x04, key.key_id()), critical)


def aki(key, critical=False):
    return ext("2.5.29.35", seq(tlv(0x80, key.key_id())), critical)


def name(cn):
    if cn is None:
        return x509.Name([])
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


# ---------------------------------------------------------------- certificates

SERIAL = [1000]


class Cert:
    def __init__(self, cn, key, der):
        self.cn = cn
        self.key = key
        self.der = der

    def pem(self):
        import base64
        b = base64.encodebytes(self.der).decode().replace("\n", "")
        lines = [b[i:i + 64] for i in range(0, len(b), 64)]
        return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def make(cn, key, issuer=None, exts=None, nb=None, na=None, digest="sha256", version=3,
         sign_key=None, issuer_cn=None, extra=(), drop=(), serial=None):
    """A certificate for `cn` with `key`, signed by `issuer` (a Cert) or self-signed.
    `exts` replaces the default extensions of the role; `extra` adds to them; `drop`
    removes the OIDs listed."""
    self_signed = issuer is None
    ikey = sign_key or (key if self_signed else issuer.key)
    iname = issuer_cn if issuer_cn is not None else (cn if self_signed else issuer.cn)
    if exts is None:
        exts = [bc(), ku("key_cert_sign", "crl_sign"), ski(key)]
        if not self_signed:
            exts.append(aki(issuer.key))
    exts = [e for e in exts if e[0] not in drop] + list(extra)
    SERIAL[0] += 1
    serial = serial if serial is not None else (SERIAL[0] << 64) | 0x5A5A
    body = []
    if version == 3:
        body.append(tlv(0xA0, integer(2)))
    alg, _ = ikey.sign(b"probe", digest)
    body += [
        integer(serial),
        alg,
        name(iname).public_bytes(),
        seq(time(nb or NOW - DAY), time(na or NOW + 30 * DAY)),
        name(cn).public_bytes(),
        key.spki(),
    ]
    if exts and version == 3:
        body.append(tlv(0xA3, seq(*[
            seq(oid(o), b"\x01\x01\xff" if crit else b"", tlv(0x04, v)) for o, crit, v in exts
        ])))
    tbs = seq(*body)
    alg, sig = ikey.sign(tbs, digest)
    return Cert(cn, key, seq(tbs, alg, tlv(0x03, b"\x00" + sig)))


def leaf_exts(key, issuer_key, dns=("host.example.com",), ip=("10.0.0.1",), purposes=(SERVER, CLIENT)):
    out = [bc(ca=False, critical=False), ku("digital_signature", "key_encipherment")]
    if purposes:
        out.append(eku(*purposes))
    out += [san(dns=dns, ip=ip), ski(key), aki(issuer_key)]
    return out


def leaf(cn, issuer, key=None, extra=(), drop=(), exts=None, **kw):
    key = key or Key()
    sign_key = kw.get("sign_key")
    if exts is None:
        exts = leaf_exts(key, sign_key or issuer.key)
    return make(cn, key, issuer, exts=exts, extra=extra, drop=drop, **kw)


def ca(cn, issuer=None, key=None, extra=(), drop=(), **kw):
    return make(cn, key or Key(), issuer, extra=extra, drop=drop, **kw)


# ---------------------------------------------------------------- CRLs


def crl(issuer, revoked=(), sign_key=None, last=None, next_=None, extra=(), der=False):
    b = x509.CertificateRevocationListBuilder().issuer_name(name(issuer.cn))
    b = b.last_update(last or NOW - DAY).next_update(next_ or NOW + 7 * DAY)
    for cert, reason in revoked:
        c = x509.load_der_x509_certificate(cert.der)
        r = x509.RevokedCertificateBuilder().serial_number(c.serial_number).revocation_date(NOW - DAY / 2)
        if reason:
            r = r.add_extension(x509.CRLReason(reason), critical=False)
        b = b.add_revoked_certificate(r.build())
    b = b.add_extension(x509.CRLNumber(1), critical=False)
    for e, crit in extra:
        b = b.add_extension(e, critical=crit)
    b = b.add_extension(x509.AuthorityKeyIdentifier(issuer.key.key_id(), None, None), critical=False)
    k = (sign_key or issuer.key).priv
    out = b.sign(k, hashes.SHA256())
    return out.public_bytes(serialization.Encoding.DER if der else serialization.Encoding.PEM)


# ---------------------------------------------------------------- the suite

CASES = []
OUT = sys.argv[1]


def case(name, cls, leaf_c, chain, anchors, expect, reason="", host=None, ip=None,
         purpose=None, crls=(), warn="", openssl=True, java=True, leaf_extra=()):
    d = os.path.join(OUT, name)
    os.makedirs(d)

    def write(fname, certs):
        with open(os.path.join(d, fname), "w") as f:
            f.write("".join(c.pem() for c in certs))
        return f"{name}/{fname}"

    entry = {
        "name": name,
        "class": cls,
        "leaf": write("leaf.pem", [leaf_c] + list(leaf_extra)),
        "chain": None if chain is None else write("chain.pem", chain),
        "ca": write("ca.pem", anchors),
        "crls": [],
        "host": host,
        "ip": ip,
        "purpose": purpose,
        "expect": expect,
        "reason": reason,
        "warn": warn,
        # Host names and purposes are what openssl verify can express; Java's PKIX
        # validator judges the path alone.
        "openssl": openssl,
        "java": java and host is None and ip is None and purpose in (None, "any"),
    }
    for i, c in enumerate(crls):
        fname = f"crl{i}.{'der' if not c.startswith(b'-----') else 'pem'}"
        with open(os.path.join(d, fname), "wb") as f:
            f.write(c)
        entry["crls"].append(f"{name}/{fname}")
    CASES.append(entry)


OK, FAIL = "ok", "fail"

# A well-formed EC hierarchy reused by many cases.
R = ca("Suite Root")
I = ca("Suite Int", R)
L = leaf("host.example.com", I)

# ---- class good: well-formed chains of every key type and shape
case("good-ec", "good", L, [I], [R], OK, host="host.example.com")
case("good-ec-ip", "good", L, [I], [R], OK, ip="10.0.0.1")
case("good-no-host", "good", L, [I], [R], OK)
case("good-client", "good", L, [I], [R], OK, purpose="client")
case("good-any", "good", L, [I], [R], OK, purpose="any")
case("good-chain-in-leaf-file", "good", L, None, [R], OK, leaf_extra=[I])
case("good-root-in-chain", "good", L, [R, I], [R], OK)
case("good-empty-chain-file", "good", leaf("direct.example.com", R), [], [R], OK)
case("good-direct", "good", leaf("direct2.example.com", R), None, [R], OK)
for kind in ["rsa2048", "rsa3072", "p384", "p521", "ed25519"]:
    r = ca(f"{kind} Root", key=Key(kind))
    i = ca(f"{kind} Int", r, key=Key(kind))
    lf = leaf(f"{kind}.example.com", i, key=Key(kind))
    case(f"good-{kind}", "good", lf, [i], [r], OK)
r2 = ca("Deep Root")
i2a = ca("Deep Int A", r2)
i2b = ca("Deep Int B", i2a)
i2c = ca("Deep Int C", i2b)
case("good-three-intermediates", "good", leaf("deep.example.com", i2c), [i2a, i2c, i2b], [r2], OK)
case("good-two-roots-in-store", "good", L, [I], [ca("Unrelated Root"), R], OK)
lf = leaf("mixed.example.com", I, key=Key("rsa2048"))
case("good-mixed-keys", "good", lf, [I], [R], OK)
case("good-unknown-noncritical-ext", "good",
     leaf("ext.example.com", I, extra=[ext("1.3.6.1.4.1.55555.7", NULL)]), [I], [R], OK)

# ---- class path: building tries every candidate
# A re-keyed CA under the same name as the trusted root.
old_root = ca("Rollover Root")
new_root = ca("Rollover Root")
lf_new = leaf("rekey.example.com", new_root)
case("path-rekeyed-root-both-trusted", "path", lf_new, None, [old_root, new_root], OK)
case("path-rekeyed-root-new-first", "path", lf_new, None, [new_root, old_root], OK)
case("path-rekeyed-root-only-old", "path", lf_new, None, [old_root], FAIL,
     reason="does not verify with the key of")
# Re-keyed intermediate with the same name: both in the bundle.
int_old = ca("Rekey Int", R)
int_new = ca("Rekey Int", R)
lf_ri = leaf("rekeyint.example.com", int_new)
case("path-rekeyed-int-old-first", "path", lf_ri, [int_old, int_new], [R], OK)
case("path-rekeyed-int-new-first", "path", lf_ri, [int_new, int_old], [R], OK)
case("path-rekeyed-int-only-old", "path", lf_ri, [int_old], [R], FAIL,
     reason="does not verify with the key of")
lf_ri_noaki = leaf("rekeyint2.example.com", int_new, drop=["2.5.29.35"])
case("path-rekeyed-int-no-aki", "path", lf_ri_noaki, [int_old, int_new], [R], OK,
     warn="no authorityKeyIdentifier", openssl=False)
# Cross-signed rollover: the new root also signed by the old one.
xold = ca("Cross Old Root")
xnew = ca("Cross New Root")
xnew_by_old = ca("Cross New Root", xold, key=xnew.key)
xint = ca("Cross Int", xnew)
xleaf = leaf("cross.example.com", xint)
case("path-cross-trust-old", "path", xleaf, [xint, xnew_by_old], [xold], OK)
case("path-cross-trust-new", "path", xleaf, [xint, xnew_by_old], [xnew], OK)
case("path-cross-trust-both", "path", xleaf, [xnew_by_old, xint], [xold, xnew], OK)
case("path-cross-missing-cross-cert", "path", xleaf, [xint], [xold], FAIL,
     reason="unable to find the issuer of CN=Cross Int (CN=Cross New Root)")
# Two roots with one name, only the second one signed the intermediate.
twin_a = ca("Twin Root")
twin_b = ca("Twin Root")
twin_int = ca("Twin Int", twin_b)
twin_leaf = leaf("twin.example.com", twin_int)
case("path-two-roots-one-name", "path", twin_leaf, [twin_int], [twin_a, twin_b], OK)
case("path-two-roots-one-name-rev", "path", twin_leaf, [twin_int], [twin_b, twin_a], OK)
case("path-two-roots-wrong-one", "path", twin_leaf, [twin_int], [twin_a], FAIL,
     reason="does not verify with the key of CN=Twin Root")
# An expired intermediate and its renewal with the same key: backtracking finds the good one.
int_key = Key()
int_expired = ca("Renewed Int", R, key=int_key, nb=NOW - 60 * DAY, na=NOW - DAY)
int_renewed = ca("Renewed Int", R, key=int_key)
lf_ren = leaf("renewed.example.com", int_renewed)
case("path-expired-and-renewed-int", "path", lf_ren, [int_expired, int_renewed], [R], OK)
case("path-only-expired-int", "path", lf_ren, [int_expired], [R], FAIL, reason="has expired")
# Same for roots: an expired and a current root with one name and key.
root_key = Key()
root_expired = ca("Renewed Root", key=root_key, nb=NOW - 60 * DAY, na=NOW - DAY)
root_current = ca("Renewed Root", key=root_key)
lf_rr = leaf("renewedroot.example.com", root_current)
case("path-expired-and-current-root", "path", lf_rr, None, [root_expired, root_current], OK)
case("path-only-expired-root", "path", lf_rr, None, [root_expired], FAIL, reason="has expired")
case("path-missing-intermediate", "path", L, None, [R], FAIL,
     reason="unable to find the issuer of CN=host.example.com")
case("path-wrong-root", "path", L, [I], [ca("Other Root")], FAIL,
     reason="unable to find the issuer of CN=Suite Int")
case("path-impostor-root", "path", L, [I], [ca("Suite Root")], FAIL,
     reason="does not verify with the key of CN=Suite Root")
case("path-self-signed-leaf", "path",
     make("self.example.com", (k := Key()), None, exts=leaf_exts(k, k)), None, [R], FAIL,
     reason="is not a trusted CA")
sl_key = Key()
self_leaf = make("pinned.example.com", sl_key, None, exts=leaf_exts(sl_key, sl_key, dns=("pinned.example.com",)))
case("path-self-signed-leaf-pinned", "path", self_leaf, None, [self_leaf], OK, host="pinned.example.com")
# Cross-certificates in a loop, no anchor among them: refused, not a hang.
la, lb = Key(), Key()
loop_a = ca("Loop A", None, key=la, sign_key=lb, issuer_cn="Loop B")
loop_b = ca("Loop B", None, key=lb, sign_key=la, issuer_cn="Loop A")
case("path-loop", "path", leaf("loop.example.com", loop_a), [loop_a, loop_b], [R], FAIL,
     reason="issue each other in a loop")
# Decoys with the issuer's name but other keys (re-keyed CAs of the same root), before
# the real one: every candidate is tried.
decoys = [ca("Suite Int", R) for _ in range(20)]
case("path-twenty-decoys", "path", L, decoys + [I], [R], OK)
# Self-signed decoys with the issuer's name: each one could head a path through all the
# others, so the search is cut off by the budget and the chain refused quickly.
self_decoys = [ca("Suite Int") for _ in range(20)]
case("path-self-signed-decoys", "path", L, self_decoys + [I], [R], FAIL, reason="resource limit",
     openssl=False)
# Decoys that do chain (same key, other serial), at two levels, none to the anchor:
# more paths than the budget allows.
bomb_key = Key()
bomb_root_key = Key()
bomb_upper = [ca("Bomb Upper", None, key=bomb_root_key, sign_key=Key(), issuer_cn="Nowhere Root")
              for _ in range(12)]
bomb_mid = [ca("Bomb Mid", bomb_upper[0], key=bomb_key) for _ in range(12)]
case("path-budget", "path", leaf("bomb.example.com", bomb_mid[0]), bomb_mid + bomb_upper, [R], FAIL,
     reason="unable to find the issuer", openssl=False)

# ---- class roles
def role_case(name, root_kw=None, int_kw=None, expect=FAIL, reason="", lf_kw=None, **kw):
    r = ca(f"{name} Root", **(root_kw or {}))
    i = ca(f"{name} Int", r, **(int_kw or {}))
    lf = leaf(f"{name}.example.com", i, **(lf_kw or {}))
    case(f"role-{name}", "roles", lf, [i], [r], expect, reason=reason, **kw)


role_case("root-no-bc", root_kw=dict(drop=["2.5.29.19"]), reason="is not a CA (no basicConstraints")
role_case("root-ca-false", root_kw=dict(drop=["2.5.29.19"], extra=[bc(ca=False)]),
          reason="is not a CA (basicConstraints cA is FALSE)")
role_case("root-bc-noncritical", root_kw=dict(drop=["2.5.29.19"], extra=[bc(critical=False)]),
          reason="non-critical")
role_case("root-ku-no-certsign", root_kw=dict(drop=["2.5.29.15"], extra=[ku("digital_signature", "crl_sign")]),
          reason="keyUsage lacks keyCertSign")
role_case("int-no-bc", int_kw=dict(drop=["2.5.29.19"]), reason="is not a CA (no basicConstraints")
role_case("int-ca-false", int_kw=dict(drop=["2.5.29.19"], extra=[bc(ca=False)]),
          reason="is not a CA (basicConstraints cA is FALSE)")
role_case("int-bc-noncritical", int_kw=dict(drop=["2.5.29.19"], extra=[bc(critical=False)]),
          reason="non-critical")
role_case("int-ku-no-certsign", int_kw=dict(drop=["2.5.29.15"], extra=[ku("digital_signature")]),
          reason="keyUsage lacks keyCertSign")
role_case("int-no-ku", int_kw=dict(drop=["2.5.29.15"]), expect=OK,
          warn="is a CA without keyUsage", openssl=False)
role_case("int-no-ski", int_kw=dict(drop=["2.5.29.14"]), expect=OK,
          warn="without subjectKeyIdentifier", openssl=False)
role_case("root-pathlen0-with-int", root_kw=dict(drop=["2.5.29.19"], extra=[bc(pathlen=0)]),
          reason="path length constraint exceeded")
role_case("root-pathlen1-with-int", root_kw=dict(drop=["2.5.29.19"], extra=[bc(pathlen=1)]), expect=OK)
role_case("int-pathlen0-leaf", int_kw=dict(drop=["2.5.29.19"], extra=[bc(pathlen=0)]), expect=OK)
role_case("leaf-ca-true", lf_kw=dict(drop=["2.5.29.19"], extra=[bc(ca=True)]),
          reason="is a CA certificate (basicConstraints cA TRUE)")
role_case("leaf-ca-true-any", lf_kw=dict(drop=["2.5.29.19"], extra=[bc(ca=True)]), purpose="any",
          reason="is a CA certificate (basicConstraints cA TRUE)", openssl=False)
role_case("leaf-certsign", lf_kw=dict(drop=["2.5.29.15"], extra=[ku("digital_signature", "key_cert_sign")]),
          reason="keyUsage keyCertSign", host="leaf-certsign.example.com", openssl=False)
role_case("leaf-ku-crlsign-only", lf_kw=dict(drop=["2.5.29.15"], extra=[ku("crl_sign")]),
          reason="keyUsage allows no handshake", host="host.example.com")
# pathLen 0 on the intermediate with another intermediate below it.
pr = ca("Pathlen Root")
pi = ca("Pathlen Int", pr, drop=["2.5.29.19"], extra=[bc(pathlen=0)])
pj = ca("Pathlen Sub", pi)
case("role-int-pathlen0-sub", "roles", leaf("plsub.example.com", pj), [pi, pj], [pr], FAIL,
     reason="path length constraint exceeded")
# An intermediate with an empty subject.
er = ca("Empty Root")
ei = ca(None, er)
case("role-int-empty-subject", "roles", leaf("empty.example.com", ei, issuer_cn=None), [ei], [er], FAIL,
     reason="empty subject")
# An X.509 v1 root (no extensions at all).
v1 = ca("V1 Root", version=1)
case("role-v1-root", "roles", leaf("v1.example.com", v1), None, [v1], FAIL,
     reason="is not a CA (no basicConstraints")
v1i = ca("V1 Int", R, version=1)
case("role-v1-int", "roles", leaf("v1i.example.com", v1i), [v1i], [R], FAIL,
     reason="is not a CA (no basicConstraints")
case("role-v1-leaf", "roles", leaf("v1leaf.example.com", I, version=1), [I], [R], FAIL,
     reason="version", openssl=False)

# ---- class nc: name constraints
def nc_case(name, constraint, leaf_dns=("host.example.com",), leaf_ip=("10.0.0.1",), expect=FAIL,
            reason="", on="root", int_san=None, **kw):
    r = ca(f"{name} Root", extra=[constraint] if on == "root" else [])
    i = ca(f"{name} Int", r, extra=([constraint] if on == "int" else []) + ([int_san] if int_san else []))
    k = Key()
    lf = make(f"nc-{name}", k, i, exts=leaf_exts(k, i.key, dns=leaf_dns, ip=leaf_ip))
    case(f"nc-{name}", "name-constraints", lf, [i], [r], expect, reason=reason, **kw)


P_EX = nc(permitted=[("dns", "example.com"), ("ip", "10.0.0.0/8")])
nc_case("permitted-in", P_EX, expect=OK)
nc_case("permitted-in-int", P_EX, on="int", expect=OK)
nc_case("permitted-dns-out", P_EX, leaf_dns=("evil.example.org",), reason="outside the CA's permitted names")
nc_case("permitted-dns-out-int", P_EX, on="int", leaf_dns=("evil.example.org",), reason="permitted")
nc_case("permitted-ip-out", P_EX, leaf_ip=("192.168.1.1",), reason="IP address 192.168.1.1")
nc_case("permitted-second-san-out", P_EX, leaf_dns=("a.example.com", "b.example.net"), reason="b.example.net")
nc_case("permitted-suffix-trick", P_EX, leaf_dns=("badexample.com",), reason="badexample.com")
nc_case("permitted-wildcard-in", P_EX, leaf_dns=("*.example.com",), expect=OK)
nc_case("permitted-wildcard-out", P_EX, leaf_dns=("*.example.org",), reason="*.example.org")
EXCL = nc(excluded=[("dns", "bar.example.com")])
nc_case("excluded-exact", EXCL, leaf_dns=("bar.example.com",), reason="excluded")
nc_case("excluded-below", EXCL, leaf_dns=("x.bar.example.com",), reason="excluded")
nc_case("excluded-sibling-ok", EXCL, leaf_dns=("foo.example.com",), expect=OK)
nc_case("excluded-wildcard", EXCL, leaf_dns=("*.example.com",), reason="excluded", openssl=False)
nc_case("excluded-wildcard-host", EXCL, leaf_dns=("*.example.com",), reason="excluded",
        host="bar.example.com", openssl=False)
nc_case("excluded-ip", nc(excluded=[("ip", "10.0.0.0/24")]), reason="excluded")
nc_case("excluded-ip-other-ok", nc(excluded=[("ip", "10.9.0.0/24")]), expect=OK)
nc_case("ipv6-permitted-in", nc(permitted=[("ip", "2001:db8::/32"), ("dns", "example.com")]),
        leaf_ip=("2001:db8::1",), expect=OK)
nc_case("ipv6-permitted-out", nc(permitted=[("ip", "2001:db8::/32"), ("dns", "example.com")]),
        leaf_ip=("2001:db9::1",), reason="2001:db9::1")
# The intermediate's own subjectAltName is outside the root's constraints.
nc_case("int-san-outside", nc(permitted=[("dns", "example.com")]),
        int_san=san(dns=["int.example.org"]), reason="int.example.org")
# rfc822: webpki refuses email names under email constraints it cannot judge.
ER = ca("Email Root", extra=[nc(permitted=[("email", "example.com")])])
EI = ca("Email Int", ER)
ek = Key()
e_leaf = make("email-leaf", ek, EI, exts=[bc(ca=False, critical=False), ku("digital_signature"),
                                           eku(CLIENT), san(dns=["host.example.com"], email=["a@example.org"]),
                                           ski(ek), aki(EI.key)])
case("nc-email-outside", "name-constraints", e_leaf, [EI], [ER], FAIL, reason="name constraints")
e_leaf2 = make("email-leaf2", ek, EI, exts=[bc(ca=False, critical=False), ku("digital_signature"),
                                             eku(CLIENT), san(dns=["host.example.com"], email=["a@example.com"]),
                                             ski(ek), aki(EI.key)])
case("nc-email-inside-unjudged", "name-constraints", e_leaf2, [EI], [ER], FAIL, reason="name constraints",
     openssl=False, java=False)
ER2 = ca("Email Excl Root", extra=[nc(excluded=[("email", "bad.example")])])
EI2 = ca("Email Excl Int", ER2)
e_leaf3 = make("email-leaf3", ek, EI2, exts=[bc(ca=False, critical=False), ku("digital_signature"),
                                              eku(CLIENT), san(email=["x@bad.example"]), ski(ek), aki(EI2.key)])
case("nc-email-excluded", "name-constraints", e_leaf3, [EI2], [ER2], FAIL, reason="name constraints")
# Malformed constraints: an IP subtree of 5 bytes, empty subtrees, a NULL value, a
# non-contiguous mask.
nc_case("malformed-ip-length", ext("2.5.29.30", seq(tlv(0xA0, seq(tlv(0x87, b"\x0a\x00\x00\x00\xff"))))),
        reason="malformed name constraints")
nc_case("malformed-ip-mask", ext("2.5.29.30", seq(tlv(0xA0, seq(tlv(0x87, b"\x0a\x00\x00\x00\xff\x00\xff\x00"))))),
        reason="malformed name constraints")
nc_case("malformed-empty-permitted", ext("2.5.29.30", seq(tlv(0xA0, b""))), reason="malformed")
nc_case("malformed-empty-both", ext("2.5.29.30", seq()), reason="malformed")
nc_case("malformed-null", ext("2.5.29.30", NULL, True), reason="malformed")
nc_case("malformed-on-int", ext("2.5.29.30", seq(tlv(0xA0, seq(tlv(0x87, b"\x0a\x00\x00"))))),
        on="int", reason="malformed name constraints")
# Malformed subjectAltNames: an IP of 5 bytes, a leading dot, an empty DNS name.
for nm, gn in [("san-ip-5-bytes", tlv(0x87, b"\x0a\x00\x00\x01\x01")),
               ("san-leading-dot", tlv(0x82, b".host.example.com")),
               ("san-empty-dns", tlv(0x82, b"")),
               ("san-double-dot", tlv(0x82, b"a..example.com"))]:
    k = Key()
    exts = [bc(ca=False, critical=False), ku("digital_signature"), eku(SERVER),
            raw_san(tlv(0x82, b"host.example.com"), gn), ski(k), aki(I.key)]
    case(f"nc-{nm}", "name-constraints", make(nm, k, I, exts=exts), [I], [R], FAIL,
         reason="malformed subjectAltName", openssl=False)
    nr = ca(f"{nm} Root", extra=[P_EX])
    ni = ca(f"{nm} Int", nr)
    exts = [bc(ca=False, critical=False), ku("digital_signature"), eku(SERVER),
            raw_san(tlv(0x82, b"host.example.com"), gn), ski(k), aki(ni.key)]
    case(f"nc-{nm}-constrained", "name-constraints", make(nm, k, ni, exts=exts), [ni], [nr], FAIL,
         reason="malformed subjectAltName")
# Name constraints in a leaf.
case("nc-in-leaf", "name-constraints", leaf("ncleaf.example.com", I, extra=[P_EX]), [I], [R], FAIL,
     reason="carries name constraints", openssl=False)
# A CN-only leaf (no subjectAltName) whose CN is outside the permitted names.
cnr = ca("CN Root", extra=[nc(permitted=[("dns", "example.com")])])
k = Key()
cn_leaf = make("evil.example.org", k, cnr, exts=[bc(ca=False, critical=False), ku("digital_signature"),
                                                  eku(SERVER), ski(k), aki(cnr.key)])
case("nc-cn-only-outside", "name-constraints", cn_leaf, None, [cnr], FAIL, reason="subject CN")
# directoryName constraints: webpki cannot judge them and refuses.
dr = ca("Dir Root", extra=[nc(permitted=[("dir", "Dir Root")])])
case("nc-dirname-unjudged", "name-constraints", leaf("dir.example.com", dr), None, [dr], FAIL,
     reason="name constraints", openssl=False, java=False)
# 2,048 constraints against 2,048 names: a resource limit, refused at once.
big = nc(permitted=[("dns", f"n{i}.example.com") for i in range(2048)])
br = ca("Big Root")
bi = ca("Big Int", br, extra=[big])
k = Key()
big_leaf = make("big-leaf", k, bi, exts=[bc(ca=False, critical=False), ku("digital_signature"), eku(SERVER),
                                         san(dns=[f"h{i}.n{i}.example.com" for i in range(2048)]),
                                         ski(k), aki(bi.key)])
case("nc-2048x2048", "name-constraints", big_leaf, [bi], [br], FAIL, reason="resource limit",
     openssl=False, java=False)

# ---- class ext: extensions
def ext_case(name, where, extra=(), drop=(), expect=FAIL, reason="", **kw):
    r = ca(f"{name} Root", extra=extra if where == "root" else (), drop=drop if where == "root" else ())
    i = ca(f"{name} Int", r, extra=extra if where == "int" else (), drop=drop if where == "int" else ())
    lf = leaf(f"{name}.example.com", i, extra=extra if where == "leaf" else (),
              drop=drop if where == "leaf" else ())
    case(f"ext-{name}", "extensions", lf, [i], [r], expect, reason=reason, **kw)


for where in ["leaf", "int", "root"]:
    sans = [san(dns=["host.example.com"])] * (1 if where == "leaf" else 2)
    ext_case(f"dup-san-{where}", where, extra=sans, reason="twice")
    ext_case(f"dup-bc-{where}", where, extra=[bc(ca=where != "leaf", critical=where != "leaf")], reason="twice")
    ext_case(f"unknown-critical-{where}", where, extra=[ext("1.3.6.1.4.1.55555.1", NULL, True)],
             reason="unhandled critical extension 1.3.6.1.4.1.55555.1")
    ext_case(f"policies-critical-{where}", where,
             extra=[ext("2.5.29.32", x509.CertificatePolicies([x509.PolicyInformation(
                 x509.ObjectIdentifier("2.5.29.32.0"), None)]).public_bytes(), True)],
             reason="unhandled critical extension certificatePolicies", openssl=False, java=False)
ext_case("critical-aki-leaf", "leaf", drop=["2.5.29.35"], extra=[aki(Key(), critical=True)],
         reason="authorityKeyIdentifier (2.5.29.35) critical", openssl=False)
ext_case("critical-ski-int", "int", drop=["2.5.29.14"], extra=[ski(Key(), critical=True)],
         reason="subjectKeyIdentifier (2.5.29.14) critical", openssl=False)
ext_case("critical-aki-int", "int", drop=["2.5.29.35"], extra=[aki(Key(), critical=True)],
         reason="authorityKeyIdentifier (2.5.29.35) critical", openssl=False)
ext_case("missing-aki-leaf", "leaf", drop=["2.5.29.35"], expect=OK, warn="no authorityKeyIdentifier",
         openssl=False)
ext_case("missing-aki-int", "int", drop=["2.5.29.35"], expect=OK, warn="no authorityKeyIdentifier",
         openssl=False)
ext_case("dup-ku-root", "root", extra=[ku("key_cert_sign")], reason="twice")
ext_case("dup-eku-leaf", "leaf", extra=[eku(SERVER)], reason="twice")
ext_case("malformed-bc-int", "int", drop=["2.5.29.19"], extra=[ext("2.5.29.19", b"\x30\x03\x01\x01", True)],
         reason="basicConstraints")

# ---- class keys: weak keys anywhere
def key_case(name, where, kind, expect=FAIL, reason="weak key", digest=None, **kw):
    rk = Key(kind) if where == "root" else Key()
    ik = Key(kind) if where == "int" else Key()
    lk = Key(kind) if where == "leaf" else Key()
    if digest:
        # The signer of the certificate under test signs with RSA and that digest.
        ik = Key("rsa2048") if where == "leaf" else ik
        rk = Key("rsa2048") if where == "int" else rk
    r = ca(f"{name} Root", key=rk)
    i = ca(f"{name} Int", r, key=ik, **({"digest": digest} if digest and where == "int" else {}))
    lf = leaf(f"{name}.example.com", i, key=lk, **({"digest": digest} if digest and where == "leaf" else {}))
    case(f"key-{name}", "keys", lf, [i], [r], expect, reason=reason, **kw)


for where in ["leaf", "int", "root"]:
    key_case(f"rsa1024-{where}", where, "rsa1024", reason="weak key: RSA 1024 bits")
    key_case(f"p192-{where}", where, "p192", reason="weak key: EC P-192", java=False)
    key_case(f"dsa-{where}", where, "dsa", reason="DSA key")
key_case("rsa1536-leaf", "leaf", "rsa1536", reason="weak key: RSA 1536 bits")
key_case("explicit-leaf", "leaf", "explicit", reason="explicit curve parameters", java=False)
key_case("rsa2048-leaf", "leaf", "rsa2048", expect=OK)
key_case("rsa4096-int", "int", "rsa4096", expect=OK)
key_case("p521-root", "root", "p521", expect=OK)
key_case("sha1-leaf", "leaf", "rsa2048", digest="sha1", reason="sha1WithRSAEncryption, a broken digest")
key_case("sha1-int", "int", "rsa2048", digest="sha1", reason="sha1WithRSAEncryption, a broken digest")
key_case("md5-leaf", "leaf", "rsa2048", digest="md5", reason="md5WithRSAEncryption", java=False)

# ---- class purpose
def purpose_case(name, leaf_purposes=(SERVER, CLIENT), int_extra=(), root_extra=(), expect=OK, reason="", **kw):
    r = ca(f"{name} Root", extra=root_extra)
    i = ca(f"{name} Int", r, extra=int_extra)
    k = Key()
    lf = make(f"{name}.example.com", k, i, exts=leaf_exts(k, i.key, dns=(f"{name}.example.com",),
                                                           purposes=leaf_purposes))
    case(f"purpose-{name}", "purpose", lf, [i], [r], expect, reason=reason, **kw)


purpose_case("client-only-host", leaf_purposes=(CLIENT,), host="client-only-host.example.com", expect=FAIL,
             reason="extendedKeyUsage lacks serverAuth")
purpose_case("client-only-host-any", leaf_purposes=(CLIENT,), host="client-only-host-any.example.com",
             purpose="any", openssl=False)
purpose_case("client-only-as-client", leaf_purposes=(CLIENT,), purpose="client")
purpose_case("client-only-as-server", leaf_purposes=(CLIENT,), purpose="server", expect=FAIL,
             reason="extendedKeyUsage lacks serverAuth")
purpose_case("server-only-as-client", leaf_purposes=(SERVER,), purpose="client", expect=FAIL,
             reason="extendedKeyUsage lacks clientAuth")
purpose_case("no-eku-host", leaf_purposes=(), host="no-eku-host.example.com")
purpose_case("codesign-no-purpose", leaf_purposes=(ExtendedKeyUsageOID.CODE_SIGNING,))
purpose_case("codesign-host", leaf_purposes=(ExtendedKeyUsageOID.CODE_SIGNING,),
             host="codesign-host.example.com", expect=FAIL, reason="extendedKeyUsage lacks serverAuth")
purpose_case("int-client-only-host", int_extra=[eku(CLIENT)], host="int-client-only-host.example.com",
             expect=FAIL, reason="extendedKeyUsage lacks serverAuth")
purpose_case("int-client-only-no-host", int_extra=[eku(CLIENT)])
purpose_case("int-client-only-any", int_extra=[eku(CLIENT)], host="int-client-only-any.example.com",
             purpose="any", openssl=False)
purpose_case("root-client-only-server", root_extra=[eku(CLIENT)], purpose="server", expect=FAIL,
             reason="extendedKeyUsage lacks serverAuth")
purpose_case("ip-default-server", leaf_purposes=(CLIENT,), ip="10.0.0.1", expect=FAIL,
             reason="extendedKeyUsage lacks serverAuth")

# ---- class time and host names (messages)
case("time-expired-leaf", "messages", leaf("old.example.com", I, nb=NOW - 60 * DAY, na=NOW - DAY), [I], [R],
     FAIL, reason="certificate has expired (not after")
case("time-future-leaf", "messages", leaf("new.example.com", I, nb=NOW + DAY, na=NOW + 60 * DAY), [I], [R],
     FAIL, reason="is not yet valid")
case("time-expired-int", "messages", leaf("oldint.example.com", (oi := ca("Old Int", R, nb=NOW - 60 * DAY, na=NOW - DAY))),
     [oi], [R], FAIL, reason="CA certificate has expired")
case("time-expired-root", "messages", leaf("oldroot.example.com", (orr := ca("Old Root", nb=NOW - 60 * DAY, na=NOW - DAY))),
     None, [orr], FAIL, reason="CA certificate has expired")
case("host-mismatch", "messages", L, [I], [R], FAIL, host="www.example.net",
     reason="hostname mismatch: www.example.net is not in DNS:host.example.com, IP:10.0.0.1")
case("ip-mismatch", "messages", L, [I], [R], FAIL, ip="10.0.0.2", reason="IP address mismatch: 10.0.0.2")
k = Key()
nosan = make("nosan.example.com", k, I, exts=[bc(ca=False, critical=False), ku("digital_signature"),
                                              eku(SERVER), ski(k), aki(I.key)])
case("host-no-san", "messages", nosan, [I], [R], FAIL, host="nosan.example.com",
     reason="has no DNS or IP subjectAltName", openssl=False)
wild = leaf("wild", I, exts=leaf_exts(k, I.key, dns=("*.example.com",)), key=k)
case("host-wildcard-one-label", "messages", wild, [I], [R], OK, host="www.example.com")
case("host-wildcard-two-labels", "messages", wild, [I], [R], FAIL, host="a.b.example.com",
     reason="hostname mismatch")
case("host-wildcard-bare", "messages", wild, [I], [R], FAIL, host="example.com", reason="hostname mismatch")
pw = leaf("pw", I, exts=leaf_exts(k, I.key, dns=("w*.example.com",)), key=k)
case("host-partial-wildcard", "messages", pw, [I], [R], FAIL, host="www.example.com",
     reason="hostname mismatch", openssl=False)

# ---- class revocation
RR = ca("Rev Root")
RI = ca("Rev Int", RR)
RL = leaf("rev.example.com", RI)
case("crl-good", "revocation", RL, [RI], [RR], OK, crls=[crl(RI)])
case("crl-good-both-levels", "revocation", RL, [RI], [RR], OK, crls=[crl(RI), crl(RR)])
case("crl-revoked-leaf", "revocation", RL, [RI], [RR], FAIL, crls=[crl(RI, [(RL, x509.ReasonFlags.key_compromise)])],
     reason="reason keyCompromise")
case("crl-revoked-leaf-der", "revocation", RL, [RI], [RR], FAIL,
     crls=[crl(RI, [(RL, x509.ReasonFlags.superseded)], der=True)], reason="reason superseded")
case("crl-revoked-leaf-no-reason", "revocation", RL, [RI], [RR], FAIL, crls=[crl(RI, [(RL, None)])],
     reason="has been revoked")
case("crl-revoked-int", "revocation", RL, [RI], [RR], FAIL,
     crls=[crl(RI), crl(RR, [(RI, x509.ReasonFlags.ca_compromise)])], reason="reason cACompromise")
case("crl-expired", "revocation", RL, [RI], [RR], FAIL,
     crls=[crl(RI, last=NOW - 10 * DAY, next_=NOW - DAY)], reason="CRL from CN=Rev Int has expired")
case("crl-wrong-key", "revocation", RL, [RI], [RR], FAIL, crls=[crl(RI, sign_key=Key())],
     reason="does not verify with that CA's key")
case("crl-not-yet-valid", "revocation", RL, [RI], [RR], FAIL,
     crls=[crl(RI, last=NOW + DAY, next_=NOW + 8 * DAY)], reason="not yet valid", java=False)
case("crl-other-ca", "revocation", RL, [RI], [RR], OK, crls=[crl(ca("Stranger CA"))], openssl=False)
case("crl-revoked-other-serial", "revocation", RL, [RI], [RR], OK,
     crls=[crl(RI, [(leaf("sibling.example.com", RI), x509.ReasonFlags.key_compromise)])])

with open(os.path.join(OUT, "cases.json"), "w") as f:
    json.dump(CASES, f, indent=1)
print(len(CASES))
