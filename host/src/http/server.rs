//! The server's threads. One task accepts connections and hands them round-robin to a thread
//! per CPU, each running a runtime of its own on that one thread, which serves its connections
//! until they close (as nginx's worker processes serve theirs). A request is read, answered and
//! written on one thread: no other thread is woken for it, and no task moves between threads.
//! What a handler spawns (a background fill, a stream's clean-up) and its blocking reads run on
//! that thread's runtime and its blocking pool; the process's other work (the cluster's loops,
//! reloads, signals) stays on the main runtime.
//!
//! At shutdown the listener closes, every connection finishes the request it is answering and
//! closes, and [`serve`] returns once all have.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::thread::JoinHandle;

use axum::body::Body;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::Front;
use super::connection::Connection;

/// Serves `front` on the connections `listener` accepts until `shutdown` completes, then lets
/// the connections' in-flight requests finish.
pub(crate) async fn serve(mut listener: TcpListener, front: Front, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let stop = CancellationToken::new();
    let mut workers = Vec::with_capacity(threads);
    for index in 0..threads {
        workers.push(Worker::start(index, front.clone(), stop.clone())?);
    }
    let accepting = async {
        let mut next = 0;
        loop {
            // Errors (out of file descriptors, a connection reset before it was taken) are
            // retried there.
            let (stream, _) = axum::serve::Listener::accept(&mut listener).await;
            let _ = stream.set_nodelay(true);
            let Ok(stream) = stream.into_std() else { continue };
            let _ = workers[next].connections.send(stream);
            next = (next + 1) % workers.len();
        }
    };
    tokio::select! {
        () = accepting => {}
        () = shutdown => {}
    }
    drop(listener);
    stop.cancel();
    let threads: Vec<JoinHandle<()>> = workers.into_iter().map(|w| w.thread).collect();
    tokio::task::spawn_blocking(move || {
        for thread in threads {
            let _ = thread.join();
        }
    })
    .await
    .map_err(io::Error::other)
}

/// A serving thread: the connections handed to it, and the thread.
struct Worker {
    connections: mpsc::UnboundedSender<std::net::TcpStream>,
    thread: JoinHandle<()>,
}

impl Worker {
    fn start(index: usize, front: Front, stop: CancellationToken) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (connections, mut handed) = mpsc::unbounded_channel::<std::net::TcpStream>();
        let thread = std::thread::Builder::new().name(format!("storehost-http-{index}")).spawn(move || {
            runtime.block_on(async move {
                // Each connection holds a receiver; the thread ends when the last is gone.
                let (open, _) = watch::channel(());
                loop {
                    let stream = tokio::select! {
                        biased;
                        () = stop.cancelled() => break,
                        stream = handed.recv() => match stream {
                            Some(stream) => stream,
                            None => break,
                        },
                    };
                    let Ok(stream) = TcpStream::from_std(stream) else { continue };
                    tokio::spawn(connection(stream, front.clone(), stop.clone(), open.subscribe()));
                }
                open.closed().await;
            });
        })?;
        Ok(Self { connections, thread })
    }
}

/// Serves one connection's requests until it closes, or until `stop`: then the request being
/// answered is finished and the connection closed.
async fn connection(stream: TcpStream, front: Front, stop: CancellationToken, _open: watch::Receiver<()>) {
    let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        let front = front.clone();
        async move { Ok::<_, Infallible>(front.respond(request.map(Body::new)).await) }
    });
    let io = hyper_util::rt::TokioIo::new(Connection::new(stream));
    let serving = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    tokio::pin!(serving);
    tokio::select! {
        _ = serving.as_mut() => return,
        () = stop.cancelled() => serving.as_mut().graceful_shutdown(),
    }
    let _ = serving.await;
}
