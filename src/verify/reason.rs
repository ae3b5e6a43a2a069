//! webpki's error codes as the phrases certmesh's messages use, shared by the path
//! explanations and the CRL reader.

/// A short phrase for a webpki error.
pub(super) fn describe(e: &webpki::Error) -> String {
    use webpki::Error as E;
    #[allow(deprecated)]
    let s = match e {
        E::BadDer | E::BadDerTime | E::TrailingData(_) => "malformed DER",
        E::CaUsedAsEndEntity => "a CA certificate used as a server or client certificate",
        E::CertDistrusted => "a distrusted key",
        E::CertRevoked => "revoked",
        E::EmptyEkuExtension => "an empty extendedKeyUsage",
        E::EndEntityUsedAsCa => "a non-CA certificate used as a CA",
        E::ExtensionValueInvalid | E::MalformedExtensions => "a malformed extension",
        E::InvalidCertValidity => "a validity period that ends before it starts",
        E::InvalidCrlNumber => "an invalid CRL number",
        E::InvalidSerialNumber => "an invalid serial number",
        E::InvalidSignatureForPublicKey => "a signature that does not verify",
        E::InvalidCrlSignatureForPublicKey => "a CRL signature that does not verify",
        E::IssuerNotCrlSigner => "a CRL issuer without cRLSign",
        E::PathLenConstraintViolated => "path length constraint exceeded",
        E::UnknownIssuer => "no path to a trusted CA",
        E::UnknownRevocationStatus => "unknown revocation status",
        E::UnsupportedCertVersion => "not an X.509 version 3 certificate",
        E::UnsupportedCriticalExtension => "an unhandled critical extension",
        E::UnsupportedCrlIssuingDistributionPoint => "an unsupported issuingDistributionPoint",
        E::UnsupportedCrlVersion => "an unsupported CRL version",
        E::UnsupportedDeltaCrl => "a delta CRL, which is not supported",
        E::UnsupportedIndirectCrl => "an indirect CRL, which is not supported",
        E::UnsupportedRevocationReason => "an unsupported revocation reason",
        E::UnsupportedRevocationReasonsPartitioning => "CRL partitioning by reason",
        E::SignatureAlgorithmMismatch => "inner and outer signature algorithms differ",
        E::UnsupportedSignatureAlgorithm
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedCrlSignatureAlgorithm
        | E::UnsupportedCrlSignatureAlgorithmContext(_) => "an unsupported signature algorithm",
        E::UnsupportedSignatureAlgorithmForPublicKey
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_)
        | E::UnsupportedCrlSignatureAlgorithmForPublicKey
        | E::UnsupportedCrlSignatureAlgorithmForPublicKeyContext(_) => {
            "a signature algorithm or key size not accepted for that key"
        }
        E::NameConstraintViolation => "a name outside the CA's name constraints",
        E::MalformedNameConstraint | E::InvalidNetworkMaskConstraint => {
            "malformed name constraints"
        }
        E::MalformedDnsIdentifier => "a malformed DNS name",
        E::UnsupportedNameType => "a name form that cannot be checked",
        _ => "refused by the path validator",
    };
    s.to_string()
}
