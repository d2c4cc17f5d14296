//! Reading a request body under a size cap while hashing it for the signature.
//!
//! SigV4 signs the SHA-256 of the body before the first byte is sent, so a signed body must
//! be held in full. We hash frame by frame as it arrives (no second pass) and stop at the cap.

use bytes::{Buf as _, Bytes, BytesMut};
use http_body::Body;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};

/// A body that could not be read for signing.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body exceeds the {limit}-byte limit")]
    TooLarge { limit: u64 },
    #[error("request body could not be read: {0}")]
    Read(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A fully read body and the lowercase hex SHA-256 of its bytes.
#[derive(Debug)]
pub struct HashedBody {
    pub bytes: Bytes,
    pub sha256_hex: String,
}

/// Bodies declared at least this large are held in their own anonymous memory mapping
/// (glibc's own default threshold for mapping an allocation). Returned with `munmap` the
/// moment the upstream is done with it, a 1 MiB remote-write body costs the process
/// exactly 1 MiB while in flight and nothing after. From the heap, glibc raises its mmap
/// threshold after the first free and then serves such bodies from arenas it fragments and
/// rarely trims: 16 concurrent 1 MiB writes peaked at 41.6 MiB RSS, 14 MiB over idle plus
/// bodies.
pub const MAPPED_BODY_MIN: usize = 128 * 1024;

/// Reads `body` to the end, failing as soon as more than `limit` bytes have arrived.
pub async fn read_hashed<B>(body: B, limit: u64) -> Result<HashedBody, BodyError>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // hyper knows a Content-Length body's size: one allocation instead of doubling growth
    // (which costs copies, page faults and peak memory on 1 MiB remote-write bodies).
    let expected = usize::try_from(body.size_hint().lower().min(limit)).unwrap_or(0);
    let mut body = std::pin::pin!(body);
    let mut hasher = Sha256::new();
    let mut held = if expected >= MAPPED_BODY_MIN {
        // Not MAP_POPULATE, although it saves a page fault per 4 KiB: the length is the
        // client's Content-Length, and committing it before a byte has arrived would let
        // clients that declare 32 MiB and send nothing pin 32 MiB each. Pages are committed
        // as data arrives. Out of address space is no reason to fail a request: the heap may
        // serve it.
        memmap2::MmapOptions::new()
            .len(expected)
            .map_anon()
            .map(|map| Held::Mapped(MappedBody { map, len: 0 }))
            .unwrap_or(Held::Nothing)
    } else {
        Held::Nothing
    };
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Read(e.into()))?;
        let Ok(mut data) = frame.into_data() else {
            continue; // trailers are not part of the signed payload
        };
        let chunk = data.copy_to_bytes(data.remaining());
        total += chunk.len() as u64;
        if total > limit {
            return Err(BodyError::TooLarge { limit });
        }
        hasher.update(&chunk);
        held = held.push(chunk, expected);
    }
    Ok(HashedBody {
        bytes: held.into_bytes(),
        sha256_hex: hex::encode(hasher.finalize()),
    })
}

/// Where the body read so far is kept.
enum Held {
    Nothing,
    /// A single frame, kept without copying (the common case for small bodies).
    First(Bytes),
    Joined(BytesMut),
    Mapped(MappedBody),
}

impl Held {
    fn push(self, chunk: Bytes, expected: usize) -> Self {
        match self {
            Self::Nothing => Self::First(chunk),
            Self::First(head) => {
                let mut buf = BytesMut::with_capacity(expected.max(head.len() + chunk.len()));
                buf.extend_from_slice(&head);
                buf.extend_from_slice(&chunk);
                Self::Joined(buf)
            }
            Self::Joined(mut buf) => {
                buf.extend_from_slice(&chunk);
                Self::Joined(buf)
            }
            Self::Mapped(mut mapped) => {
                let end = mapped.len + chunk.len();
                if let Some(room) = mapped.map.get_mut(mapped.len..end) {
                    room.copy_from_slice(&chunk);
                    mapped.len = end;
                    Self::Mapped(mapped)
                } else {
                    // More than the declared length (hyper refuses that, but be safe).
                    let mut buf = BytesMut::with_capacity(end);
                    buf.extend_from_slice(mapped.as_ref());
                    buf.extend_from_slice(&chunk);
                    Self::Joined(buf)
                }
            }
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Self::Nothing => Bytes::new(),
            Self::First(bytes) => bytes,
            Self::Joined(buf) => buf.freeze(),
            Self::Mapped(mapped) if mapped.len == 0 => Bytes::new(),
            // Unmapped when the last clone (the retry copy, hyper's write queue) is dropped.
            Self::Mapped(mapped) => Bytes::from_owner(mapped),
        }
    }
}

