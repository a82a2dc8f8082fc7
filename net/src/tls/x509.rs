//! Just enough DER to read what rustls does not expose and etcd checks: a certificate's serial
//! number, subject common name and subject alternative names, and the serial numbers a CRL
//! lists.
//!
//! Certificates reach this module only after webpki parsed and verified them; CRLs are read
//! once per (re)load. Every length is checked against the bytes that remain before use.

/// DER tags used here.
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OBJECT_IDENTIFIER: u8 = 0x06;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const CONTEXT_0_CONSTRUCTED: u8 = 0xa0;
const CONTEXT_3_CONSTRUCTED: u8 = 0xa3;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
/// GeneralName's `dNSName [2] IA5String` and `iPAddress [7] OCTET STRING` (implicit tags).
const GENERAL_NAME_DNS: u8 = 0x82;
const GENERAL_NAME_IP: u8 = 0x87;

/// The content octets of id-ce-subjectAltName (2.5.29.17).
const SUBJECT_ALT_NAME_OID: &[u8] = &[0x55, 0x1d, 0x11];

/// The content octets of id-at-commonName (2.5.4.3).
const COMMON_NAME_OID: &[u8] = &[0x55, 0x04, 0x03];

/// Reads consecutive DER elements (tag, content) from a byte string.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { rest: bytes }
    }

    fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next element's tag and content.
    fn read(&mut self) -> Result<(u8, &'a [u8]), &'static str> {
        let (&tag, after_tag) = self.rest.split_first().ok_or("truncated element")?;
        if tag & 0x1f == 0x1f {
            return Err("multi-byte tag");
        }
        let (&first, after_first) = after_tag.split_first().ok_or("truncated length")?;
        let (length, after_length) = if first < 0x80 {
            (usize::from(first), after_first)
        } else {
            let octets = usize::from(first & 0x7f);
            if octets == 0 || octets > 4 {
                return Err("unsupported length encoding");
            }
            if after_first.len() < octets {
                return Err("truncated length");
            }
            let (length_bytes, after_length) = after_first.split_at(octets);
            let length = length_bytes
                .iter()
                .fold(0u64, |length, byte| (length << 8) | u64::from(*byte));
            (
                usize::try_from(length).map_err(|_| "length too large")?,
                after_length,
            )
        };
        if after_length.len() < length {
            return Err("element longer than its enclosing data");
        }
        let (content, rest) = after_length.split_at(length);
        self.rest = rest;
        Ok((tag, content))
    }

    /// The next element's content, which must carry `tag`.
    fn expect(&mut self, tag: u8, what: &'static str) -> Result<&'a [u8], &'static str> {
        match self.read()? {
            (found, content) if found == tag => Ok(content),
            _ => Err(what),
        }
    }
}

/// A serial number without its leading zero octets, as Go compares them (`big.Int.Bytes`).
fn magnitude(serial: &[u8]) -> &[u8] {
    let first = serial
        .iter()
        .position(|byte| *byte != 0)
        .unwrap_or(serial.len());
    &serial[first..]
}

/// The fields of a certificate's TBSCertificate up to the subject: (serial, subject content).
fn serial_and_subject(certificate: &[u8]) -> Result<(&[u8], &[u8]), &'static str> {
    let certificate = Reader::new(certificate).expect(SEQUENCE, "not a certificate")?;
    let tbs = Reader::new(certificate).expect(SEQUENCE, "no TBSCertificate")?;
    let mut fields = Reader::new(tbs);
    if fields.peek_tag() == Some(CONTEXT_0_CONSTRUCTED) {
        fields.read()?; // version
    }
    let serial = fields.expect(INTEGER, "no serial number")?;
    fields.expect(SEQUENCE, "no signature algorithm")?;
    fields.expect(SEQUENCE, "no issuer")?;
    fields.expect(SEQUENCE, "no validity")?;
    let subject = fields.expect(SEQUENCE, "no subject")?;
    Ok((serial, subject))
}

/// A certificate's subject alternative names of the two kinds Go's `x509.Certificate` keeps
/// as `DNSNames` and `IPAddresses`, in the certificate's order.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SubjectAltNames {
    pub(crate) dns_names: Vec<String>,
    pub(crate) ip_addresses: Vec<std::net::IpAddr>,
}

