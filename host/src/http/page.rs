//! `GET /admin`: what the server is doing, as one server-rendered page: each plugin (version,
//! generation, instances, calls, errors, latency), each domain's caches, the disk tier and the
//! cluster's log. A small script fetches the page again every two seconds and swaps its live part
//! in place; without scripts it is a page that a reload refreshes. Tables turn into one card per
//! row on a narrow screen.

use std::fmt::Write as _;
use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Shared;
use super::extract::NoQuery;
use crate::app::App;
use crate::base::ErrorKind;
use crate::metering::{LATENCY_BUCKETS, latency_quantile};

pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new().routes(routes!(admin_page))
}

#[utoipa::path(
    get,
    path = "/admin",
    tag = "admin",
    operation_id = "admin_page",
    summary = "The admin page: plugins, caches, the disk tier and the cluster, refreshed live (HTML; a browser may send the admin token as the password of Basic authentication)",
    responses((status = 200, description = "The page", content_type = "text/html", body = String, headers(("Server-Timing" = String, description = "`render;dur=<ms>`: how long the server took to render it"))))
)]
async fn admin_page(State(state): State<Shared>, _: NoQuery) -> Response {
    let started = Instant::now();
    let app = state.app();
    let html = render(&app, state.reloads.load(std::sync::atomic::Ordering::Relaxed));
    let took = started.elapsed();
    let timing = HeaderValue::from_str(&format!("render;dur={:.3}", took.as_secs_f64() * 1000.0)).expect("digits are a valid header");
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::HeaderName::from_static("server-timing"), timing),
        ],
        html,
    )
        .into_response()
}

/// Text made safe for HTML, as element content and as a quoted attribute value.
struct Escaped<'a>(&'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&#39;")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// A hit ratio as the page shows it: `hits / (hits + misses)` in percent with one decimal, `–`
/// before the first lookup.
pub fn hit_ratio(hits: u64, misses: u64) -> String {
    match hits + misses {
        0 => "–".into(),
        total => format!("{:.1} %", hits as f64 * 100.0 / total as f64),
    }
}

/// A latency bucket's upper bound as the page shows it: `≤ 250 µs`, `≤ 2.5 ms`, `> 10 s`.
pub fn latency_bound(bound: Option<f64>) -> String {
    match bound {
        None => "–".into(),
        Some(b) if b.is_infinite() => format!("> {}", seconds(LATENCY_BUCKETS.last().copied().unwrap_or(f64::INFINITY))),
        Some(b) => format!("≤ {}", seconds(b)),
    }
}

fn seconds(s: f64) -> String {
    if s < 0.001 {
        format!("{} µs", (s * 1e6).round())
    } else if s < 1.0 {
        format!("{} ms", s * 1000.0)
    } else {
        format!("{s} s")
    }
}

fn bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

fn kinds(counts: &[(ErrorKind, u64)]) -> String {
    counts.iter().map(|(kind, n)| format!("{kind} {n}")).collect::<Vec<_>>().join(", ")
}

/// One table: its id, its column headings (each also the label of its cells on a narrow screen)
/// and its rows, each the row's `data-` key and its cells' text.
struct Table<'a> {
    id: &'a str,
    columns: &'a [&'a str],
    rows: Vec<(String, Vec<String>)>,
}

