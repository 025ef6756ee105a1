"""C2PA Content Credentials on request: a signed copy of a studio PNG or MP4.

The manifest's `c2pa.actions` assertion says `c2pa.created` with IPTC digitalSourceType
`trainedAlgorithmicMedia` and names the studio and generator (c2pa-python, the Content
Authenticity Initiative's SDK). It is signed by a local identity made on first use (an ES256
key and a certificate from a local CA, kept under `<home>/c2pa/`): validators will call the
signer untrusted, which is the truth for a personal studio; an organisation can put its own
`signer.pem` (chain) and `signer.key` there instead.

Signing is a separate step, not part of every write: a C2PA manifest carries a random URN and
an ECDSA signature, so signed files could not be byte-identical run to run.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import os
from pathlib import Path
from typing import Any

from generators.base import GeneratorUnavailable, InvalidInput

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
MIME = {".png": "image/png", ".mp4": "video/mp4"}


def _identity(folder: Path) -> tuple[bytes, bytes]:
    """(certificate chain PEM, private key PEM), made once: a local CA and an ES256 signer."""
    chain_path, key_path = folder / "signer.pem", folder / "signer.key"
    if chain_path.is_file() and key_path.is_file():
        return chain_path.read_bytes(), key_path.read_bytes()
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Studio (local)")])

    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    usage = dict(content_commitment=False, key_encipherment=False, data_encipherment=False, key_agreement=False,
                 encipher_only=False, decipher_only=False)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("Studio local CA")).issuer_name(name("Studio local CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(start + dt.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, key_cert_sign=True, crl_sign=True, **usage), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(name("Studio signer")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False, **usage),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    chain = leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    folder.mkdir(parents=True, exist_ok=True)
    key_path.touch(mode=0o600)
    key_path.write_bytes(pem)
    chain_path.write_bytes(chain)
    return chain, pem


def manifest(record: dict[str, Any], title: str) -> dict[str, Any]:
    version = str(record.get("studio_version") or "")
    agent = f"Studio {record.get('generator', '')}".strip()
    return {"claim_generator_info": [{"name": "Studio", "version": version or "unknown"}], "title": title,
            "assertions": [{"label": "c2pa.actions", "data": {"actions": [{
                "action": "c2pa.created", "digitalSourceType": DIGITAL_SOURCE_TYPE,
                "softwareAgent": {"name": agent}}]}}]}


def sign_copy(path: str | os.PathLike[str], identity_dir: str | os.PathLike[str]) -> Path:
    """Write `<name>.c2pa<suffix>` beside a studio PNG/MP4, with a signed C2PA manifest."""
    from studio.assets import restore

    path = Path(path)
    mime = MIME.get(path.suffix.lower())
    if mime is None:
        raise InvalidInput(f"C2PA signing takes a studio .png or .mp4, not {path.suffix or 'a file without suffix'}")
    try:
        import c2pa
    except ImportError:
        raise GeneratorUnavailable("C2PA signing needs c2pa-python: pip install 'studio[c2pa]'") from None
    record = restore(path).record  # refuses files the studio did not make
    chain, key = _identity(Path(identity_dir))
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, key, None))
    dest = path.with_name(f"{path.stem}.c2pa{path.suffix}")
    out = io.BytesIO()
    with open(path, "rb") as src, c2pa.Builder(json.dumps(manifest(record, path.name))) as builder:
        builder.sign(signer, mime, src, out)
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_bytes(out.getvalue())
    os.replace(tmp, dest)
    return dest


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The active manifest store as c2pa-python reads it (for tests and `studio restore`)."""
    import c2pa

    path = Path(path)
    with open(path, "rb") as fh, c2pa.Reader(MIME[path.suffix.lower()], fh) as reader:
        return json.loads(reader.json())
