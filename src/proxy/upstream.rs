//! The upstreams' pooled HTTP clients, chosen per route: one for plain and public-CA https
//! upstreams, one for h2c, and one per custom CA file (that CA is then the only trust anchor
//! for those routes). The clients themselves are built by `crate::outbound`.

use std::collections::HashMap;
use std::path::PathBuf;

use hyper::body::Incoming;
use hyper::{Request, Response};
use rustls::RootCertStore;

use crate::config::{RouteConfig, UpstreamConfig};
use crate::http::Body;
use crate::outbound::{
    HttpClient, UpstreamSetupError, build, load_roots, native_roots, tls_config,
};

pub struct Upstreams {
    default: HttpClient,
    h2c: HttpClient,
    by_ca: HashMap<PathBuf, HttpClient>,
}

impl Upstreams {
    pub fn new(
        config: &UpstreamConfig,
        routes: &[RouteConfig],
    ) -> Result<Self, UpstreamSetupError> {
        let mut by_ca = HashMap::new();
        for path in routes.iter().filter_map(|r| r.ca_file.as_ref()) {
            if !by_ca.contains_key(path) {
                let roots = load_roots(path)?;
                by_ca.insert(path.clone(), build(config, tls_config(roots), false));
            }
        }
        Ok(Upstreams {
            default: build(config, tls_config(native_roots()), false),
            h2c: build(config, tls_config(RootCertStore::empty()), true),
            by_ca,
        })
    }

    pub async fn send(
        &self,
        route: &RouteConfig,
        request: Request<Body>,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        let client = match &route.ca_file {
            _ if route.h2c => &self.h2c,
            Some(path) => self.by_ca.get(path).unwrap_or(&self.default),
            None => &self.default,
        };
        client.request(request).await
    }
}
