//! Runner artifacts get no cache (the seed keeps them apart from the gateway caches), only the
//! same origin metrics as every other domain.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::metrics::{DomainMetrics, MetricsSource, OriginMeter};
use crate::domain::{Ctx, Result, RunnerStore};

pub struct MeteredRunnerStore {
    origin: Arc<dyn RunnerStore>,
    meter: OriginMeter,
}

impl MeteredRunnerStore {
    pub fn new(origin: Arc<dyn RunnerStore>) -> Self {
        Self { origin, meter: OriginMeter::default() }
    }
}

#[async_trait]
impl RunnerStore for MeteredRunnerStore {
    async fn read(&self, ctx: &Ctx, run: &str, name: &str) -> Result<Bytes> {
        self.meter.call("read", self.origin.read(ctx, run, name)).await
    }

    async fn write(&self, ctx: &Ctx, run: &str, name: &str, data: Bytes) -> Result<()> {
        self.meter.call("write", self.origin.write(ctx, run, name, data)).await
    }

    async fn remove(&self, ctx: &Ctx, run: &str, name: &str) -> Result<()> {
        self.meter.call("remove", self.origin.remove(ctx, run, name)).await
    }

    async fn list(&self, ctx: &Ctx, run: &str, prefix: &str) -> Result<Vec<String>> {
        self.meter.call("list", self.origin.list(ctx, run, prefix)).await
    }
}

impl MetricsSource for MeteredRunnerStore {
    fn metrics(&self) -> DomainMetrics {
        DomainMetrics { domain: "runner", caches: Vec::new(), disk: None, origin: self.meter.snapshot() }
    }
}
