//! The traffic switch: the reverse proxy in front of the local platform's instances.
//!
//! It exists so that moving traffic is one atomic pointer swap: the [`RoutingTable`] (the
//! routing and the ready instances of each slot) lives in an [`ArcSwap`], so the request path
//! never takes a lock, and a request is routed on its own, when it arrives, whatever
//! connection it came on. Requests already sent to an instance keep their [`InFlight`] guard
//! until their response body ends, which is what draining waits for.
//!
//! The same proxy serves three listeners ([`Entry`]): the front port, routed by the table and
//! counted in [`TrafficStats`], and one preview port per slot, which reaches only that slot's
//! ready instances and is not counted.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use pin_project_lite::pin_project;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::server::serve_http1;
use crate::platform::{LatencyHistogram, Routing, Slot, TrafficStats};

/// The response header naming the slot whose instance answered (`blue` or `green`).
pub(crate) const SLOT_HEADER: &str = "x-engine-ops-slot";

/// How many times a request looks for another instance when the one it picked was taken out
/// of routing between the table load and the request's start.
const PICK_ATTEMPTS: usize = 3;

/// Which requests a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// The front port: routed by the table, counted.
    Front,
    /// A preview port: only this slot's ready instances, not counted.
    Preview(Slot),
}

/// One instance as the switch sees it: where it listens and how many requests it serves.
#[derive(Debug)]
pub(crate) struct Backend {
    id: u64,
    slot: Slot,
    addr: SocketAddr,
    authority: Authority,
    in_flight: AtomicUsize,
    /// Set (after the instance left the table) when it is being drained; a request that
    /// picked it from an older table then picks again.
    retired: AtomicBool,
    idle: Notify,
}

impl Backend {
    pub(crate) fn new(id: u64, slot: Slot, addr: SocketAddr) -> Result<Arc<Self>, http::Error> {
        let authority = Authority::try_from(addr.to_string().as_str())?;
        Ok(Arc::new(Self {
            id,
            slot,
            addr,
            authority,
            in_flight: AtomicUsize::new(0),
            retired: AtomicBool::new(false),
            idle: Notify::new(),
        }))
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests sent to this instance whose response has not ended.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Marks the instance as leaving: call it after publishing a table without it. From then
    /// on no request starts on it, so [`drained`](Self::drained) cannot be raced.
    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
    }

    /// Waits until no request is in flight on this instance; `false` if `until` came first.
    pub(crate) async fn drained(&self, until: Instant) -> bool {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.in_flight() == 0 {
                return true;
            }
            if tokio::time::timeout_at(until, notified).await.is_err() {
                return self.in_flight() == 0;
            }
        }
    }

    /// Starts a request on this instance, unless it was retired meanwhile.
    fn enter(self: &Arc<Self>) -> Option<InFlight> {
        // Dekker-style with `retire` + `in_flight()` in the drainer (all SeqCst): either this
        // load sees the retirement, or the drainer sees this request in flight.
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight(Arc::clone(self));
        if self.retired.load(Ordering::SeqCst) {
            return None;
        }
        Some(guard)
    }
}

/// One request in flight on a [`Backend`]; dropping it ends the request.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Backend>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// The counters that live as long as one routing: the split sequence and the round-robin
/// cursors. Readiness changes keep them, so a split stays exact while instances come and go.
#[derive(Debug, Default)]
struct Sequence {
    requests: AtomicU64,
    /// Blue, green, pooled.
    cursors: [AtomicUsize; 3],
}

impl Sequence {
    fn next(cursor: &AtomicUsize, len: usize) -> usize {
        cursor.fetch_add(1, Ordering::Relaxed) % len
    }
}

/// What the switch routes by: published whole, replaced atomically.
#[derive(Debug)]
pub(crate) struct RoutingTable {
    routing: Routing,
    /// Ready instances per slot (blue, green), oldest first.
    ready: [Vec<Arc<Backend>>; 2],
    /// Both slots' ready instances, for [`Routing::Pooled`].
    pooled: Vec<Arc<Backend>>,
    sequence: Arc<Sequence>,
}

