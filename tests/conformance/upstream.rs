//! The upstream behind every target: what the suite's reference applications do (GET → `OK`,
//! POST → the request body echoed back, so a case can check the body arrived whole), plus
//! `OPTIONS` → 204 with `Allow` and any other method → 405 with `Allow`, as a well-behaved
//! application answers. HTTP/1.1 only, on 127.0.0.1.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const ALLOW: &str = "GET, HEAD, POST, OPTIONS";

pub struct Echo {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Echo {
    pub async fn start() -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|req| async move {
                        Ok::<_, Infallible>(answer(req).await)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        Echo { addr, task }
    }
}

async fn answer(req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return reply(StatusCode::BAD_REQUEST, Bytes::from_static(b"bad body"));
        }
    };
    match method {
        Method::GET | Method::HEAD => reply(StatusCode::OK, Bytes::from_static(b"OK")),
        Method::POST => reply(StatusCode::OK, body),
        Method::OPTIONS => {
            let mut r = Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(Full::new(Bytes::new()))
                .unwrap();
            r.headers_mut().insert("allow", ALLOW.parse().unwrap());
            r
        }
        _ => {
            let mut r = reply(
                StatusCode::METHOD_NOT_ALLOWED,
                Bytes::from_static(b"method not allowed"),
            );
            r.headers_mut().insert("allow", ALLOW.parse().unwrap());
            r
        }
    }
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(Full::new(body))
        .unwrap()
}
