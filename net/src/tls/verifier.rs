//! The client-certificate check etcd makes on top of chain verification: the CRL's serial
//! numbers (`--client-crl-file`), and the allowed client names (`--client-cert-allowed-hostname`,
//! `--peer-cert-allowed-cn`).

use std::collections::HashSet;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use super::x509;

/// Which verified client certificates are let in.
#[derive(Clone, Debug)]
pub(crate) enum AllowedClients {
    /// Any that chains to a trusted CA.
    Any,
    /// Those valid for one of these names (Go's `VerifyHostname`: DNS or IP SANs).
    Hostnames(Vec<ServerName<'static>>),
    /// Those whose subject common name is one of these.
    CommonNames(Vec<String>),
}

/// webpki's chain verification, then etcd's revocation and name checks.
#[derive(Debug)]
pub(crate) struct EtcdClientVerifier {
    pub(crate) chain: Arc<dyn ClientCertVerifier>,
    /// Serial numbers (leading zeros removed) of the CRL file; `None`: no CRL file.
    pub(crate) revoked: Option<HashSet<Vec<u8>>>,
    pub(crate) allowed: AllowedClients,
}

impl EtcdClientVerifier {
    /// etcd's checks on a chain webpki accepted. Go's `VerifyPeerCertificate` looks at the
    /// verified chain's leaf; its CRL check at every certificate the client presented.
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<(), rustls::Error> {
        if let Some(revoked) = &self.revoked {
            for certificate in std::iter::once(end_entity).chain(intermediates) {
                let serial = x509::certificate_serial(certificate).map_err(|_| {
                    rustls::Error::InvalidCertificate(CertificateError::BadEncoding)
                })?;
                if revoked.contains(serial) {
                    tracing::debug!(
                        serial = %hex(serial),
                        "transport: certificate serial revoked"
                    );
                    return Err(rustls::Error::InvalidCertificate(CertificateError::Revoked));
                }
            }
        }
        let allowed = match &self.allowed {
            AllowedClients::Any => true,
            AllowedClients::Hostnames(names) => {
                let parsed = ParsedCertificate::try_from(end_entity)?;
                names
                    .iter()
                    .any(|name| rustls::client::verify_server_name(&parsed, name).is_ok())
            }
            AllowedClients::CommonNames(names) => {
                let common_name = x509::subject_common_name(end_entity)
                    .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?
                    .unwrap_or_default();
                names.contains(&common_name)
            }
        };
        if !allowed {
            // etcd's words for this refusal.
            tracing::debug!("client certificate authentication failed");
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

impl ClientCertVerifier for EtcdClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.chain.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.chain.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.chain.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .chain
            .verify_client_cert(end_entity, intermediates, now)?;
        self.check(end_entity, intermediates)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}
