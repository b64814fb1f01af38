//! Response bodies for responses the cache does not store: the buffered prefix, then
//! the rest (of a response too large to store), or the error that cut it off.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// A body that yields `prefix` (what was buffered before the cache gave up on the
/// response) and then everything `rest` yields.
#[derive(Debug)]
pub(crate) struct Prefixed<B> {
    prefix: Option<Bytes>,
    rest: B,
}

impl<B> Prefixed<B> {
    pub(crate) fn new(prefix: Bytes, rest: B) -> Self {
        Prefixed { prefix: Some(prefix).filter(|prefix| !prefix.is_empty()), rest }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Prefixed<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        if let Some(prefix) = self.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let prefix = self.prefix.as_ref().map_or(0, |prefix| prefix.len() as u64);
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower().saturating_add(prefix));
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(prefix));
        }
        hint
    }
}

/// A body read from a blocking reader (the rest of a `reqwest::blocking::Response`).
/// Polling it reads, blocking the polling thread: it is only ever polled by a
/// `reqwest::blocking::Response` on the caller's thread, which blocks anyway.
#[cfg(feature = "blocking")]
#[derive(Debug)]
pub(crate) struct ReadBody<R> {
    reader: R,
    done: bool,
}

#[cfg(feature = "blocking")]
impl<R> ReadBody<R> {
    pub(crate) fn new(reader: R) -> Self {
        ReadBody { reader, done: false }
    }
}

#[cfg(feature = "blocking")]
impl<R: std::io::Read + Unpin> Body for ReadBody<R> {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let mut buffer = vec![0; 64 * 1024];
        loop {
            match self.reader.read(&mut buffer) {
                Ok(0) => {
                    self.done = true;
                    return Poll::Ready(None);
                }
                Ok(read) => {
                    buffer.truncate(read);
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(buffer)))));
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(error)));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

/// What is left of a body whose reading failed: the error, once, then the end. It
/// follows the prefix read before the failure ([`Prefixed`]), so that the caller meets
/// the error as it would without the cache. Reading on from the origin instead would
/// not: reqwest's blocking reader ends the body after giving its error once, and the
/// caller would take the prefix for the whole body.
#[cfg(feature = "blocking")]
#[derive(Debug)]
pub(crate) struct Failed {
    error: Option<std::io::Error>,
}

#[cfg(feature = "blocking")]
impl Failed {
    pub(crate) fn new(error: std::io::Error) -> Self {
        Failed { error: Some(error) }
    }
}

#[cfg(feature = "blocking")]
impl Body for Failed {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(self.error.take().map(Err))
    }

    fn is_end_stream(&self) -> bool {
        self.error.is_none()
    }
}