impl RoutingTable {
    /// The table of a platform that routes nothing and runs nothing.
    pub(crate) fn empty() -> Self {
        Self {
            routing: Routing::None,
            ready: [Vec::new(), Vec::new()],
            pooled: Vec::new(),
            sequence: Arc::default(),
        }
    }

    /// A table for `routing` over `ready` (blue, green), continuing `previous`'s sequence
    /// when the routing did not change.
    pub(crate) fn new(
        routing: Routing,
        ready: [Vec<Arc<Backend>>; 2],
        previous: &RoutingTable,
    ) -> Self {
        let sequence = if previous.routing == routing {
            Arc::clone(&previous.sequence)
        } else {
            Arc::default()
        };
        let pooled = ready.iter().flatten().cloned().collect();
        Self {
            routing,
            ready,
            pooled,
            sequence,
        }
    }

    fn pick_in(&self, slot: Slot) -> Option<Arc<Backend>> {
        let ready = &self.ready[slot as usize];
        if ready.is_empty() {
            return None;
        }
        let index = Sequence::next(&self.sequence.cursors[slot as usize], ready.len());
        Some(Arc::clone(&ready[index]))
    }

    fn pick_pooled(&self) -> Option<Arc<Backend>> {
        if self.pooled.is_empty() {
            return None;
        }
        let index = Sequence::next(&self.sequence.cursors[2], self.pooled.len());
        Some(Arc::clone(&self.pooled[index]))
    }
}

/// Whether request number `n` of a split goes to the canary: exactly `percent` of any 100
/// consecutive requests do, spread evenly (Bresenham: request `n` is a canary request when
/// `⌊(n+1)·p/100⌋ > ⌊n·p/100⌋`, counting `n` modulo 100).
pub(crate) fn canary_turn(n: u64, percent: u8) -> bool {
    let p = u64::from(percent.min(100));
    let k = n % 100;
    (k + 1) * p / 100 > k * p / 100
}

/// Where the switch sends one request.
enum Pick {
    /// [`Routing::None`]: nothing is routed.
    Unrouted,
    /// The chosen slot (or the pool, `None`) has no ready instance.
    Empty(Option<Slot>),
    /// This instance.
    Backend(InFlight),
}

/// Per-slot counters, replaced whole when the slot gets a new deploy.
#[derive(Debug, Default)]
struct SlotCounters {
    requests: AtomicU64,
    errors: AtomicU64,
    latency: Mutex<LatencyHistogram>,
}

/// The switch: the routing table, the counters, and the pooled client to the instances.
#[derive(Debug)]
pub(crate) struct Switch {
    table: ArcSwap<RoutingTable>,
    counters: [ArcSwap<SlotCounters>; 2],
    client: Client<HttpConnector, Incoming>,
}

