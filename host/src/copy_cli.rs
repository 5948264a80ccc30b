//! `storehost copy`: the sides from the command line, a progress bar per domain, the summary
//! table, and SIGINT (records in flight finish, nothing new starts).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, bail};
use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressStyle};
use parking_lot::Mutex;
use storehost::app::{Manifest, plugin_spec, runtime_config};
use storehost::base::Domain;
use storehost::copy::{self, CopyOptions, DirSide, DomainSummary, Outcome, PluginSide, Progress, RecordId, Side};
use storehost::runtime::{Plugin, Runtime};

#[derive(clap::Args)]
pub struct CopyArgs {
    /// The manifest that defines the plugins (without it, the embedded default).
    #[arg(long, short)]
    manifest: Option<PathBuf>,
    /// The plugin to copy from (a name in the manifest).
    #[arg(long, required_unless_present = "from_dir", conflicts_with = "from_dir")]
    from: Option<String>,
    /// The plugin to copy to.
    #[arg(long, required_unless_present = "to_dir", conflicts_with = "to_dir")]
    to: Option<String>,
    /// Import from an export directory instead of a plugin.
    #[arg(long)]
    from_dir: Option<PathBuf>,
    /// Export to a directory (the backup format) instead of a plugin.
    #[arg(long)]
    to_dir: Option<PathBuf>,
    /// Domains to copy, comma-separated (default: every domain both sides hold).
    #[arg(long)]
    domains: Option<String>,
    /// Only records whose id (artifact key, project, document or workspace id, or run/name)
    /// starts with this.
    #[arg(long, default_value = "")]
    prefix: String,
    /// Compare only: report what would be copied, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Records copied at once.
    #[arg(long, default_value_t = 4)]
    jobs: usize,
}

/// One domain's bar: measured in body bytes (`by_bytes`) or in records.
struct Bar {
    bar: ProgressBar,
    records: u64,
    done: u64,
    by_bytes: bool,
}

/// Progress bars, one per domain: records done of all, body bytes, their rate and the ETA.
struct Bars {
    multi: MultiProgress,
    bars: Mutex<BTreeMap<Domain, Bar>>,
}

impl Progress for Bars {
    fn start(&self, domain: Domain, records: u64, bytes: u64) {
        // Body domains measure the bar in bytes (rate and ETA of the data), the others in records.
        let (len, template) = if bytes > 0 {
            (bytes, "{prefix:>9} [{bar:30}] {msg} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
        } else {
            (records, "{prefix:>9} [{bar:30}] {msg} {per_sec} eta {eta}")
        };
        let bar = self.multi.add(ProgressBar::new(len));
        bar.set_style(ProgressStyle::with_template(template).expect("valid template").progress_chars("=> "));
        bar.set_prefix(domain.to_string());
        bar.set_message(format!("0/{records} records"));
        self.bars.lock().insert(domain, Bar { bar, records, done: 0, by_bytes: bytes > 0 });
    }

    fn record(&self, domain: Domain, _id: &RecordId, _outcome: Outcome, bytes: u64) {
        let mut bars = self.bars.lock();
        let Some(b) = bars.get_mut(&domain) else { return };
        b.done += 1;
        b.bar.inc(if b.by_bytes { bytes } else { 1 });
        b.bar.set_message(format!("{}/{} records", b.done, b.records));
    }

    fn finish(&self, domain: Domain) {
        if let Some(b) = self.bars.lock().get(&domain) {
            b.bar.finish();
        }
    }
}

async fn plugin_side(manifest: &Manifest, runtime: &Runtime, name: &str) -> Result<Arc<dyn Side>> {
    if !manifest.plugins.contains_key(name) {
        bail!("{}: no plugin {name:?} (plugins: {})", manifest.origin, manifest.plugins.keys().cloned().collect::<Vec<_>>().join(", "));
    }
    let plugin = Plugin::load(runtime, plugin_spec(manifest, name).await?).await?;
    Ok(Arc::new(PluginSide::new(&plugin)))
}

impl CopyArgs {
    pub fn manifest(&self) -> Option<&PathBuf> {
        self.manifest.as_ref()
    }
}

/// Runs the copy and prints its summary; fails when any record failed.
pub async fn run(args: CopyArgs, manifest: Manifest) -> Result<()> {
    let runtime = Runtime::new(runtime_config(&manifest))?;
    let from: Arc<dyn Side> = match (&args.from, &args.from_dir) {
        (Some(name), _) => plugin_side(&manifest, &runtime, name).await?,
        (None, Some(dir)) => Arc::new(DirSide::open(dir)?),
        (None, None) => bail!("--from PLUGIN or --from-dir DIR is required"),
    };
    let to: Arc<dyn Side> = match (&args.to, &args.to_dir) {
        (Some(name), _) => plugin_side(&manifest, &runtime, name).await?,
        (None, Some(dir)) => Arc::new(DirSide::create(dir)?),
        (None, None) => bail!("--to PLUGIN or --to-dir DIR is required"),
    };
    let domains = match &args.domains {
        Some(text) => copy::parse_domains(text)?,
        None => copy::common_domains(from.as_ref(), to.as_ref()),
    };
    if domains.is_empty() {
        bail!("{} and {} hold no domain in common", from.describe(), to.describe());
    }
    let options = CopyOptions { domains, prefix: args.prefix.clone(), dry_run: args.dry_run, jobs: args.jobs };
    let stop = Arc::new(AtomicBool::new(false));
    let interrupt = {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: finishing the records in flight");
                stop.store(true, Ordering::Relaxed);
            }
        })
    };
    let bars = Bars { multi: MultiProgress::new(), bars: Mutex::new(BTreeMap::new()) };
    eprintln!(
        "copying {} from {} to {}",
        options.domains.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
        from.describe(),
        to.describe()
    );
    let summaries = copy::copy(from.as_ref(), to.as_ref(), &options, &bars, &stop).await?;
    interrupt.abort();
    print_summary(&summaries, args.dry_run);
    let failed: u64 = summaries.iter().map(|s| s.failed).sum();
    if failed > 0 {
        bail!("{failed} record(s) failed (listed above)");
    }
    if stop.load(Ordering::Relaxed) || summaries.iter().any(|s| s.interrupted) {
        bail!("interrupted before every record was copied; run the same command again to copy the rest");
    }
    Ok(())
}

fn print_summary(summaries: &[DomainSummary], dry_run: bool) {
    let fourth = if dry_run { "to copy" } else { "copied" };
    println!("{:<10} {:>8} {:>9} {:>10} {:>7} {:>12}", "domain", "records", fourth, "identical", "failed", "bytes");
    for s in summaries {
        let domain = s.domain.to_string();
        let moved = if dry_run { s.would_copy } else { s.copied };
        let note = if s.interrupted { "  (interrupted)" } else { "" };
        println!("{domain:<10} {:>8} {moved:>9} {:>10} {:>7} {:>12}{note}", s.records, s.skipped, s.failed, HumanBytes(s.bytes).to_string());
    }
    for s in summaries {
        for failure in &s.failures {
            println!("failed: {failure}");
        }
    }
}
