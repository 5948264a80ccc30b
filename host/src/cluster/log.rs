//! The invalidation log: one table in PostgreSQL, appended to by every host after the origin
//! acknowledged a write, read by every host from the last position it applied.
//!
//! Appends take a transaction-scoped advisory lock before drawing their sequence numbers, so
//! they commit in sequence order: whatever a reader sees is a prefix of the log (a sequence
//! number drawn by an append that rolled back is a hole that stays empty), and reading
//! `seq > last` never skips an event that commits later.

use std::time::Duration;

use anyhow::Context as _;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};

use super::config::LogConfig;
use crate::cache::Invalidation;

/// The longest notification payload an append sends with its events (PostgreSQL's limit is
/// 8000 bytes); a longer batch notifies its positions only, and listeners read the log.
const MAX_NOTIFICATION: usize = 7900;

/// What an append's notification says: its positions, its host, when it committed, and (when
/// they fit) its invalidations, so a listener that has applied everything before `first` can
/// apply the batch without reading the log.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct Notification {
    #[serde(rename = "f")]
    pub(crate) first: u64,
    #[serde(rename = "l")]
    pub(crate) last: u64,
    #[serde(rename = "h")]
    pub(crate) host: String,
    /// Unix milliseconds by the database's clock.
    #[serde(rename = "t")]
    pub(crate) committed_at_ms: f64,
    #[serde(rename = "e")]
    events: Option<Vec<(String, String, Option<String>)>>,
    /// The writers' trace contexts (W3C `traceparent`), one per event, when any write was traced.
    #[serde(rename = "c", default)]
    traces: Option<Vec<Option<String>>>,
}

impl Notification {
    pub(crate) fn parse(payload: &str) -> Option<Notification> {
        serde_json::from_str(payload).ok()
    }

    /// The batch's invalidations in order (`None`: a kind this host does not know), each with
    /// its writer's trace context, when the notification carries them.
    pub(crate) fn invalidations(self) -> Option<Vec<(Option<Invalidation>, Option<String>)>> {
        let mut traces = self.traces.unwrap_or_default().into_iter();
        Some(self.events?.into_iter().map(|(what, key, sub)| (decode(&what, key, sub), traces.next().flatten())).collect())
    }
}

/// One event read back from the log.
#[derive(Clone, Debug)]
pub(crate) struct Event {
    pub(crate) seq: u64,
    pub(crate) host: String,
    /// `None`: a kind of invalidation this host does not know (a newer host wrote it).
    pub(crate) invalidation: Option<Invalidation>,
    /// When it was appended, unix milliseconds by the database's clock.
    pub(crate) committed_at_ms: f64,
    /// The writer's trace context (W3C `traceparent`), when its write was traced.
    pub(crate) trace: Option<String>,
}

/// A read of the log after a position.
pub(crate) struct Read {
    /// Events up to here were pruned: a reader behind this point has missed some.
    pub(crate) pruned_through: u64,
    pub(crate) events: Vec<Event>,
}

/// Where the log stands.
pub(crate) struct Head {
    pub(crate) head: u64,
    pub(crate) pruned_through: u64,
    /// Made when the log's tables were created: a position is only meaningful in the log that
    /// gave it.
    pub(crate) log_id: String,
}

pub(crate) struct InvalidationLog {
    pool: PgPool,
    /// The listener's own pool, so its connection can be told apart (`application_name`).
    listen_pool: PgPool,
    /// The quoted schema.
    schema: String,
    /// The schema's name, which is also the NOTIFY channel.
    channel: String,
}

/// The columns an invalidation is stored in: domain, what, key, sub-key.
fn encode(invalidation: &Invalidation) -> (&'static str, &'static str, &str, Option<&str>) {
    match invalidation {
        Invalidation::Artifact { key } => ("artifact", "artifact", key, None),
        Invalidation::Project { id } => ("project", "project", id, None),
        Invalidation::ProjectArtifacts { id } => ("project", "artifacts", id, None),
        Invalidation::Document { id } => ("ui", "document", id, None),
        Invalidation::Workspace { id } => ("workspace", "workspace", id, None),
        Invalidation::Tab { workspace, tab } => ("workspace", "tab", workspace, Some(tab)),
    }
}

fn decode(what: &str, key: String, sub: Option<String>) -> Option<Invalidation> {
    Some(match (what, sub) {
        ("artifact", None) => Invalidation::Artifact { key },
        ("project", None) => Invalidation::Project { id: key },
        ("artifacts", None) => Invalidation::ProjectArtifacts { id: key },
        ("document", None) => Invalidation::Document { id: key },
        ("workspace", None) => Invalidation::Workspace { id: key },
        ("tab", Some(tab)) => Invalidation::Tab { workspace: key, tab },
        _ => return None,
    })
}