impl Switch {
    pub(crate) fn new() -> Arc<Self> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Arc::new(Self {
            table: ArcSwap::from_pointee(RoutingTable::empty()),
            counters: [ArcSwap::default(), ArcSwap::default()],
            client,
        })
    }

    /// The table requests are routed by now.
    pub(crate) fn table(&self) -> Arc<RoutingTable> {
        self.table.load_full()
    }

    /// Makes `table` the one the next request is routed by.
    pub(crate) fn publish(&self, table: RoutingTable) {
        self.table.store(Arc::new(table));
    }

    /// Starts `slot`'s counters from zero (a new release in the slot).
    pub(crate) fn reset_counters(&self, slot: Slot) {
        self.counters[slot as usize].store(Arc::default());
    }

    /// A reading of `slot`'s counters.
    pub(crate) fn traffic(&self, slot: Slot) -> TrafficStats {
        let counters = self.counters[slot as usize].load();
        let latency = counters
            .latency
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        TrafficStats {
            requests: counters.requests.load(Ordering::Relaxed),
            errors: counters.errors.load(Ordering::Relaxed),
            latency,
        }
    }

    fn record(&self, slot: Slot, error: bool, latency: Duration) {
        let counters = self.counters[slot as usize].load();
        counters.requests.fetch_add(1, Ordering::Relaxed);
        if error {
            counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        counters
            .latency
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(latency);
    }

    fn pick(&self, entry: Entry) -> Pick {
        let table = self.table.load();
        let slot = match (entry, table.routing) {
            (Entry::Preview(slot), _) | (Entry::Front, Routing::All { slot }) => Some(slot),
            (Entry::Front, Routing::Split { canary, percent }) => {
                let n = table.sequence.requests.fetch_add(1, Ordering::Relaxed);
                Some(if canary_turn(n, percent) {
                    canary
                } else {
                    canary.other()
                })
            }
            (Entry::Front, Routing::Pooled) => None,
            (Entry::Front, Routing::None) => return Pick::Unrouted,
        };
        drop(table);
        for _ in 0..PICK_ATTEMPTS {
            // A fresh load each time: a retired instance has left the newest table.
            let table = self.table.load();
            let backend = match slot {
                Some(slot) => table.pick_in(slot),
                None => table.pick_pooled(),
            };
            let Some(backend) = backend else {
                return Pick::Empty(slot);
            };
            if let Some(guard) = backend.enter() {
                return Pick::Backend(guard);
            }
        }
        Pick::Empty(slot)
    }

    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        entry: Entry,
        peer: SocketAddr,
    ) -> Result<Response<SwitchBody>, Infallible> {
        let started = Instant::now();
        let counted = entry == Entry::Front;
        let guard = match self.pick(entry) {
            Pick::Unrouted => {
                return Ok(local_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    None,
                    "no release is routed: deploy one and route traffic to it\n",
                ));
            }
            Pick::Empty(slot) => {
                if let (true, Some(slot)) = (counted, slot) {
                    self.record(slot, true, started.elapsed());
                }
                let text = match slot {
                    Some(slot) => format!("no ready instance in slot {slot}\n"),
                    None => "no ready instance in either slot\n".to_owned(),
                };
                return Ok(local_response(StatusCode::SERVICE_UNAVAILABLE, slot, text));
            }
            Pick::Backend(guard) => guard,
        };
        let slot = guard.0.slot;
        let Some(outgoing) = outgoing_request(request, &guard.0.authority, peer.ip()) else {
            return Ok(local_response(
                StatusCode::BAD_REQUEST,
                Some(slot),
                "the request target cannot be forwarded\n",
            ));
        };
        match self.client.request(outgoing).await {
            Ok(response) => {
                if counted {
                    let error = response.status().is_server_error();
                    self.record(slot, error, started.elapsed());
                }
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                parts.headers.insert(
                    HeaderName::from_static(SLOT_HEADER),
                    HeaderValue::from_static(slot.as_str()),
                );
                Ok(Response::from_parts(
                    parts,
                    SwitchBody::backend(body, guard),
                ))
            }
            Err(error) => {
                tracing::debug!(
                    %slot,
                    instance = guard.0.id,
                    addr = %guard.0.addr,
                    %error,
                    "the switch could not deliver a request"
                );
                if counted {
                    self.record(slot, true, started.elapsed());
                }
                Ok(local_response(
                    StatusCode::BAD_GATEWAY,
                    Some(slot),
                    format!("the instance in slot {slot} did not answer\n"),
                ))
            }
        }
    }
}

/// The request to send to `authority`: origin-form target made absolute, hop-by-hop headers
/// removed, the client's address appended to `x-forwarded-for`, the body streamed as is.
fn outgoing_request(
    request: Request<Incoming>,
    authority: &Authority,
    client: IpAddr,
) -> Option<Request<Incoming>> {
    let (mut parts, body) = request.into_parts();
    let mut target = http::uri::Parts::default();
    target.scheme = Some(Scheme::HTTP);
    target.authority = Some(authority.clone());
    target.path_and_query = Some(
        parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/")),
    );
    parts.uri = Uri::from_parts(target).ok()?;
    parts.version = Version::HTTP_11;
    parts.extensions = http::Extensions::new();
    strip_hop_by_hop(&mut parts.headers);
    append_forwarded_for(&mut parts.headers, client);
    Some(Request::from_parts(parts, body))
}

