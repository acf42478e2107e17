//! The local platform's one HTTP/1.1 accept loop: the switch's front and preview listeners
//! and every in-process instance serve through it, so they stop the same way.
//!
//! Until `stop` fires it accepts connections (with `TCP_NODELAY` and hyper's header-read
//! timer, the slowloris guard) and serves each on its own task. Then it closes the listener,
//! lets open connections finish their in-flight requests for up to `grace` (idle keep-alive
//! connections close at once), and ends what remains.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::HttpService;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::stop_requested;

/// Serves `listener` with a service made per connection by `make_service(peer)` until
/// `stop`; `what` names the server in logs (`switch front`, `in-process instance`).
pub(crate) async fn serve_http1<F, S, B>(
    listener: TcpListener,
    make_service: F,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
    what: impl fmt::Display + Clone + Send + 'static,
) where
    F: Fn(SocketAddr) -> S,
    S: HttpService<Incoming, ResBody = B> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let connection = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .serve_connection(TokioIo::new(stream), make_service(peer));
                    let connection = graceful.watch(connection);
                    let what = what.clone();
                    connections.spawn(async move {
                        if let Err(error) = connection.await {
                            tracing::debug!(%what, %peer, %error, "connection ended with an error");
                        }
                    });
                }
                Err(error) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(%what, %error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = stop_requested(&mut stop) => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            %what,
            remaining = connections.len(),
            "connections still busy after {grace:?}; closing them"
        );
    }
    connections.shutdown().await;
}
