//! `adapter-shim`: the Kubernetes custom and external metrics APIs served from
//! prometheus-adapter's configuration, querying Prometheus or Amazon Managed Service for
//! Prometheus through `sigv4-proxy`.
//!
//! This crate is the pure core, with no I/O beyond reading the configuration file:
//!
//! - [`config`]: prometheus-adapter's YAML, loaded strictly and validated up front;
//! - [`naming`]: series filters, metric names, and label ↔ resource association;
//! - [`template`]: `metricsQuery` rendering (Go templates) and PromQL label matchers;
//! - [`selector`]: Kubernetes label selectors (`labelSelector`, `metricLabelSelector`);
//! - [`prometheus`]: Prometheus API requests and responses;
//! - [`quantity`]: float → Kubernetes Quantity strings, exactly as prometheus-adapter;
//! - [`wire`]: the JSON answers, byte-compatible with prometheus-adapter's.

pub mod api;
pub mod cli;
pub mod config;
pub mod discovery;
pub mod metrics;
pub mod naming;
pub mod objects;
pub mod promclient;
pub mod prometheus;
pub mod quantity;
pub mod reload;
pub mod selector;
pub mod server;
pub mod template;
pub mod tls;
pub mod wire;
