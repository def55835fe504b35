//! Test certificates made with `openssl` (valid two days): a CA, server leaves and client
//! leaves it signs (EC P-256 keys as PKCS#8 unless a [`KeyKind`] says otherwise), and rustls
//! client configs that trust it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub struct Cert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub struct Ca {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A leaf's key type and the PEM form its key file is written in.
#[derive(Clone, Copy)]
pub enum KeyKind {
    /// EC P-256, key as PKCS#8 (`BEGIN PRIVATE KEY`).
    EcPkcs8,
    /// EC P-256, key as SEC1 (`BEGIN EC PRIVATE KEY`).
    EcSec1,
    /// RSA 2048, key as PKCS#1 (`BEGIN RSA PRIVATE KEY`).
    RsaPkcs1,
}

impl KeyKind {
    fn pem_label(self) -> &'static str {
        match self {
            KeyKind::EcPkcs8 => "BEGIN PRIVATE KEY",
            KeyKind::EcSec1 => "BEGIN EC PRIVATE KEY",
            KeyKind::RsaPkcs1 => "BEGIN RSA PRIVATE KEY",
        }
    }
}

fn openssl(args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl (Debian package openssl) must be installed");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

impl Ca {
    /// A self-signed CA in `dir/{name}.crt` and `dir/{name}.key`.
    pub fn new(dir: &Path, name: &str) -> Ca {
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        openssl(&[
            "req",
            "-x509",
            "-nodes",
            "-days",
            "2",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-keyout",
            path(&key),
            "-out",
            path(&cert),
            "-subj",
            &format!("/CN={name}"),
        ]);
        Ca { cert, key }
    }

    /// A server certificate for `sans` (e.g. `DNS:localhost`, `IP:127.0.0.1`).
    pub fn server(&self, dir: &Path, file: &str, sans: &[&str]) -> Cert {
        self.server_with_key(dir, file, sans, KeyKind::EcPkcs8)
    }

    /// [`Ca::server`] with a key of `kind`.
    pub fn server_with_key(&self, dir: &Path, file: &str, sans: &[&str], kind: KeyKind) -> Cert {
        self.leaf(
            dir,
            file,
            &format!(
                "subjectAltName={}\nextendedKeyUsage=serverAuth\n",
                sans.join(",")
            ),
            kind,
        )
    }

    /// A client certificate (extended key usage clientAuth) for `name`.
    pub fn client(&self, dir: &Path, file: &str, name: &str) -> Cert {
        self.leaf(
            dir,
            file,
            &format!("subjectAltName=DNS:{name}\nextendedKeyUsage=clientAuth\n"),
            KeyKind::EcPkcs8,
        )
    }

    /// `dir/{file}.crt` signed by this CA with `extensions`, and its key in `dir/{file}.key`.
    fn leaf(&self, dir: &Path, file: &str, extensions: &str, kind: KeyKind) -> Cert {
        let cert = dir.join(format!("{file}.crt"));
        let key = dir.join(format!("{file}.key"));
        // openssl writes PKCS#8; other forms are converted from it below.
        let generated = match kind {
            KeyKind::EcPkcs8 => key.clone(),
            _ => dir.join(format!("{file}.pkcs8")),
        };
        let csr = dir.join(format!("{file}.csr"));
        let ext = dir.join(format!("{file}.ext"));
        std::fs::write(
            &ext,
            format!("basicConstraints=critical,CA:FALSE\n{extensions}"),
        )
        .unwrap();
        let newkey: &[&str] = match kind {
            KeyKind::RsaPkcs1 => &["-newkey", "rsa:2048"],
            KeyKind::EcPkcs8 | KeyKind::EcSec1 => {
                &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
            }
        };
        let subject = format!("/CN={file}");
        let mut args = vec!["req", "-new", "-nodes"];
        args.extend_from_slice(newkey);
        args.extend_from_slice(&[
            "-keyout",
            path(&generated),
            "-out",
            path(&csr),
            "-subj",
            &subject,
        ]);
        openssl(&args);
        openssl(&[
            "x509",
            "-req",
            "-in",
            path(&csr),
            "-CA",
            path(&self.cert),
            "-CAkey",
            path(&self.key),
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            path(&cert),
            "-extfile",
            path(&ext),
        ]);
        match kind {
            KeyKind::EcPkcs8 => {}
            KeyKind::EcSec1 => openssl(&["ec", "-in", path(&generated), "-out", path(&key)]),
            KeyKind::RsaPkcs1 => openssl(&[
                "rsa",
                "-in",
                path(&generated),
                "-traditional",
                "-out",
                path(&key),
            ]),
        }
        assert!(std::fs::read_to_string(&key)
            .unwrap()
            .contains(kind.pem_label()));
        Cert { cert, key }
    }
}

/// A rustls client config trusting `ca`, offering `alpn`, presenting `client` if given.
pub fn client_config(
    ca: &Path,
    client: Option<&Cert>,
    alpn: &[&[u8]],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(ca).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client {
        Some(cert) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_file(&cert.cert).unwrap()],
                PrivateKeyDer::from_pem_file(&cert.key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}
