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
//! - [`wire`]: the JSON answers, byte-compatible with prometheus-adapter's;
//! - [`kube`]: the Kubernetes API side: object lists for wildcard requests, API discovery;
//! - [`auth`]: delegated authentication and authorization, as the kube-aggregator expects.

pub mod auth;
pub mod config;
pub mod kube;
pub mod naming;
pub mod objects;
pub mod prometheus;
pub mod quantity;
pub mod selector;
pub mod template;
pub mod wire;