/// The migrations of the log's schema, each a list of statements; a migration's version is its
/// position, from 1.
fn migrations(schema: &str) -> Vec<Vec<String>> {
    vec![
        vec![
            format!(
                "CREATE TABLE {schema}.log (
                 seq bigserial PRIMARY KEY,
                 host_id text NOT NULL,
                 domain text NOT NULL,
                 what text NOT NULL,
                 key text NOT NULL,
                 sub text,
                 committed_at timestamptz NOT NULL DEFAULT clock_timestamp()
             )"
            ),
            format!("CREATE INDEX log_committed_at ON {schema}.log (committed_at)"),
            format!(
                "CREATE TABLE {schema}.meta (
                 id int PRIMARY KEY CHECK (id = 1),
                 log_id text NOT NULL,
                 pruned_through bigint NOT NULL DEFAULT 0
             )"
            ),
            format!("INSERT INTO {schema}.meta (id, log_id) VALUES (1, md5(random()::text || clock_timestamp()::text))"),
        ],
        vec![
            // The secrets of host-signed URLs, one for every replica: the current one has no
            // `retired_at`.
            format!(
                "CREATE TABLE {schema}.url_secrets (
                 id bigserial PRIMARY KEY,
                 secret bytea NOT NULL,
                 created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                 retired_at timestamptz
             )"
            ),
        ],
        // The writer's trace context, for the span of the event's application on each host.
        vec![format!("ALTER TABLE {schema}.log ADD COLUMN trace text")],
        // The replicas that are up, for the ring of key owners (peer fill).
        vec![format!(
            "CREATE TABLE {schema}.members (
                 host_id text PRIMARY KEY,
                 address text NOT NULL,
                 heartbeat timestamptz NOT NULL DEFAULT clock_timestamp(),
                 joined timestamptz NOT NULL DEFAULT clock_timestamp()
             )"
        )],
    ]
}