/// A certificate's DNS and IP subject alternative names (none without the extension).
pub(crate) fn subject_alt_names(certificate: &[u8]) -> Result<SubjectAltNames, &'static str> {
    let certificate = Reader::new(certificate).expect(SEQUENCE, "not a certificate")?;
    let tbs = Reader::new(certificate).expect(SEQUENCE, "no TBSCertificate")?;
    let mut fields = Reader::new(tbs);
    if fields.peek_tag() == Some(CONTEXT_0_CONSTRUCTED) {
        fields.read()?; // version
    }
    fields.expect(INTEGER, "no serial number")?;
    for what in [
        "no signature algorithm",
        "no issuer",
        "no validity",
        "no subject",
        "no subject public key",
    ] {
        fields.expect(SEQUENCE, what)?;
    }
    let mut names = SubjectAltNames::default();
    // issuerUniqueID [1] and subjectUniqueID [2] may come before extensions [3].
    while !fields.is_empty() {
        let (tag, content) = fields.read()?;
        if tag != CONTEXT_3_CONSTRUCTED {
            continue;
        }
        let mut extensions = Reader::new(Reader::new(content).expect(SEQUENCE, "no extensions")?);
        while !extensions.is_empty() {
            let mut extension = Reader::new(extensions.expect(SEQUENCE, "malformed extension")?);
            let oid = extension.expect(OBJECT_IDENTIFIER, "malformed extension id")?;
            if extension.peek_tag() == Some(BOOLEAN) {
                extension.read()?; // critical
            }
            let value = extension.expect(OCTET_STRING, "malformed extension value")?;
            if oid != SUBJECT_ALT_NAME_OID {
                continue;
            }
            let mut general_names =
                Reader::new(Reader::new(value).expect(SEQUENCE, "malformed alternative names")?);
            while !general_names.is_empty() {
                match general_names.read()? {
                    (GENERAL_NAME_DNS, name) => names
                        .dns_names
                        .push(String::from_utf8(name.to_vec()).map_err(|_| "invalid DNS name")?),
                    (GENERAL_NAME_IP, ip) => names.ip_addresses.push(match ip.len() {
                        4 => std::net::IpAddr::from(<[u8; 4]>::try_from(ip).expect("4 octets")),
                        16 => std::net::IpAddr::from(<[u8; 16]>::try_from(ip).expect("16 octets")),
                        _ => return Err("IP address of neither 4 nor 16 octets"),
                    }),
                    _ => {} // e-mail, URI, directory and other names: not checked by etcd
                }
            }
        }
    }
    Ok(names)
}

/// A certificate's serial number, leading zeros removed.
pub(crate) fn certificate_serial(certificate: &[u8]) -> Result<&[u8], &'static str> {
    serial_and_subject(certificate).map(|(serial, _)| magnitude(serial))
}

/// A certificate's subject common name as Go reads it (the last CN attribute), or `None`.
pub(crate) fn subject_common_name(certificate: &[u8]) -> Result<Option<String>, &'static str> {
    let (_, subject) = serial_and_subject(certificate)?;
    let mut common_name = None;
    let mut names = Reader::new(subject);
    while !names.is_empty() {
        let set = names.expect(SET, "malformed subject")?;
        let mut attributes = Reader::new(set);
        while !attributes.is_empty() {
            let attribute = attributes.expect(SEQUENCE, "malformed subject attribute")?;
            let mut parts = Reader::new(attribute);
            let oid = parts.expect(OBJECT_IDENTIFIER, "malformed attribute type")?;
            let (tag, value) = parts.read()?;
            if oid == COMMON_NAME_OID {
                common_name = Some(decode_string(tag, value)?);
            }
        }
    }
    Ok(common_name)
}

/// A directory string's text.
fn decode_string(tag: u8, value: &[u8]) -> Result<String, &'static str> {
    match tag {
        // UTF8String, PrintableString, IA5String.
        0x0c | 0x13 | 0x16 => String::from_utf8(value.to_vec()).map_err(|_| "invalid UTF-8 name"),
        // T61String: Go reads it as ISO 8859-1.
        0x14 => Ok(value.iter().map(|byte| char::from(*byte)).collect()),
        // BMPString: UTF-16, big-endian.
        0x1e => {
            let pairs = value.chunks_exact(2);
            if !pairs.remainder().is_empty() {
                return Err("odd-length BMPString");
            }
            let units: Vec<u16> = pairs
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
                .collect();
            String::from_utf16(&units).map_err(|_| "invalid BMPString")
        }
        _ => Err("unsupported string type in name"),
    }
}

