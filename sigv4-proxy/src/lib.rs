//! A streaming AWS SigV4 signing reverse proxy for Amazon Managed Service for Prometheus.

pub mod admin;
pub mod admission;
pub mod body;
pub mod config;
pub mod credentials;
pub mod error;
pub mod headers;
pub mod idle;
pub mod metered;
pub mod metrics;
pub mod proxy;
pub mod server;
pub mod signing;
pub mod target;
pub mod tls;
pub mod upstream;
