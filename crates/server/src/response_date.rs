//! [`ResponseDateLayer`]: every gRPC response carries a `date` header from the node's
//! [`Clock`], never from the machine's clock.
//!
//! hyper stamps each response that has no `date` header with the system time. Production loses
//! nothing by taking it from the node's clock instead (that clock *is* the system time there),
//! but the simulation must: a hyper-stamped date changes whenever the machine's second turns,
//! and its new value goes out as an HPACK literal, otherwise as an index. Those bytes change
//! the HTTP/2 frames and so what the simulated network does with them, and two runs of one
//! seed drifted apart. Stamped from the simulated clock, the header is part of the seed's run.
//!
//! ```text
//!   hyper ── tonic: GrpcTimeout (answers an expired deadline with CANCELLED, undated)
//!              └── ResponseDate: own deadline on the same `grpc-timeout`, then `date`
//!                    └── the other layers and the services
//! ```
//!
//! Why this layer enforces the call's deadline too: tonic answers an expired `grpc-timeout`
//! from outside every layer the server adds, so that answer would escape the stamp. Both
//! deadlines are armed at the same instant with the same duration, and tonic polls the inner
//! call before its own timer, so an expired call ends here, with the status tonic would have
//! given it (`CANCELLED`, "Timeout expired"), dated.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, UNIX_EPOCH};

use futures::future::Either;
use http::HeaderValue;
use tonic::body::Body;
use tower::{Layer, Service};

use crate::clock::Clock;

/// The longest `grpc-timeout` value the gRPC spec allows: eight digits.
const GRPC_TIMEOUT_DIGITS_MAX: usize = 8;

thread_local! {
    /// The last `date` value formatted on this thread and the second it names.
    static HTTP_DATE: RefCell<Option<(u64, HeaderValue)>> = const { RefCell::new(None) };
}

/// `clock`'s time as an HTTP `date` header value (IMF-fixdate, whole seconds), formatted at
/// most once per second per thread, as hyper does.
pub fn http_date(clock: &dyn Clock) -> HeaderValue {
    let second = clock.now_ms() / 1_000;
    HTTP_DATE.with(|cached| {
        let mut cached = cached.borrow_mut();
        match &*cached {
            Some((at, value)) if *at == second => value.clone(),
            _ => {
                let text = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(second));
                let value =
                    HeaderValue::from_str(&text).expect("an IMF-fixdate is a valid header value");
                *cached = Some((second, value.clone()));
                value
            }
        }
    })
}

/// The deadline a `grpc-timeout` header asks for (`None`: absent or malformed, as tonic
/// treats it).
pub(crate) fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > GRPC_TIMEOUT_DIGITS_MAX + 1 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 60 * 60),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// A tower layer that dates every gRPC response from a [`Clock`] (see the module docs).
#[derive(Clone, Debug)]
pub struct ResponseDateLayer {
    clock: Arc<dyn Clock>,
}

impl ResponseDateLayer {
    /// Dates responses from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { clock }
    }
}

impl<S> Layer<S> for ResponseDateLayer {
    type Service = ResponseDate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ResponseDate {
            inner,
            clock: Arc::clone(&self.clock),
        }
    }
}

/// The service [`ResponseDateLayer`] wraps around the gRPC router.
#[derive(Clone, Debug)]
pub struct ResponseDate<S> {
    inner: S,
    clock: Arc<dyn Clock>,
}

impl<S, B> Service<http::Request<B>> for ResponseDate<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let clock = Arc::clone(&self.clock);
        let timeout = grpc_timeout(request.headers());
        let call = self.inner.call(request);
        // Armed now, before tonic arms its own timer for the same header.
        let call = match timeout {
            Some(timeout) => Either::Right(tokio::time::timeout(timeout, call)),
            None => Either::Left(async move { Ok(call.await) }),
        };
        Box::pin(async move {
            let mut response = match call.await {
                Ok(result) => result?,
                Err(_elapsed) => {
                    tonic::Status::cancelled(tonic::TimeoutExpired(()).to_string()).into_http()
                }
            };
            response
                .headers_mut()
                .insert(http::header::DATE, http_date(clock.as_ref()));
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    #[derive(Debug)]
    struct At(u64);

    impl Clock for At {
        fn now_ms(&self) -> u64 {
            self.0
        }
    }

    #[test]
    fn http_date_follows_the_injected_clock_to_the_second() {
        assert_eq!(
            http_date(&At(1_735_689_600_999)),
            "Wed, 01 Jan 2025 00:00:00 GMT"
        );
        assert_eq!(
            http_date(&At(1_735_689_601_000)),
            "Wed, 01 Jan 2025 00:00:01 GMT"
        );
        assert_eq!(http_date(&At(0)), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn grpc_timeout_reads_every_unit_and_refuses_what_tonic_refuses() {
        let parse = |v: &'static str| {
            let mut headers = http::HeaderMap::new();
            headers.insert("grpc-timeout", HeaderValue::from_static(v));
            grpc_timeout(&headers)
        };
        assert_eq!(parse("2H"), Some(Duration::from_secs(7_200)));
        assert_eq!(parse("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse("2500m"), Some(Duration::from_millis(2_500)));
        assert_eq!(parse("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse("99999999n"), Some(Duration::from_nanos(99_999_999)));
        for bad in ["", "m", "123456789m", "12x", "-1m", "1.5S"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(grpc_timeout(&http::HeaderMap::new()), None);
    }

    /// Calls a [`ResponseDate`] over a service that answers after `reply_after`, with a
    /// `grpc-timeout` of 20 ms.
    async fn call_replying_after(reply_after: Duration) -> http::Response<Body> {
        let inner = tower::service_fn(move |_: http::Request<()>| async move {
            tokio::time::sleep(reply_after).await;
            Ok::<_, Infallible>(http::Response::new(Body::default()))
        });
        let mut service = ResponseDateLayer::new(Arc::new(At(1_735_689_600_000))).layer(inner);
        let request = http::Request::builder()
            .header("grpc-timeout", "20m")
            .body(())
            .expect("request");
        match service.call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }

    #[tokio::test]
    async fn answers_are_dated_and_an_expired_deadline_is_answered_here() {
        // Goal: the call that finishes in time and the call that outlives its `grpc-timeout`
        // both come back dated from the injected clock; the late one as tonic would answer it.
        let on_time = call_replying_after(Duration::ZERO).await;
        assert_eq!(on_time.headers()["date"], "Wed, 01 Jan 2025 00:00:00 GMT");
        assert!(on_time.headers().get("grpc-status").is_none());

        let late = call_replying_after(Duration::from_secs(60)).await;
        assert_eq!(late.headers()["date"], "Wed, 01 Jan 2025 00:00:00 GMT");
        let status = tonic::Status::from_header_map(late.headers()).expect("a status");
        assert_eq!(status.code(), tonic::Code::Cancelled);
        assert_eq!(status.message(), "Timeout expired");
    }
}
