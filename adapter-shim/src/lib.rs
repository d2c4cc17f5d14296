//! `adapter-shim`: the Kubernetes custom and external metrics APIs served from
//! prometheus-adapter's configuration, querying Prometheus or Amazon Managed Service for
//! Prometheus through `sigv4-proxy`.
//!
//! The pure core, with no I/O beyond reading the configuration file:
//!
//! - [`config`]: prometheus-adapter's YAML, loaded strictly and validated up front;
//! - [`naming`]: series filters, metric names, and label ↔ resource association;
//! - [`template`]: `metricsQuery` rendering (Go templates) and PromQL label matchers;
//! - [`selector`]: Kubernetes label selectors (`labelSelector`, `metricLabelSelector`);
//! - [`prometheus`]: Prometheus API requests and responses;
//! - [`quantity`]: float → Kubernetes Quantity strings, exactly as prometheus-adapter;
//! - [`wire`]: the JSON answers, byte-compatible with prometheus-adapter's.
//!
//! Serving:
//!
//! - [`cli`]: the command line, validated before anything is bound;
//! - [`promclient`]: calls to Prometheus (normally through the `sigv4-proxy` sidecar);
//! - [`discovery`]: the relist loop and the atomically swapped [`discovery::Snapshot`];
//! - [`reload`]: rules hot reload on change and SIGHUP;
//! - [`api`]: routing, lookups, queries and answers (the only place errors become status);
//! - [`objects`]: the object-lister seam for wildcard requests;
//! - [`kube`]: the Kubernetes API side: object lists for wildcard requests, API discovery;
//! - [`auth`]: delegated authentication and authorization, as the kube-aggregator expects;
//! - [`tls`], [`server`]: HTTPS (h2 and HTTP/1.1) with admission and graceful drain;
//! - [`metrics`]: the shim's own `/metrics`.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod discovery;
pub mod kube;
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
