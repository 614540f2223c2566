"""Validates a certificate with pyhanko-certvalidator, fetching its OCSP status from the URL in its AIA.

Usage: validate_with_ocsp.py CERT.pem ISSUER.pem ROOT.pem
Prints "valid" and exits 0 when the path validates with a good OCSP answer; prints the reason and exits 1 otherwise
(a revoked certificate: "revoked: ..."). Intermediate CA certificates are not checked for revocation (CardDesk's CA
certificates carry no revocation pointers); the end-entity certificate must have a valid OCSP answer.
"""
import asyncio
import sys
from datetime import timedelta

from asn1crypto import pem, x509
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import RevokedError
from pyhanko_certvalidator.policy_decl import CertRevTrustPolicy, RevocationCheckingPolicy, RevocationCheckingRule


def load(path):
    with open(path, "rb") as handle:
        data = handle.read()
    if pem.detect(data):
        _, _, data = pem.unarmor(data)
    return x509.Certificate.load(data)


async def main(cert_path, issuer_path, root_path):
    cert, issuer, root = load(cert_path), load(issuer_path), load(root_path)
    policy = CertRevTrustPolicy(RevocationCheckingPolicy(
        ee_certificate_rule=RevocationCheckingRule.OCSP_REQUIRED,
        intermediate_ca_cert_rule=RevocationCheckingRule.NO_CHECK,
    ))
    # The validation moment is taken here, before the OCSP answer is fetched; an answer the responder signs on request
    # (thisUpdate: when signed) comes after it, by more than pyhanko's default 1 s tolerance on a loaded 2-core CI
    # machine ("OCSP response is too recent"). Clients allow for that and for clock skew (OpenSSL: 5 minutes).
    context = ValidationContext(
        trust_roots=[root], other_certs=[issuer], allow_fetching=True, revinfo_policy=policy, time_tolerance=timedelta(seconds=60)
    )
    validator = CertificateValidator(cert, intermediate_certs=[issuer], validation_context=context)
    try:
        await validator.async_validate_usage(set())
    except RevokedError as error:
        print(f"revoked: {error}")
        return 1
    except Exception as error:  # any other failure is reported, never hidden
        print(f"invalid: {type(error).__name__}: {error}")
        return 1
    print("valid")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:4])))