impl InvalidationLog {
    /// Connects (lazily: a host starts while the log database is down, and is stale until it
    /// can read it) and migrates the schema when the database answers.
    pub(crate) fn connect(config: &LogConfig, host_id: &str) -> anyhow::Result<Self> {
        let options: PgConnectOptions = config.url.parse().context("log.url")?;
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.connect_timeout)
            .connect_lazy_with(options.clone().application_name(&format!("storehost-cluster:{host_id}")));
        let listen_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(config.connect_timeout)
            .connect_lazy_with(options.application_name(&format!("storehost-cluster-listener:{host_id}")));
        Ok(Self { pool, listen_pool, schema: format!("\"{}\"", config.schema), channel: config.schema.clone() })
    }

    /// Creates the schema and applies the migrations it lacks, under an advisory lock, so that
    /// hosts starting at once migrate once.
    pub(crate) async fn migrate(&self) -> Result<(), sqlx::Error> {
        let migrations = migrations(&self.schema);
        let exists: bool =
            sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(format!("{}.schema_migrations", self.schema)).fetch_one(&self.pool).await?;
        let current: Option<i32> = match exists {
            true => sqlx::query_scalar(&format!("SELECT max(version) FROM {}.schema_migrations", self.schema)).fetch_one(&self.pool).await?,
            false => None,
        };
        if current.is_some_and(|v| v as usize >= migrations.len()) {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1), 0)").bind(&self.channel).execute(&mut *tx).await?;
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {}", self.schema)).execute(&mut *tx).await?;
        sqlx::query(&format!("CREATE TABLE IF NOT EXISTS {}.schema_migrations (version int PRIMARY KEY)", self.schema)).execute(&mut *tx).await?;
        let done: Option<i32> =
            sqlx::query_scalar(&format!("SELECT max(version) FROM {}.schema_migrations", self.schema)).fetch_one(&mut *tx).await?;
        for (i, statements) in migrations.iter().enumerate().skip(done.unwrap_or(0) as usize) {
            for statement in statements {
                sqlx::query(statement).execute(&mut *tx).await?;
            }
            sqlx::query(&format!("INSERT INTO {}.schema_migrations (version) VALUES ($1)", self.schema)).bind(i as i32 + 1).execute(&mut *tx).await?;
        }
        tx.commit().await
    }

    /// The URL secrets that may still verify a URL, current first, with when each was retired.
    /// With `fresh`, it is stored first as the current one where there is none, or (its `true`)
    /// in place of the current one, which is retired; retired ones older than `lifetime` go.
    /// Without, the secrets are only read.
    pub(crate) async fn url_secrets(&self, fresh: Option<(Vec<u8>, bool)>, lifetime: Duration) -> Result<Vec<(Vec<u8>, Option<i64>)>, sqlx::Error> {
        let schema = &self.schema;
        let select = format!(
            "SELECT secret, extract(epoch FROM retired_at)::bigint FROM {schema}.url_secrets
             WHERE retired_at IS NULL OR retired_at >= clock_timestamp() - make_interval(secs => $1)
             ORDER BY retired_at DESC NULLS FIRST, id DESC"
        );
        let Some((fresh, rotate)) = fresh else {
            return sqlx::query_as(&select).bind(lifetime.as_secs_f64()).fetch_all(&self.pool).await;
        };
        let mut tx = self.pool.begin().await?;
        // Replicas starting at once make one secret between them.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1), 1)").bind(&self.channel).execute(&mut *tx).await?;
        if rotate {
            sqlx::query(&format!("UPDATE {schema}.url_secrets SET retired_at = clock_timestamp() WHERE retired_at IS NULL"))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(&format!(
            "INSERT INTO {schema}.url_secrets (secret) SELECT $1 WHERE NOT EXISTS (SELECT 1 FROM {schema}.url_secrets WHERE retired_at IS NULL)"
        ))
        .bind(fresh)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!("DELETE FROM {schema}.url_secrets WHERE retired_at < clock_timestamp() - make_interval(secs => $1)"))
            .bind(lifetime.as_secs_f64())
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query_as(&select).bind(lifetime.as_secs_f64()).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Appends the invalidations of `host` (each with its writer's trace context, if traced) as
    /// one batch, notifies the channel with the batch's last position, and returns that position.
    /// One statement, one round trip.
    pub(crate) async fn append(&self, host: &str, batch: &[(Invalidation, Option<String>)]) -> Result<u64, sqlx::Error> {
        let (mut domains, mut whats, mut keys, mut subs, mut traces) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (invalidation, trace) in batch {
            let (domain, what, key, sub) = encode(invalidation);
            domains.push(domain);
            whats.push(what);
            keys.push(key);
            subs.push(sub);
            traces.push(trace.as_deref());
        }
        let statement = format!(
            "WITH lock AS (SELECT pg_advisory_xact_lock(hashtext($1), 1)),
                  ins AS (INSERT INTO {0}.log (host_id, domain, what, key, sub, trace)
                          SELECT $2, u.d, u.w, u.k, u.s, u.c
                          FROM lock, unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) WITH ORDINALITY AS u(d, w, k, s, c, n)
                          ORDER BY u.n
                          RETURNING seq, what, key, sub, trace, committed_at),
                  batch AS (SELECT min(seq) AS f, max(seq) AS l, (extract(epoch FROM min(committed_at)) * 1000)::float8 AS t,
                                   json_agg(json_build_array(what, key, sub) ORDER BY seq) AS e,
                                   CASE WHEN count(trace) > 0 THEN json_agg(trace ORDER BY seq) END AS c
                            FROM ins),
                  note AS (SELECT l, json_strip_nulls(json_build_object('f', f, 'l', l, 't', t, 'h', $2::text, 'e', e, 'c', c))::text AS with_events,
                                  json_build_object('f', f, 'l', l, 't', t, 'h', $2::text)::text AS positions_only
                           FROM batch),
                  notified AS (SELECT pg_notify($1, CASE WHEN octet_length(with_events) <= {1} THEN with_events ELSE positions_only END) FROM note)
             SELECT (SELECT l FROM note) AS head FROM notified",
            self.schema, MAX_NOTIFICATION
        );
        let head: i64 = sqlx::query(&statement)
            .bind(&self.channel)
            .bind(host)
            .bind(&domains)
            .bind(&whats)
            .bind(&keys)
            .bind(&subs)
            .bind(&traces)
            .fetch_one(&self.pool)
            .await?
            .try_get("head")?;
        Ok(head as u64)
    }

    /// At most `limit` events after `seq`, in order, and how far the log was pruned.
    pub(crate) async fn read_after(&self, seq: u64, limit: u32) -> Result<Read, sqlx::Error> {
        let statement = format!(
            "SELECT m.pruned_through, l.seq, l.host_id, l.what, l.key, l.sub, l.trace,
                    (extract(epoch FROM l.committed_at) * 1000)::float8 AS at
             FROM {0}.meta m
             LEFT JOIN LATERAL (SELECT * FROM {0}.log WHERE seq > $1 ORDER BY seq LIMIT $2) l ON true",
            self.schema
        );
        let rows = sqlx::query(&statement).bind(seq as i64).bind(i64::from(limit)).fetch_all(&self.pool).await?;
        let mut read = Read { pruned_through: 0, events: Vec::with_capacity(rows.len()) };
        for row in rows {
            read.pruned_through = row.try_get::<i64, _>("pruned_through")? as u64;
            let Some(seq) = row.try_get::<Option<i64>, _>("seq")? else { continue };
            let what: String = row.try_get("what")?;
            read.events.push(Event {
                seq: seq as u64,
                host: row.try_get("host_id")?,
                invalidation: decode(&what, row.try_get("key")?, row.try_get("sub")?),
                committed_at_ms: row.try_get("at")?,
                trace: row.try_get("trace")?,
            });
        }
        Ok(read)
    }

    pub(crate) async fn head(&self) -> Result<Head, sqlx::Error> {
        let row = sqlx::query(&format!(
            "SELECT greatest(m.pruned_through, coalesce((SELECT max(seq) FROM {0}.log), 0)) AS head, m.pruned_through, m.log_id
             FROM {0}.meta m",
            self.schema
        ))
        .fetch_one(&self.pool)
        .await?;
        Ok(Head {
            head: row.try_get::<i64, _>("head")? as u64,
            pruned_through: row.try_get::<i64, _>("pruned_through")? as u64,
            log_id: row.try_get("log_id")?,
        })
    }

    /// Says that `host` is up at `address`, and returns the addresses of the members whose last
    /// heartbeat is younger than `timeout` (by the database's clock, which every host shares),
    /// this one's among them. Rows long dead are deleted.
    pub(crate) async fn heartbeat(&self, host: &str, address: &str, timeout: Duration) -> Result<Vec<String>, sqlx::Error> {
        let schema = &self.schema;
        let statement = format!(
            "WITH beat AS (INSERT INTO {schema}.members (host_id, address) VALUES ($1, $2)
                           ON CONFLICT (host_id) DO UPDATE SET address = EXCLUDED.address, heartbeat = clock_timestamp()),
                  gone AS (DELETE FROM {schema}.members WHERE heartbeat < clock_timestamp() - make_interval(secs => $3 * 100) AND host_id <> $1)
             SELECT address FROM {schema}.members
             WHERE heartbeat >= clock_timestamp() - make_interval(secs => $3) AND host_id <> $1
             UNION SELECT $2"
        );
        sqlx::query_scalar(&statement).bind(host).bind(address).bind(timeout.as_secs_f64()).fetch_all(&self.pool).await
    }

    /// Takes `host` out of the members (it is shutting down).
    pub(crate) async fn leave(&self, host: &str) -> Result<(), sqlx::Error> {
        sqlx::query(&format!("DELETE FROM {}.members WHERE host_id = $1", self.schema)).bind(host).execute(&self.pool).await?;
        Ok(())
    }

    /// Deletes the events older than `retain` and records how far it went, unless another host
    /// is pruning at the moment. Returns the new pruned position when it pruned.
    pub(crate) async fn prune(&self, retain: Duration) -> Result<Option<u64>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let mine: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext($1), 2)").bind(&self.channel).fetch_one(&mut *tx).await?;
        if !mine {
            return Ok(None);
        }
        let through: i64 = sqlx::query_scalar(&format!(
            "WITH gone AS (DELETE FROM {0}.log WHERE committed_at < clock_timestamp() - make_interval(secs => $1) RETURNING seq)
             UPDATE {0}.meta SET pruned_through = greatest(pruned_through, (SELECT coalesce(max(seq), 0) FROM gone))
             RETURNING pruned_through",
            self.schema
        ))
        .bind(retain.as_secs_f64())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(through as u64))
    }

    /// A listener on the log's channel, on a connection of its own.
    pub(crate) async fn listen(&self) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.listen_pool).await?;
        listener.listen(&self.channel).await?;
        Ok(listener)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_invalidation_round_trips_through_its_columns() {
        let all = [
            Invalidation::Artifact { key: "a/b".into() },
            Invalidation::Project { id: "p".into() },
            Invalidation::ProjectArtifacts { id: "p".into() },
            Invalidation::Document { id: "d".into() },
            Invalidation::Workspace { id: "w".into() },
            Invalidation::Tab { workspace: "w".into(), tab: "t".into() },
        ];
        for invalidation in all {
            let (domain, what, key, sub) = encode(&invalidation);
            assert_eq!(domain, invalidation.domain().name());
            assert_eq!(decode(what, key.to_string(), sub.map(String::from)), Some(invalidation));
        }
        assert_eq!(decode("from-a-newer-host", "k".into(), None), None);
    }
}
