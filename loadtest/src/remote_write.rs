//! Prometheus remote-write 1.0 bodies: a protobuf `WriteRequest`, snappy block-compressed.
//!
//! Only the fields a sender fills for plain samples are declared; the field numbers are
//! those of Prometheus' `prompb` messages.

use bytes::Bytes;
use prost::Message;

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub(crate) timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub(crate) labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub(crate) samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Label {
    #[prost(string, tag = "1")]
    pub(crate) name: String,
    #[prost(string, tag = "2")]
    pub(crate) value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Sample {
    #[prost(double, tag = "1")]
    pub(crate) value: f64,
    #[prost(int64, tag = "2")]
    pub(crate) timestamp: i64,
}

/// A ready-to-send body and what it holds.
#[derive(Debug, Clone)]
pub(crate) struct EncodedWrite {
    pub(crate) body: Bytes,
    pub(crate) series: usize,
    pub(crate) samples: usize,
    pub(crate) uncompressed_bytes: usize,
}

/// A small deterministic generator (SplitMix64), so every run sends the same bytes.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const METRICS: [&str; 10] = [
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
    "container_network_receive_bytes_total",
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "kube_pod_container_status_restarts_total",
    "node_cpu_seconds_total",
    "node_filesystem_avail_bytes",
    "process_resident_memory_bytes",
    "up",
];
const NAMESPACES: [&str; 6] = [
    "default",
    "kube-system",
    "monitoring",
    "payments",
    "checkout",
    "search",
];
const BUCKETS: [&str; 8] = ["0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "+Inf"];
/// Prometheus' default scrape interval: consecutive samples of a series are this far apart.
const SCRAPE_INTERVAL_MS: i64 = 15_000;

/// A `WriteRequest` of `series` series with `samples` samples each, labelled like a
/// Kubernetes cluster's scrape, with values that compress like real ones.
pub(crate) fn write_request(series: usize, samples: usize, seed: u64) -> WriteRequest {
    let mut rng = Rng::new(seed);
    let base_ts = 1_767_225_600_000 + (seed % 1000) as i64 * SCRAPE_INTERVAL_MS;
    let timeseries = (0..series)
        .map(|index| {
            let metric = METRICS[index % METRICS.len()];
            let namespace = NAMESPACES[rng.below(NAMESPACES.len() as u64) as usize];
            let node = rng.below(64);
            let pod_hash = rng.next_u64() & 0xff_ffff_ffff;
            let mut labels = vec![
                label("__name__", metric),
                label("cluster", "prod-eu-1"),
                label("container", &format!("app-{}", index % 23)),
                label("instance", &format!("ip-10-0-{}-{}:9100", node / 8, node)),
                label("job", "kubernetes-pods"),
                label("namespace", namespace),
                label(
                    "pod",
                    &format!("app-{}-{pod_hash:010x}-{:05}", index % 23, index),
                ),
            ];
            if metric.ends_with("_bucket") {
                labels.push(label("le", BUCKETS[index % BUCKETS.len()]));
            }
            labels.sort_by(|a, b| a.name.cmp(&b.name));
            let mut value = rng.unit() * 1e6;
            let samples = (0..samples)
                .map(|n| {
                    value += rng.unit() * 100.0;
                    Sample {
                        value: value.round(),
                        timestamp: base_ts + n as i64 * SCRAPE_INTERVAL_MS,
                    }
                })
                .collect();
            TimeSeries { labels, samples }
        })
        .collect();
    WriteRequest { timeseries }
}

fn label(name: &str, value: &str) -> Label {
    Label {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

/// Protobuf-encodes and snappy-compresses (block format, as remote write requires).
pub(crate) fn encode(request: &WriteRequest) -> Result<EncodedWrite, snap::Error> {
    let raw = request.encode_to_vec();
    let body = snap::raw::Encoder::new().compress_vec(&raw)?;
    Ok(EncodedWrite {
        body: Bytes::from(body),
        series: request.timeseries.len(),
        samples: request.timeseries.iter().map(|s| s.samples.len()).sum(),
        uncompressed_bytes: raw.len(),
    })
}

/// A body of `series` series, or, when `target_bytes` is given, of as many series as make
/// the compressed body about that large (within 0.5 %).
pub(crate) fn body(
    series: usize,
    samples: usize,
    target_bytes: Option<usize>,
    seed: u64,
) -> Result<EncodedWrite, snap::Error> {
    let samples = samples.max(1);
    let Some(target) = target_bytes else {
        return encode(&write_request(series.max(1), samples, seed));
    };
    let mut series = 256;
    let mut encoded = encode(&write_request(series, samples, seed))?;
    for _ in 0..8 {
        let per_series = encoded.body.len() as f64 / series as f64;
        series = ((target as f64 / per_series).round() as usize).max(1);
        encoded = encode(&write_request(series, samples, seed))?;
        if (encoded.body.len() as f64 - target as f64).abs() <= target as f64 * 0.005 {
            break;
        }
    }
    Ok(encoded)
}

/// Decodes a body the way a remote-write receiver does (used by tests and `serve --verify`).
pub(crate) fn decode(body: &[u8]) -> Result<WriteRequest, String> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("snappy: {e}"))?;
    WriteRequest::decode(raw.as_slice()).map_err(|e| format!("protobuf: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_snappy_and_protobuf() {
        let request = write_request(50, 3, 7);
        let encoded = encode(&request).expect("encodes");
        assert_eq!((encoded.series, encoded.samples), (50, 150));
        assert!(encoded.body.len() < encoded.uncompressed_bytes);
        let decoded = decode(&encoded.body).expect("decodes");
        assert_eq!(decoded, request);
        let first = &decoded.timeseries[0];
        assert_eq!(first.labels[0].name, "__name__");
        assert!(
            first.labels.windows(2).all(|w| w[0].name < w[1].name),
            "labels sorted by name, as Prometheus sends them"
        );
        assert_eq!(
            first.samples[1].timestamp - first.samples[0].timestamp,
            SCRAPE_INTERVAL_MS
        );
    }

    #[test]
    fn decodes_with_prost_from_a_raw_snappy_stream_of_the_same_bytes() {
        // An independent reader: the framing-free snappy decoder plus prost's own decode.
        let encoded = body(10, 2, None, 1).expect("encodes");
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&encoded.body)
            .expect("snappy block");
        assert_eq!(raw.len(), encoded.uncompressed_bytes);
        let decoded = WriteRequest::decode(raw.as_slice()).expect("protobuf");
        assert_eq!(decoded.timeseries.len(), 10);
        assert_eq!(decoded.timeseries[9].samples.len(), 2);
    }

    #[test]
    fn generation_is_deterministic_per_seed() {
        assert_eq!(write_request(5, 2, 3), write_request(5, 2, 3));
        assert_ne!(write_request(5, 2, 3), write_request(5, 2, 4));
    }

    #[test]
    fn sizes_to_a_target_within_two_percent() {
        let target = 200_000;
        let encoded = body(0, 1, Some(target), 11).expect("encodes");
        let error = (encoded.body.len() as f64 - target as f64).abs() / target as f64;
        assert!(error <= 0.02, "{} bytes", encoded.body.len());
        assert!(encoded.series > 100);
    }

    #[test]
    fn garbage_is_refused() {
        assert!(decode(b"not snappy at all").is_err());
    }
}