/// Removes the headers that concern one connection only (RFC 9110 §7.6.1): those named in
/// `Connection`, `Connection` itself, `Keep-Alive`, `Transfer-Encoding`, `Upgrade`, `TE`,
/// `Trailer` and every `Proxy-*`.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::TE,
        header::TRAILER,
    ] {
        headers.remove(name);
    }
    let proxy: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("proxy-"))
        .cloned()
        .collect();
    for name in proxy {
        headers.remove(name);
    }
}

/// Appends `client` to `x-forwarded-for`, joining earlier values into one list.
pub(crate) fn append_forwarded_for(headers: &mut HeaderMap, client: IpAddr) {
    const XFF: &str = "x-forwarded-for";
    let mut list: Vec<String> = headers
        .get_all(XFF)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).trim().to_owned())
        .filter(|value| !value.is_empty())
        .collect();
    list.push(client.to_string());
    if let Ok(value) = HeaderValue::try_from(list.join(", ")) {
        headers.insert(HeaderName::from_static(XFF), value);
    }
}

fn local_response(
    status: StatusCode,
    slot: Option<Slot>,
    text: impl Into<String>,
) -> Response<SwitchBody> {
    let mut response = Response::new(SwitchBody::local(Bytes::from(text.into())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Some(slot) = slot {
        headers.insert(
            HeaderName::from_static(SLOT_HEADER),
            HeaderValue::from_static(slot.as_str()),
        );
    }
    response
}

pin_project! {
    /// A response body of the switch: an instance's body streamed through (holding the
    /// request's [`InFlight`] until it ends), or a short local text.
    pub(crate) struct SwitchBody {
        #[pin]
        kind: BodyKind,
    }
}

pin_project! {
    #[project = BodyKindProj]
    enum BodyKind {
        Backend {
            #[pin]
            body: Incoming,
            guard: Option<InFlight>,
        },
        Local {
            bytes: Option<Bytes>,
        },
    }
}

impl SwitchBody {
    fn backend(body: Incoming, guard: InFlight) -> Self {
        let kind = BodyKind::Backend {
            body,
            guard: Some(guard),
        };
        Self { kind }
    }

    fn local(bytes: Bytes) -> Self {
        let kind = BodyKind::Local { bytes: Some(bytes) };
        Self { kind }
    }
}

impl Body for SwitchBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.project().kind.project() {
            BodyKindProj::Backend { body, guard } => {
                let frame = ready!(body.poll_frame(cx));
                if !matches!(frame, Some(Ok(_))) {
                    // The response is over (or broken): the request no longer holds the
                    // instance, even if hyper keeps the body a little longer.
                    guard.take();
                }
                Poll::Ready(frame)
            }
            BodyKindProj::Local { bytes } => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            BodyKind::Backend { body, .. } => body.is_end_stream(),
            BodyKind::Local { bytes } => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            BodyKind::Backend { body, .. } => body.size_hint(),
            BodyKind::Local { bytes } => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}

/// Serves `entry` on `listener` until `stop` fires (or its sender is dropped), then closes
/// the listener, lets open connections finish their requests for up to `grace`, and ends
/// what remains.
pub(crate) async fn serve(
    listener: TcpListener,
    switch: Arc<Switch>,
    entry: Entry,
    stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let make_service = move |peer| {
        let switch = Arc::clone(&switch);
        service_fn(move |request| Arc::clone(&switch).handle(request, entry, peer))
    };
    serve_http1(
        listener,
        make_service,
        stop,
        grace,
        format!("switch {entry:?}"),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_is_exact_over_any_hundred_consecutive_requests() {
        for percent in 0..=100u8 {
            for start in [0u64, 1, 37, 99, 12_345] {
                let canary = (start..start + 100)
                    .filter(|&n| canary_turn(n, percent))
                    .count();
                assert_eq!(
                    canary,
                    usize::from(percent),
                    "percent {percent} from {start}"
                );
            }
            let canary = (0..1000).filter(|&n| canary_turn(n, percent)).count();
            assert_eq!(canary, 10 * usize::from(percent));
        }
    }

    #[test]
    fn a_split_is_spread_not_bunched() {
        // 30%: never more than one canary request in a row, never more than 3 others.
        let turns: Vec<bool> = (0..100).map(|n| canary_turn(n, 30)).collect();
        assert!(turns.windows(2).all(|w| !(w[0] && w[1])));
        assert!(turns.windows(4).all(|w| w.iter().any(|&t| t)));
    }

    #[test]
    fn hop_by_hop_headers_are_removed_and_end_to_end_ones_kept() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        headers.insert(header::TRAILER, HeaderValue::from_static("x-checksum"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(
            header::PROXY_AUTHORIZATION,
            HeaderValue::from_static("Basic x"),
        );
        headers.insert("proxy-connection", HeaderValue::from_static("keep-alive"));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
        headers.insert(header::HOST, HeaderValue::from_static("shop.example"));
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-length", "content-type", "host"]);
    }

    #[test]
    fn forwarded_for_appends_the_client() {
        let mut headers = HeaderMap::new();
        append_forwarded_for(&mut headers, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(headers["x-forwarded-for"], "127.0.0.1");

        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", HeaderValue::from_static("203.0.113.7"));
        headers.append("x-forwarded-for", HeaderValue::from_static("10.0.0.1 "));
        append_forwarded_for(&mut headers, IpAddr::from([127, 0, 0, 2]));
        assert_eq!(headers.get_all("x-forwarded-for").iter().count(), 1);
        assert_eq!(
            headers["x-forwarded-for"],
            "203.0.113.7, 10.0.0.1, 127.0.0.2"
        );
    }

    fn backend(id: u64, slot: Slot) -> Arc<Backend> {
        Backend::new(
            id,
            slot,
            SocketAddr::from(([127, 0, 0, 1], 1000 + id as u16)),
        )
        .unwrap()
    }

    #[test]
    fn tables_round_robin_and_keep_the_sequence_while_the_routing_stays() {
        let blue = [backend(1, Slot::Blue), backend(2, Slot::Blue)];
        let green = [backend(3, Slot::Green)];
        let split = Routing::Split {
            canary: Slot::Green,
            percent: 50,
        };
        let table = RoutingTable::new(
            split,
            [blue.to_vec(), green.to_vec()],
            &RoutingTable::empty(),
        );
        let ids: Vec<u64> = (0..4)
            .map(|_| table.pick_in(Slot::Blue).unwrap().id)
            .collect();
        assert_eq!(ids, [1, 2, 1, 2]);
        let pooled: Vec<u64> = (0..3).map(|_| table.pick_pooled().unwrap().id).collect();
        assert_eq!(pooled, [1, 2, 3]);
        table.sequence.requests.store(7, Ordering::Relaxed);

        let same = RoutingTable::new(split, [blue.to_vec(), Vec::new()], &table);
        assert_eq!(same.sequence.requests.load(Ordering::Relaxed), 7);
        assert!(same.pick_in(Slot::Green).is_none());
        let other = RoutingTable::new(Routing::Pooled, [blue.to_vec(), Vec::new()], &same);
        assert_eq!(other.sequence.requests.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_retired_backend_takes_no_new_request_and_drains() {
        let backend = backend(1, Slot::Blue);
        let first = backend.enter().unwrap();
        assert_eq!(backend.in_flight(), 1);
        backend.retire();
        assert!(backend.enter().is_none());
        assert_eq!(backend.in_flight(), 1);
        let soon = Instant::now() + Duration::from_millis(20);
        assert!(!backend.drained(soon).await);
        let waiter = {
            let backend = Arc::clone(&backend);
            tokio::spawn(async move {
                backend
                    .drained(Instant::now() + Duration::from_secs(10))
                    .await
            })
        };
        tokio::task::yield_now().await;
        drop(first);
        assert!(waiter.await.unwrap());
        assert_eq!(backend.in_flight(), 0);
    }
}
