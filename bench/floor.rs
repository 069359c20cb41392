//! The floor for a proxy built on hyper: an HTTP/1.1 server that forwards every request,
//! untouched, over one upstream HTTP/1.1 connection per client connection, driven in the same
//! task: the structure of authgate's fast path (`proxy/affinity.rs`) and nothing else. No
//! auth, no header work, no routing, no timeouts. `bench/run.sh` measures it next to nginx and
//! authgate, so the table shows how much of authgate's cost is hyper and tokio themselves.
//!
//!     floor LISTEN UPSTREAM        e.g. floor 127.0.0.1:18085 127.0.0.1:18080

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::client::conn::http1 as client;
use hyper::server::conn::http1 as server;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Sender = Arc<Mutex<Option<client::SendRequest<Incoming>>>>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        return Err("usage: floor LISTEN UPSTREAM".into());
    };
    let listen: SocketAddr = listen.parse()?;
    let upstream: SocketAddr = upstream.parse()?;
    // One thread, like the other setups of the benchmark.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(listen).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(async move {
                if let Err(error) = serve(stream, upstream).await {
                    eprintln!("connection: {error}");
                }
            });
        }
    })
}

async fn serve(stream: TcpStream, upstream: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    stream.set_nodelay(true)?;
    let up = TcpStream::connect(upstream).await?;
    up.set_nodelay(true)?;
    let (sender, connection) = client::handshake(TokioIo::new(up)).await?;
    let sender: Sender = Arc::new(Mutex::new(Some(sender)));
    let service =
        service_fn(move |request: Request<Incoming>| forward(Arc::clone(&sender), request));
    let server = server::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(server, connection);
    tokio::select! {
        biased;
        result = &mut connection => result?,
        result = &mut server => result?,
    }
    Ok(())
}

/// A failed upstream request fails the client connection (wrk counts it as an error).
async fn forward(
    sender: Sender,
    mut request: Request<Incoming>,
) -> Result<Response<Incoming>, Box<dyn std::error::Error + Send + Sync>> {
    let mut upstream = sender
        .lock()
        .map_err(|_| "poisoned")?
        .take()
        .ok_or("the upstream connection is busy")?;
    if let Some(path) = request.uri().path_and_query().cloned() {
        *request.uri_mut() = path.into();
    }
    let response = upstream.send_request(request).await?;
    *sender.lock().map_err(|_| "poisoned")? = Some(upstream);
    Ok(response)
}