/// The serial numbers (leading zeros removed) a DER CRL lists, read as Go's `x509.ParseCRL`
/// does: version 1 and 2 lists, with or without nextUpdate; the signature is not checked.
pub(crate) fn crl_revoked_serials(crl: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    let list = Reader::new(crl).expect(SEQUENCE, "not a CRL")?;
    let tbs = Reader::new(list).expect(SEQUENCE, "no TBSCertList")?;
    let mut fields = Reader::new(tbs);
    if fields.peek_tag() == Some(INTEGER) {
        fields.read()?; // version
    }
    fields.expect(SEQUENCE, "no signature algorithm")?;
    fields.expect(SEQUENCE, "no issuer")?;
    match fields.read()? {
        (UTC_TIME | GENERALIZED_TIME, _) => {}
        _ => return Err("no thisUpdate"),
    }
    if matches!(fields.peek_tag(), Some(UTC_TIME | GENERALIZED_TIME)) {
        fields.read()?; // nextUpdate
    }
    let mut serials = Vec::new();
    if fields.peek_tag() == Some(SEQUENCE) {
        let mut entries = Reader::new(fields.expect(SEQUENCE, "no revoked certificates")?);
        while !entries.is_empty() {
            let entry = entries.expect(SEQUENCE, "malformed revoked certificate")?;
            let serial =
                Reader::new(entry).expect(INTEGER, "revoked certificate without a serial")?;
            serials.push(magnitude(serial));
        }
    }
    Ok(serials)
}

#[cfg(test)]
mod tests {
    //! Goal: the reader finds serials and common names in rcgen's certificates and CRLs, and
    //! refuses truncated or oversized lengths instead of reading past the input.
    use super::*;
    use rcgen::{
        CertificateParams, CertificateRevocationListParams, DnType, KeyIdMethod, KeyPair,
        RevokedCertParams, SerialNumber,
    };

    fn certificate(common_name: &str, serial: &[u8]) -> (Vec<u8>, KeyPair, CertificateParams) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".into()]).unwrap();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "basalt");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.serial_number = Some(SerialNumber::from_slice(serial));
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::KeyCertSign,
        ];
        let der = params.self_signed(&key).unwrap().der().to_vec();
        (der, key, params)
    }

    #[test]
    fn serial_and_common_name_of_a_certificate() {
        let (der, _, _) = certificate("member-1", &[0x00, 0x8f, 0x01]);
        assert_eq!(certificate_serial(&der).unwrap(), &[0x8f, 0x01]);
        assert_eq!(
            subject_common_name(&der).unwrap().as_deref(),
            Some("member-1")
        );
        let (without, _, _) = {
            let key = KeyPair::generate().unwrap();
            let params = CertificateParams::new(vec!["localhost".into()]).unwrap();
            let mut params = params;
            params.distinguished_name = rcgen::DistinguishedName::new();
            (params.self_signed(&key).unwrap().der().to_vec(), key, ())
        };
        assert_eq!(subject_common_name(&without).unwrap(), None);
    }

    #[test]
    fn revoked_serials_of_a_crl() {
        let (_, key, params) = certificate("ca", &[7]);
        let issuer = rcgen::Issuer::new(params, key);
        let now = time::OffsetDateTime::now_utc();
        let revoked = |serial: &[u8]| RevokedCertParams {
            serial_number: SerialNumber::from_slice(serial),
            revocation_time: now,
            reason_code: None,
            invalidity_date: None,
        };
        let crl = CertificateRevocationListParams {
            this_update: now,
            next_update: now + time::Duration::days(1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: vec![revoked(&[0x01, 0x02]), revoked(&[0x00, 0x80])],
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&issuer)
        .unwrap();
        let serials = crl_revoked_serials(crl.der()).unwrap();
        assert_eq!(serials, vec![&[0x01, 0x02][..], &[0x80][..]]);
    }

    #[test]
    fn lengths_are_checked() {
        // A SEQUENCE claiming 5 bytes with 2 present; a 5-octet length; an empty input.
        assert!(Reader::new(&[0x30, 0x05, 0x01, 0x02]).read().is_err());
        assert!(Reader::new(&[0x30, 0x85, 1, 1, 1, 1, 1]).read().is_err());
        assert!(Reader::new(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff])
            .read()
            .is_err());
        assert!(Reader::new(&[]).read().is_err());
        let (der, _, _) = certificate("x", &[1]);
        for cut in 0..der.len() {
            let _ = certificate_serial(&der[..cut]);
            let _ = subject_common_name(&der[..cut]);
            let _ = crl_revoked_serials(&der[..cut]);
            let _ = subject_alt_names(&der[..cut]);
        }
    }

    #[test]
    fn subject_alt_names_of_a_certificate() {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec![
            "localhost".into(),
            "127.0.0.2".into(),
            "*.example.com".into(),
            "::1".into(),
        ])
        .unwrap();
        let der = params.self_signed(&key).unwrap().der().to_vec();
        let names = subject_alt_names(&der).unwrap();
        assert_eq!(names.dns_names, vec!["localhost", "*.example.com"]);
        assert_eq!(
            names.ip_addresses,
            vec![
                "127.0.0.2".parse::<std::net::IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        let mut without = CertificateParams::new(Vec::<String>::new()).unwrap();
        without.distinguished_name.push(DnType::CommonName, "x");
        let der = without.self_signed(&key).unwrap().der().to_vec();
        assert_eq!(subject_alt_names(&der).unwrap(), SubjectAltNames::default());
    }
}