/// A body in an anonymous mapping, of which the first `len` bytes are filled.
struct MappedBody {
    map: memmap2::MmapMut,
    len: usize,
}

impl AsRef<[u8]> for MappedBody {
    fn as_ref(&self) -> &[u8] {
        &self.map[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;
    use http_body::Frame;
    use http_body_util::{Full, StreamBody};
    use std::convert::Infallible;

    fn chunked(parts: &[&'static [u8]]) -> impl Body<Data = Bytes, Error = Infallible> {
        StreamBody::new(stream::iter(
            parts
                .iter()
                .map(|p| Ok::<_, Infallible>(Frame::data(Bytes::from_static(p))))
                .collect::<Vec<_>>(),
        ))
    }

    #[tokio::test]
    async fn hashes_multi_frame_bodies_like_a_single_buffer() {
        let body = read_hashed(chunked(&[b"hello ", b"wor", b"ld"]), 100)
            .await
            .expect("fits");
        assert_eq!(body.bytes, "hello world");
        assert_eq!(body.sha256_hex, hex::encode(Sha256::digest(b"hello world")));
    }

    #[tokio::test]
    async fn empty_body_hashes_to_the_well_known_value() {
        let body = read_hashed(Full::new(Bytes::new()), 0).await.expect("fits");
        assert!(body.bytes.is_empty());
        assert_eq!(
            body.sha256_hex,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[tokio::test]
    async fn exactly_the_limit_fits_one_more_byte_does_not() {
        assert!(read_hashed(chunked(&[b"12345", b"678"]), 8).await.is_ok());
        let err = read_hashed(chunked(&[b"12345", b"6789"]), 8)
            .await
            .expect_err("over");
        assert!(matches!(err, BodyError::TooLarge { limit: 8 }));
    }

    #[tokio::test]
    async fn read_errors_are_reported() {
        let failing = StreamBody::new(stream::iter(vec![
            Ok(Frame::data(Bytes::from_static(b"x"))),
            Err(std::io::Error::other("client went away")),
        ]));
        assert!(matches!(
            read_hashed(failing, 100).await,
            Err(BodyError::Read(_))
        ));
    }

    /// A body that declares its length up front, as hyper's is for a Content-Length request.
    struct Declared<B> {
        inner: B,
        length: u64,
    }

    impl<B> Declared<B> {
        fn new(inner: B, length: u64) -> Self {
            Self { inner, length }
        }
    }

    impl<B: Body + Unpin> Body for Declared<B> {
        type Data = B::Data;
        type Error = B::Error;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
            std::pin::Pin::new(&mut self.inner).poll_frame(cx)
        }

        fn size_hint(&self) -> http_body::SizeHint {
            http_body::SizeHint::with_exact(self.length)
        }
    }

    #[tokio::test]
    async fn large_declared_bodies_are_held_in_a_mapping_and_read_back_exactly() {
        let part: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let whole: Vec<u8> = [part.as_slice(), &part, &part].concat();
        let frames = StreamBody::new(stream::iter(
            [&part, &part, &part]
                .into_iter()
                .map(|p| Ok::<_, Infallible>(Frame::data(Bytes::from(p.clone()))))
                .collect::<Vec<_>>(),
        ));
        // As hyper does for a Content-Length body.
        let declared = Declared::new(frames, whole.len() as u64);
        assert!(whole.len() >= MAPPED_BODY_MIN);
        let body = read_hashed(declared, 1 << 20).await.expect("fits");
        assert_eq!(body.bytes, whole);
        assert_eq!(body.sha256_hex, hex::encode(Sha256::digest(&whole)));

        // A body that is shorter than declared is held as what arrived.
        let short = Declared::new(
            Full::new(Bytes::from(part.clone())),
            MAPPED_BODY_MIN as u64 * 2,
        );
        assert_eq!(read_hashed(short, 1 << 20).await.expect("fits").bytes, part);
    }
}
