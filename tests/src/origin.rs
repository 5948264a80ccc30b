//! The origins the binary is started on in the tests that run it against each of them.

use crate::pg::TestDatabase;
use crate::s3::{BUCKET, S3Server};

/// The origins, each with what it needs kept alive while the binary runs on it.
pub enum Origin {
    Fs,
    Postgres(TestDatabase),
    S3(S3Server),
    Memory,
}

impl Origin {
    pub async fn start(name: &str) -> Origin {
        match name {
            "fs" => Origin::Fs,
            "postgres" => Origin::Postgres(TestDatabase::create().await),
            "s3" => Origin::S3(S3Server::start().await),
            "memory" => Origin::Memory,
            _ => unreachable!("{name}"),
        }
    }

    /// The body of its `[plugins.origin]` table (the fs plugin's directory is `data` in the
    /// server's directory).
    pub fn plugin(&self) -> String {
        match self {
            Origin::Fs => "source = \"builtin:fs\"\ndirs = { \"/data\" = { host = \"data\", mode = \"rw\" } }\nconfig = { fsync = false }\n".into(),
            Origin::Postgres(db) => format!("source = \"builtin:postgres\"\nsql = {{ url = \"{}\", max_connections = 8 }}\n", db.url),
            Origin::S3(s3) => format!(
                "source = \"builtin:s3\"\nobject_store = {{ bucket = \"{BUCKET}\", endpoint = \"{}\", region = \"us-east-1\", path_style = true, access_key_id = \"{}\", secret_access_key = \"{}\" }}\nconfig = {{ prefix = \"artifacts/\" }}\n",
                s3.endpoint, s3.access_key, s3.secret_key
            ),
            Origin::Memory => "source = \"builtin:memory\"\n".into(),
        }
    }
}
