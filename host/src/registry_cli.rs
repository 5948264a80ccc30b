//! The commands that work with OCI registries: `storehost lock`, `storehost plugin push`,
//! `storehost plugin pull`, and what `plugin inspect oci://REF` pulls.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use storehost::app::Source;
use storehost::app::manifest::Manifest;
use storehost::app::oci::{self, Lock, Locked, Registries};
use storehost::runtime::{self, PluginSpec, Runtime, RuntimeConfig};

/// How the registry commands reach registries: the `[registries]` of `--manifest` (when given),
/// with `--insecure` making the reference's registry plain HTTP.
#[derive(clap::Args)]
pub struct RegistryArgs {
    /// A manifest whose `[registries]` say how to reach the registry (credentials, plain HTTP).
    #[arg(long, short)]
    manifest: Option<PathBuf>,
    /// Reach the reference's registry over plain HTTP (a registry on loopback, say).
    #[arg(long)]
    insecure: bool,
}

impl RegistryArgs {
    fn registries(&self, reference: &str) -> Result<Registries> {
        let configs = match &self.manifest {
            Some(path) => Manifest::load(path)?.registries,
            None => BTreeMap::new(),
        };
        let registries = Registries::new(configs);
        Ok(if self.insecure { registries.insecure(oci::parse(reference)?.registry()) } else { registries })
    }
}

/// `storehost lock`: resolves the tag of every registry source of the manifest to the digest it
/// names now and writes them to the lock file beside it.
pub async fn lock(path: &Path) -> Result<()> {
    let manifest = Manifest::load(path)?;
    let registries = Registries::new(manifest.registries.clone());
    let mut lock = Lock::default();
    for (name, plugin) in &manifest.plugins {
        let Source::Oci { reference, digest } = &plugin.source else { continue };
        let digest = match digest {
            Some(digest) => digest.clone(),
            None => oci::resolve(reference, &registries).await.with_context(|| format!("{}: plugins.{name}.source: {reference}", manifest.origin))?,
        };
        println!("plugins.{name}: {reference} → {digest}");
        lock.plugins.insert(name.clone(), Locked { oci: reference.clone(), digest });
    }
    let lock_path = Lock::path_of(path);
    lock.save(&lock_path)?;
    println!("wrote {} ({} registry source(s))", lock_path.display(), lock.plugins.len());
    Ok(())
}

/// `storehost plugin push FILE REF`: the component, annotated with the contract it exports and
/// what its `describe()` says. Prints the digest pushed.
pub async fn push(file: &Path, reference: &str, args: &RegistryArgs) -> Result<()> {
    let wasm = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let not_pushed =
        |error: &dyn std::fmt::Display| anyhow::anyhow!("{} does not load as a storehost plugin, so it is not pushed: {error}", file.display());
    let report = runtime::inspect(&runtime, PluginSpec::new("pushed", file.display().to_string(), wasm.clone())).await.map_err(|e| not_pushed(&e))?;
    if let Some(error) = &report.load_error {
        return Err(not_pushed(error));
    }
    let mut annotations = BTreeMap::new();
    if let Some(version) = report.origin_version {
        annotations.insert(oci::CONTRACT_ANNOTATION.to_string(), format!("storehost:origin@{}", version.as_str()));
    }
    if let Some(info) = &report.describe {
        annotations.insert(oci::NAME_ANNOTATION.to_string(), info.name.clone());
        annotations.insert(oci::VERSION_ANNOTATION.to_string(), info.version.clone());
    }
    let registries = args.registries(reference)?;
    let bar = crate::client::progress(wasm.len() as u64, &format!("pushing {}", file.display()));
    let name = file.file_name().map_or_else(|| "component.wasm".into(), |n| n.to_string_lossy().into_owned());
    let size = wasm.len() as u64;
    let digest = oci::push(wasm, &name, reference, annotations, &registries).await.with_context(|| format!("pushing to {reference}"))?;
    bar.set_position(size);
    bar.finish_and_clear();
    println!("pushed {reference}");
    println!("digest: {digest}");
    Ok(())
}

/// `storehost plugin pull REF [-o FILE]`: the component, verified, written to `FILE` (by default
/// the repository's last segment, `.wasm`).
pub async fn pull(reference: &str, output: Option<&Path>, args: &RegistryArgs) -> Result<()> {
    let (pulled, _scratch) = pulled(reference, args).await?;
    let default = format!("{}.wasm", oci::parse(reference)?.repository().rsplit('/').next().unwrap_or("component"));
    let path = output.map_or_else(|| PathBuf::from(default), Path::to_path_buf);
    std::fs::write(&path, &pulled.wasm).with_context(|| format!("writing {}", path.display()))?;
    println!("pulled {reference} ({}) to {} ({} bytes)", pulled.digest, path.display(), pulled.wasm.len());
    Ok(())
}

/// The component `reference` names (`REF` or `REF@sha256:…`), pulled into a scratch cache (which
/// goes with the second value).
pub async fn pulled(reference: &str, args: &RegistryArgs) -> Result<(oci::Pulled, tempfile::TempDir)> {
    let (name, digest) = match reference.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (reference, None),
    };
    let scratch = tempfile::tempdir()?;
    let bar = crate::client::progress(u64::MAX, &format!("pulling {reference}"));
    let pulled = oci::pull(name, digest, &oci::Cache::new(scratch.path()), &args.registries(name)?, &bar)
        .await
        .with_context(|| format!("pulling {reference}"))?;
    Ok((pulled, scratch))
}