impl Table<'_> {
    fn render(&self, out: &mut String, empty: &str) {
        if self.rows.is_empty() {
            let _ = writeln!(out, "<p class=\"empty\">{}</p>", Escaped(empty));
            return;
        }
        let _ = write!(out, "<table id=\"{}\"><thead><tr>", self.id);
        for column in self.columns {
            let _ = write!(out, "<th scope=\"col\">{}</th>", Escaped(column));
        }
        out.push_str("</tr></thead><tbody>\n");
        for (key, cells) in &self.rows {
            let _ = write!(out, "<tr data-row=\"{}\">", Escaped(key));
            for (i, (column, cell)) in self.columns.iter().zip(cells).enumerate() {
                let tag = if i == 0 { "th scope=\"row\"" } else { "td" };
                let close = if i == 0 { "th" } else { "td" };
                let _ = write!(out, "<{tag} data-label=\"{}\">{}</{close}>", Escaped(column), Escaped(cell));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody></table>\n");
    }
}

const PLUGIN_COLUMNS: [&str; 12] =
    ["Plugin", "Source", "Version", "Generation", "In use", "Idle", "Calls", "Errors", "Traps", "Timeouts", "p50", "p99"];
const CACHE_COLUMNS: [&str; 9] = ["Domain / cache", "Hit ratio", "Hits", "Misses", "Stale", "Entries", "Bytes", "Evictions", "Coalesced"];
const ORIGIN_COLUMNS: [&str; 4] = ["Domain", "Origin calls", "Errors", "Mean latency"];

/// The page of `app`.
pub fn render(app: &App, reloads: u64) -> String {
    let mut out = String::with_capacity(16 << 10);
    out.push_str(HEAD);
    let _ = writeln!(
        out,
        "<header><h1>storehost</h1><p>{} · manifest <code>{}</code> · {} plugin(s) · {} reload(s) · <span id=\"state\">live</span></p></header>",
        env!("CARGO_PKG_VERSION"),
        Escaped(&app.manifest.origin),
        app.plugins.len(),
        reloads
    );
    out.push_str("<main id=\"live\">\n<section><h2>Plugins</h2>\n");
    let plugins = app
        .plugins
        .iter()
        .map(|(name, plugin)| {
            let s = plugin.stats();
            let generation = app.loads.get(name).map_or(0, |l| l.generation);
            let errors = if s.errors_by_kind.is_empty() { "0".to_string() } else { format!("{} ({})", s.errors, kinds(&s.errors_by_kind)) };
            let cells = vec![
                name.clone(),
                plugin.source().to_string(),
                plugin.info().version.clone(),
                generation.to_string(),
                s.pool_in_use.to_string(),
                format!("{} of {}", s.pool_idle, s.pool_size),
                s.calls.to_string(),
                errors,
                s.traps.to_string(),
                s.timeouts.to_string(),
                latency_bound(latency_quantile(&s.latency_buckets, 0.5)),
                latency_bound(latency_quantile(&s.latency_buckets, 0.99)),
            ];
            (name.clone(), cells)
        })
        .collect();
    Table { id: "plugins", columns: &PLUGIN_COLUMNS, rows: plugins }.render(&mut out, "No plugins are loaded.");
    out.push_str("</section>\n<section><h2>Caches</h2>\n");
    let metrics = app.metrics();
    let caches = metrics
        .iter()
        .flat_map(|d| {
            d.tiers().map(move |c| {
                let s = &c.stats;
                let cells = vec![
                    format!("{} / {}", d.domain, c.name),
                    hit_ratio(s.hits, s.misses),
                    s.hits.to_string(),
                    s.misses.to_string(),
                    s.stale_hits.to_string(),
                    s.entries.to_string(),
                    bytes(s.bytes),
                    s.evictions.to_string(),
                    c.coalescing.coalesced.to_string(),
                ];
                (format!("{}/{}", d.domain, c.name), cells)
            })
        })
        .collect();
    Table { id: "caches", columns: &CACHE_COLUMNS, rows: caches }.render(&mut out, "No domain is cached.");
    out.push_str("</section>\n<section><h2>Disk tier</h2>\n");
    match metrics.iter().find_map(|d| d.disk.as_ref().map(|disk| (d.domain, disk))) {
        Some((domain, disk)) => {
            let _ = writeln!(
                out,
                "<p id=\"disk\">The {} domain's bodies: {} entries, {}; hit ratio {} ({} hits, {} misses), {} evictions, {} expirations.</p>",
                domain,
                disk.entries,
                bytes(disk.bytes),
                hit_ratio(disk.hits, disk.misses),
                disk.hits,
                disk.misses,
                disk.evictions,
                disk.expirations
            );
        }
        None => out.push_str("<p class=\"empty\" id=\"disk\">No disk tier (<code>[cache.disk]</code> is not configured).</p>\n"),
    }
    out.push_str("</section>\n<section><h2>Origins</h2>\n");
    let origins = metrics
        .iter()
        .map(|d| {
            let o = &d.origin;
            let errors: u64 = o.errors.iter().map(|(_, n)| n).sum();
            let mean = if o.calls == 0 { "–".into() } else { format!("{:.2} ms", o.latency_sum.as_secs_f64() * 1000.0 / o.calls as f64) };
            (d.domain.to_string(), vec![d.domain.to_string(), o.calls.to_string(), errors.to_string(), mean])
        })
        .collect();
    Table { id: "origins", columns: &ORIGIN_COLUMNS, rows: origins }.render(&mut out, "No domain is configured.");
    out.push_str("</section>\n<section><h2>Cluster</h2>\n");
    match &app.cluster {
        Some(node) => {
            let s = node.stats();
            let age = s.sync_age.map_or("never".to_string(), |a| format!("{} ms ago", a.as_millis()));
            let _ = writeln!(
                out,
                "<p id=\"cluster\">Host <code>{}</code>: {} · applied up to {} · lag {} · last sync {} · {} published, {} waiting to publish, {} publish failures.</p>",
                Escaped(&s.host_id),
                if s.synced { "in sync" } else { "not in sync: answering from the origins" },
                s.applied,
                s.lag,
                age,
                s.published,
                s.backlog,
                s.publish_failures
            );
            if let Some(peers) = node.peers() {
                let p = peers.stats();
                let requests: Vec<String> = p.requests.iter().map(|(result, n)| format!("{n} {}", result.replace('_', " "))).collect();
                let _ = writeln!(
                    out,
                    "<p id=\"peers\">Peer fill: this host is <code>{}</code> on a ring of {} ({}) · reads asked of owners: {} · {} answered for other members · {} hot copies kept.</p>",
                    Escaped(if p.address.is_empty() { "not yet registered" } else { &p.address }),
                    p.members.len(),
                    Escaped(&p.members.join(", ")),
                    requests.join(", "),
                    p.served,
                    p.hot
                );
            }
        }
        None => out.push_str("<p class=\"empty\" id=\"cluster\">A single host (no <code>[cluster]</code>).</p>\n"),
    }
    out.push_str("</section>\n</main>\n");
    out.push_str(TAIL);
    out
}

const HEAD: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>storehost admin</title>
<style>
:root { color-scheme: light dark; --line: #8884; --muted: #888; }
body { font: 15px/1.4 system-ui, sans-serif; margin: 0 auto; padding: 0 1rem 2rem; max-width: 80rem; }
header p, .empty, footer { color: var(--muted); }
h1 { font-size: 1.4rem; margin: 1rem 0 0; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: right; padding: .3rem .5rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
th[scope=row], thead th:first-child { text-align: left; }
code { font-size: .9em; overflow-wrap: anywhere; }
@media (max-width: 700px) {
  table, tbody, th, td { display: block; width: auto; }
  thead { display: none; }
  tr { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); column-gap: 1.2rem; border: 1px solid var(--line); border-radius: .4rem; margin: 0 0 .6rem; padding: .3rem .6rem; }
  th[scope=row] { grid-column: 1 / -1; font-size: 1.05rem; border: 0; padding: .2rem 0; }
  td { display: flex; justify-content: space-between; gap: 1rem; border: 0; padding: .1rem 0; white-space: normal; text-align: right; overflow-wrap: anywhere; }
  td::before { content: attr(data-label); color: var(--muted); text-align: left; }
}
</style>
</head>
<body>
"#;

const TAIL: &str = r#"<footer><p>The page fetches itself again every 2 s; the numbers are the ones <code>/metrics</code> gives.</p></footer>
<script>
(() => {
  const state = document.getElementById("state");
  setInterval(async () => {
    try {
      const answer = await fetch(location.pathname, { cache: "no-store", credentials: "same-origin" });
      if (!answer.ok) throw new Error(answer.status);
      const next = new DOMParser().parseFromString(await answer.text(), "text/html").getElementById("live");
      document.getElementById("live").replaceWith(next);
      state.textContent = "live, " + new Date().toLocaleTimeString();
    } catch (error) {
      state.textContent = "not refreshed (" + error.message + ")";
    }
  }, 2000);
})();
</script>
</body>
</html>
"#;
