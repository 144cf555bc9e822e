//! TLS certificates for tests: a throwaway CA and a server certificate it
//! signed for `localhost` and `127.0.0.1`, written as PEM files to a
//! temporary directory that is deleted when dropped. Made with rcgen (ECDSA
//! P-256), so no `openssl` command is needed.
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A CA (`ca.pem`) and a server certificate (`cert.pem`, key `key.pem`).
pub struct TestCertificates {
    dir: PathBuf,
}

impl TestCertificates {
    /// Generates a new CA and a server certificate for localhost and 127.0.0.1.
    pub fn generate() -> anyhow::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("tributary-certs-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let certs = Self { dir };

        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "tributary test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca, ca_key);

        let key = KeyPair::generate()?;
        let mut server = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])?;
        server
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = server.signed_by(&key, &issuer)?;

        std::fs::write(certs.ca(), ca_cert.pem())?;
        std::fs::write(certs.cert(), cert.pem())?;
        std::fs::write(certs.key(), key.serialize_pem())?;
        Ok(certs)
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate (PEM) clients trust.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The server's certificate (PEM).
    pub fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    /// The server's private key (PEM, PKCS#8).
    pub fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    /// The CA certificate's PEM bytes.
    pub fn ca_pem(&self) -> anyhow::Result<Vec<u8>> {
        std::fs::read(self.ca()).context("cannot read the test CA")
    }
}

impl Drop for TestCertificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
