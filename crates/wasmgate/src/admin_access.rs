//! The admin listener's access rules from `wasmgate up`'s flags: the token file read and
//! checked, the admin certificate and client CA, and the loopback rule checked before the
//! listener opens (the server re-reads these files when they change). `wasmgate logs` reads
//! the same token file.

use crate::cli::UpArgs;
use anyhow::Context;
use std::path::Path;
use wasmgate_server::{AdminAccess, AdminTls, AdminToken, CertificateFiles, CertificateStore};

pub fn from_args(args: &UpArgs) -> anyhow::Result<AdminAccess> {
    let mut access = AdminAccess::default().insecure(args.admin_insecure);
    if let Some(path) = &args.admin_token_file {
        access = access
            .with_token_file(path.clone())
            .with_context(|| format!("--admin-token-file {}", path.display()))?;
    }
    // clap requires both or neither.
    if let (Some(cert), Some(key)) = (&args.admin_tls_cert, &args.admin_tls_key) {
        let certificates = CertificateStore::load(vec![CertificateFiles {
            cert: cert.clone(),
            key: key.clone(),
        }])
        .context("cannot load the admin TLS certificate (--admin-tls-cert/--admin-tls-key)")?;
        access = access.with_tls(AdminTls {
            certificates,
            client_ca: args.admin_client_ca.clone(),
        })?;
    }
    access.check_address(args.admin_listen).context(
        "protect it with --admin-token-file FILE or --admin-client-ca FILE, move it to \
         loopback with --admin-listen 127.0.0.1:9464, or accept the exposure with \
         --admin-insecure",
    )?;
    Ok(access)
}

/// The token in `path` (for `wasmgate logs`), refusing a missing or empty file and warning
/// about one every user can read, as the server does.
pub fn read_token_file(path: &Path) -> anyhow::Result<String> {
    Ok(AdminToken::read_secret(path)?)
}
