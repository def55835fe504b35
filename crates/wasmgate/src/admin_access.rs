//! The admin listener's access rules from `wasmgate up`'s flags: the token file read and
//! checked, the admin certificate and client CA, and the loopback rule checked before the
//! listener opens. `wasmgate logs` reads the same token file.

use crate::cli::UpArgs;
use anyhow::Context;
use std::path::Path;
use wasmgate_server::{AdminAccess, AdminTls, AdminToken, CertificateFiles, CertificateStore};

pub fn from_args(args: &UpArgs) -> anyhow::Result<AdminAccess> {
    let token = match &args.admin_token_file {
        Some(path) => Some(
            AdminToken::new(&read_token_file(path)?)
                .with_context(|| format!("--admin-token-file {}", path.display()))?,
        ),
        None => None,
    };
    let tls = match (&args.admin_tls_cert, &args.admin_tls_key) {
        (Some(cert), Some(key)) => Some(AdminTls {
            certificates: CertificateStore::load(vec![CertificateFiles {
                cert: cert.clone(),
                key: key.clone(),
            }])
            .context("cannot load the admin TLS certificate (--admin-tls-cert/--admin-tls-key)")?,
            client_ca: args.admin_client_ca.clone(),
        }),
        // clap requires both or neither.
        _ => None,
    };
    let access = AdminAccess {
        token,
        tls,
        insecure: args.admin_insecure,
    };
    access.check_address(args.admin_listen).context(
        "protect it with --admin-token-file FILE or --admin-client-ca FILE, move it to \
         loopback with --admin-listen 127.0.0.1:9464, or accept the exposure with \
         --admin-insecure",
    )?;
    Ok(access)
}

/// The token in `path`, refusing a missing or empty file. A file others can read is served
/// with a warning rather than refused: Kubernetes mounts secrets 0644 unless told otherwise.
pub fn read_token_file(path: &Path) -> anyhow::Result<String> {
    let token = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the admin token file {}", path.display()))?;
    if token.trim().is_empty() {
        anyhow::bail!("the admin token file {} is empty", path.display());
    }
    warn_if_world_readable(path);
    Ok(token.trim().to_string())
}

#[cfg(unix)]
fn warn_if_world_readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o004 != 0 {
            tracing::warn!(
                file = %path.display(),
                "the admin token file is readable by every user; chmod 600 (or 640) it"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_world_readable(_: &Path) {}
