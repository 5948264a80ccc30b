//! The `storehost` binary: the server and its command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

mod client;
mod copy_cli;
mod registry_cli;

use client::Client;
use storehost::app::{App, Manifest};
use storehost::base::telemetry::{Settings, Telemetry, WithIds};
use storehost::capabilities::files::{DirGrant, DirMode};
use storehost::runtime::{self, Plugin, PluginSpec, Runtime, RuntimeConfig};

#[derive(Parser)]
#[command(name = "storehost", version, about = "A storage host whose origin stores are WebAssembly components")]
struct Cli {
    /// Log format (the filter comes from RUST_LOG, default `info`).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every domain over HTTP (without --manifest: the embedded default).
    Serve {
        #[arg(long, short)]
        manifest: Option<PathBuf>,
        /// Overrides [server] listen, e.g. 127.0.0.1:0 for any free port.
        #[arg(long)]
        listen: Option<String>,
        /// Reload when the manifest or a plugin's .wasm file changes (SIGHUP and
        /// POST /v1/admin/reload reload without it).
        #[arg(long)]
        watch: bool,
    },
    /// Copy every record of the chosen domains from one plugin to another, or to and from an
    /// export directory: verified, resumable (a second run skips what is already identical).
    Copy(copy_cli::CopyArgs),
    /// Write the HTTP API's OpenAPI 3.1 document (what GET /openapi.json serves), to generate
    /// clients from.
    Openapi {
        /// The file to write; without it, standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// The manifest whose server it describes (with `[server] tokens`, the bearer scheme);
        /// without it, the embedded default.
        #[arg(long, short)]
        manifest: Option<PathBuf>,
    },
    /// Validate a manifest and load its plugins (exit 1 with the errors).
    Check {
        /// The manifest; without it, the embedded default.
        #[arg(long, short)]
        manifest: Option<PathBuf>,
    },
    /// Resolve the tag of every registry source (`source = { oci = "REF" }`) to the digest it
    /// names now, and write them to the lock file beside the manifest (m.toml → m.lock), which
    /// `serve` and `check` then load.
    Lock {
        #[arg(long, short)]
        manifest: PathBuf,
    },
    /// Work with plugin components.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Gateway artifacts on a running server.
    Artifact {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: ArtifactCommand,
    },
    /// Administration of a running server.
    Admin {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Runner artifacts on a running server.
    Runner {
        #[command(flatten)]
        server: ServerArgs,
        /// The run.
        #[arg(long, global = true)]
        run: Option<String>,
        #[command(subcommand)]
        command: RunnerCommand,
    },
}

#[derive(clap::Args)]
struct ServerArgs {
    /// The server's base URL.
    #[arg(long, global = true, env = "STOREHOST_SERVER", default_value = "http://127.0.0.1:7070")]
    server: String,
}

#[derive(Subcommand)]
enum ArtifactCommand {
    /// Upload FILE as KEY.
    Put {
        key: String,
        file: PathBuf,
        #[arg(long)]
        content_type: Option<String>,
    },
    /// Download KEY (to stdout, or --output FILE).
    Get {
        key: String,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// List keys under PREFIX.
    Ls {
        #[arg(default_value = "")]
        prefix: String,
    },
    /// A URL that fetches KEY without credentials.
    Url {
        key: String,
        #[arg(long, default_value_t = 3600)]
        expires_in: u32,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Make a new secret current for host-signed URLs (on every replica, with [cluster]); URLs
    /// signed before stay valid until their own expiry.
    RotateUrlSecret,
}

#[derive(Subcommand)]
enum RunnerCommand {
    /// Upload FILE as NAME of the run.
    Write { name: String, file: PathBuf },
    /// Download NAME of the run (to stdout, or --output FILE).
    Read {
        name: String,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Remove NAME of the run.
    Rm { name: String },
    /// List the run's files under PREFIX.
    Ls {
        #[arg(default_value = "")]
        prefix: String,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Show a component's exported interfaces, imported capabilities and describe().
    Inspect {
        /// A .wasm file, builtin:NAME, or oci://REGISTRY/REPOSITORY:TAG (or @sha256:…).
        component: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        registry: registry_cli::RegistryArgs,
    },
    /// Push a component to an OCI registry (one `application/wasm` layer, as `wkg oci push`
    /// does), annotated with the contract it exports and its describe() name and version.
    Push {
        file: PathBuf,
        /// REGISTRY/REPOSITORY:TAG
        reference: String,
        #[command(flatten)]
        registry: registry_cli::RegistryArgs,
    },
    /// Pull a component from an OCI registry, verified against its digests.
    Pull {
        /// REGISTRY/REPOSITORY:TAG, or REGISTRY/REPOSITORY@sha256:…
        reference: String,
        /// The file to write (default: the repository's last segment, .wasm).
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        registry: registry_cli::RegistryArgs,
    },
    /// Run the origin conformance suite against a component (exit 1 on any failure).
    Test {
        /// A .wasm file, or builtin:NAME. With --manifest: the name of a plugin in it.
        component: String,
        /// Load the plugin as this manifest defines it (its config, grants and limits). Its
        /// directories are replaced by empty scratch directories granted the same way, so the
        /// suite never touches their data.
        #[arg(long, short)]
        manifest: Option<PathBuf>,
        /// Run even though the plugin has a database or bucket grant: the suite then writes its
        /// records (under keys and ids of its own) into that database or bucket, and leaves them.
        #[arg(long)]
        allow_writes: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Raises the soft limit on open files to the hard one, as servers do: connections and the files
/// the plugins keep open between reads count against it.
fn raise_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!(error = %e, "the limit on open files stays {:?}", limit.current);
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("starting the async runtime");
    let _runtime = runtime.enter();
    // `serve` reads its manifest first: its `[telemetry]` table says whether the log's spans
    // are exported too.
    let started = match cli.command {
        Command::Serve { manifest, listen, watch } => load_manifest(manifest.as_ref()).and_then(|manifest| {
            let telemetry = match Settings::resolve(manifest.telemetry.as_ref(), |name| std::env::var(name).ok()) {
                Ok(Some(settings)) => Some(Telemetry::start(&settings)?),
                Ok(None) => None,
                Err(e) => return Err(e.context(manifest.origin.clone())),
            };
            Ok((Started::Serve { manifest: Box::new(manifest), listen, watch }, telemetry))
        }),
        command => Ok((Started::Other(command), None)),
    };
    let (started, telemetry) = match started {
        Ok(started) => started,
        Err(err) => return failure(&err),
    };
    let log = init_logging(cli.log_format, telemetry.as_ref());
    let outcome = runtime.block_on(async move {
        match started {
            Started::Serve { manifest, listen, watch } => serve(*manifest, listen, watch).await,
            Started::Other(command) => run(command).await,
        }
    });
    // Exports the spans still queued, then writes out the log lines still queued, before the
    // last word.
    if let Some(telemetry) = telemetry {
        telemetry.shutdown(Duration::from_secs(5));
    }
    drop(log);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => failure(&err),
    }
}

async fn serve(manifest: Manifest, listen: Option<String>, watch: bool) -> Result<()> {
    raise_file_limit();
    let app = App::build(manifest).await?;
    storehost::http::serve(app, storehost::http::ServeOptions { listen, watch }).await
}

/// A command after what `main` did before logging starts.
enum Started {
    Serve { manifest: Box<Manifest>, listen: Option<String>, watch: bool },
    Other(Command),
}

fn failure(err: &anyhow::Error) -> ExitCode {
    eprintln!("error: {err:#}");
    ExitCode::FAILURE
}

/// Logs to stderr through a thread of its own: a request formats its line and appends it to a
/// buffer in memory, and the thread writes what is held every few milliseconds in one write (a
/// line per request costs no system call and wakes no thread on the request's path); see
/// [`LogBuffer`](storehost::base::log_buffer::LogBuffer).
///
/// The log has events only; with traces on, the `storehost` spans go to the exporter and each
/// line in a traced request carries its `trace_id` and `span_id`.
fn init_logging(format: LogFormat, telemetry: Option<&Telemetry>) -> storehost::base::log_buffer::LogGuard {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::filter::FilterExt as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = storehost::base::log_buffer::LogBuffer::new("storehost-log", std::io::stderr());
    let events = filter.and(tracing_subscriber::filter::filter_fn(|meta| meta.is_event()));
    if !ansi {
        storehost::base::access_log::install(writer.clone(), matches!(format, LogFormat::Json));
    }
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(ansi);
    let fmt = match format {
        LogFormat::Text => fmt.event_format(WithIds::text(tracing_subscriber::fmt::format())).boxed(),
        LogFormat::Json => fmt.event_format(WithIds::json(tracing_subscriber::fmt::format().json())).boxed(),
    };
    let registry = tracing_subscriber::registry().with(fmt.with_filter(events));
    match telemetry {
        Some(telemetry) => registry.with(telemetry.layer()).init(),
        None => registry.init(),
    }
    guard
}

fn load_manifest(path: Option<&PathBuf>) -> Result<Manifest> {
    Ok(match path {
        Some(path) => Manifest::load(path)?,
        None => Manifest::embedded_default(),
    })
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::Serve { .. } => unreachable!("main serves: it reads the manifest before logging starts"),
        Command::Check { manifest } => check(load_manifest(manifest.as_ref())?).await,
        Command::Openapi { output, manifest } => {
            let manifest = load_manifest(manifest.as_ref())?;
            let doc =
                if manifest.server.tokens.is_empty() { storehost::http::openapi::open_document() } else { storehost::http::openapi::document() };
            let doc = storehost::http::openapi::served(doc, manifest.server.listen.parse().ok());
            let mut text = serde_json::to_string_pretty(&doc)?;
            text.push('\n');
            match output {
                Some(path) => std::fs::write(&path, text).with_context(|| format!("writing {}", path.display())),
                None => {
                    print!("{text}");
                    Ok(())
                }
            }
        }
        Command::Copy(args) => {
            let manifest = load_manifest(args.manifest())?;
            copy_cli::run(args, manifest).await
        }
        Command::Lock { manifest } => registry_cli::lock(&manifest).await,
        Command::Plugin { command: PluginCommand::Inspect { component, json, registry } } => inspect(&component, json, &registry).await,
        Command::Plugin { command: PluginCommand::Push { file, reference, registry } } => registry_cli::push(&file, &reference, &registry).await,
        Command::Plugin { command: PluginCommand::Pull { reference, output, registry } } => {
            registry_cli::pull(&reference, output.as_deref(), &registry).await
        }
        Command::Plugin { command: PluginCommand::Test { component, manifest, allow_writes, json } } => {
            plugin_test(&component, manifest.as_ref(), allow_writes, json).await
        }
        Command::Artifact { server, command } => {
            let client = Client::new(&server.server, std::env::var("STOREHOST_TOKEN").ok());
            match command {
                ArtifactCommand::Put { key, file, content_type } => {
                    client.artifact_put(&key, client::input_file(&file)?, content_type.as_deref()).await
                }
                ArtifactCommand::Get { key, output } => client.artifact_get(&key, output.as_deref()).await,
                ArtifactCommand::Ls { prefix } => client.artifact_ls(&prefix).await,
                ArtifactCommand::Url { key, expires_in } => client.artifact_url(&key, expires_in).await,
            }
        }
        Command::Admin { server, command: AdminCommand::RotateUrlSecret } => {
            Client::new(&server.server, std::env::var("STOREHOST_TOKEN").ok()).rotate_url_secret().await
        }
        Command::Runner { server, run, command } => {
            let client = Client::new(&server.server, std::env::var("STOREHOST_TOKEN").ok());
            let run = run.context("--run RUN is required")?;
            match command {
                RunnerCommand::Write { name, file } => client.runner_write(&run, &name, client::input_file(&file)?).await,
                RunnerCommand::Read { name, output } => client.runner_read(&run, &name, output.as_deref()).await,
                RunnerCommand::Rm { name } => client.runner_rm(&run, &name).await,
                RunnerCommand::Ls { prefix } => client.runner_ls(&run, &prefix).await,
            }
        }
    }
}

async fn check(manifest: Manifest) -> Result<()> {
    let origin = manifest.origin.clone();
    let app = App::build(manifest).await?;
    println!("{origin}: ok");
    for (name, plugin) in &app.plugins {
        let info = plugin.info();
        let exports: Vec<String> = plugin.exports().iter().filter(|i| i.is_domain()).map(|i| i.to_string()).collect();
        println!(
            "  plugin {name}: {} {} ({}), {} instance(s), exports {}",
            info.name,
            info.version,
            plugin.source(),
            plugin.settings().instances,
            exports.join(", ")
        );
    }
    for (domain, config) in app.manifest.domains.iter() {
        println!("  domain {domain}: origin {}", config.origin);
    }
    // Which registry sources the lock file pinned (a digest in the manifest wins over it).
    if let Some(path) = app.manifest.path.as_deref().map(storehost::app::oci::Lock::path_of)
        && let Some(lock) = storehost::app::oci::Lock::load(&path)?
    {
        for (name, plugin) in &app.manifest.plugins {
            if let storehost::app::Source::Oci { reference, digest: None } = &plugin.source
                && let Some(digest) = lock.digest(name, reference)
            {
                println!("  lock {}: plugins.{name} pinned to {digest}", path.display());
            }
        }
    }
    Ok(())
}

fn read_component(component: &str) -> Result<Vec<u8>> {
    Ok(match component.strip_prefix("builtin:") {
        Some(name) => storehost::builtin(name).with_context(|| format!("no built-in plugin {name:?}"))?.to_vec(),
        None => std::fs::read(component).with_context(|| format!("cannot read {component}"))?,
    })
}

/// Loads the plugin (alone, with a scratch directory preopened read-write as `/data` and one
/// instance; or as a manifest defines it, its directories replaced by scratch ones) and runs the
/// conformance suite on what it exports.
async fn plugin_test(component: &str, manifest: Option<&PathBuf>, allow_writes: bool, json: bool) -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let plugin = match manifest {
        Some(path) => {
            let manifest = Manifest::load(path)?;
            anyhow::ensure!(manifest.plugins.contains_key(component), "{}: no [plugins.{component}]", path.display());
            let runtime = Runtime::new(storehost::app::runtime_config(&manifest))?;
            let mut spec = storehost::app::plugin_spec(&manifest, component).await?;
            let grants = &spec.grants;
            let writes_to = [(grants.sql.is_some(), "sql"), (grants.object_store.is_some(), "object_store")];
            if let Some((_, key)) = writes_to.iter().find(|(granted, _)| *granted)
                && !allow_writes
            {
                anyhow::bail!(
                    "{}: [plugins.{component}] grants `{key}`: the suite would write its records into that database or bucket and \
                     leave them there. Point the grant at a scratch database or bucket, or pass --allow-writes to run it anyway",
                    path.display()
                );
            }
            // Scratch directories in the shape the grants give: same guest paths, same modes.
            for (i, dir) in spec.dirs.iter_mut().enumerate() {
                let own = scratch.path().join(format!("dir-{i}"));
                std::fs::create_dir_all(&own)?;
                dir.host = own;
            }
            Plugin::load(&runtime, spec).await?
        }
        None => {
            let mut spec = PluginSpec::new("tested", component, read_component(component)?);
            spec.settings.instances = 1;
            spec.dirs = vec![DirGrant { guest: "/data".into(), host: scratch.path().into(), mode: DirMode::Rw }];
            Plugin::load(&Runtime::new(RuntimeConfig::default())?, spec).await?
        }
    };
    let stores = storehost::origin::stores_of(&plugin);
    let report = storehost::conformance::run(&stores, |_| true).await;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{report}");
    }
    anyhow::ensure!(report.failed() == 0, "{} conformance case(s) failed", report.failed());
    Ok(())
}

async fn inspect(component: &str, json: bool, registry: &registry_cli::RegistryArgs) -> Result<()> {
    let wasm = match component.strip_prefix("oci://") {
        Some(reference) => registry_cli::pulled(reference, registry).await?.0.wasm,
        None => read_component(component)?,
    };
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let spec = PluginSpec::new("inspected", component, wasm);
    let report = runtime::inspect(&runtime, spec).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("{} ({} bytes, compiled in {:?})", report.source, report.size, report.compile_time);
    match &report.describe {
        Some(info) => println!("describe: {} {} (stateful: {})", info.name, info.version, info.stateful),
        None => println!("describe: not available"),
    }
    match report.origin_version {
        Some(version) if version.streams() => {
            // A plugin with the body interfaces may hand the host a file, or answer with a reader:
            // its type says only that it may.
            let files = if report.interfaces.contains(&runtime::Interface::ArtifactBodies) {
                "; artifact bodies opened through artifact-bodies: a reader, or a file the host reads"
            } else {
                ""
            };
            println!("contract: storehost:origin@{} (streamed bodies{files})", version.as_str())
        }
        Some(version) => println!("contract: storehost:origin@{} (whole bodies only; the host streams over them)", version.as_str()),
        None => println!("contract: no storehost:origin export"),
    }
    println!("exports:");
    for export in &report.exports {
        println!("  {export}");
    }
    if !report.unused_exports.is_empty() {
        println!("other exports (not used by storehost; a toolchain's own, e.g. componentize-py's `exports`):");
        for export in &report.unused_exports {
            println!("  {export}");
        }
    }
    println!("imports:");
    for (import, capability) in &report.imports {
        match capability {
            Some(capability) => println!("  {import}  [{capability}]"),
            None => println!("  {import}  [not provided by storehost]"),
        }
    }
    if let Some(error) = &report.load_error {
        println!("does not load as a plugin: {error}");
    }
    Ok(())
}
