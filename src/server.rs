//! Listeners and lifecycle: binds the HTTPS listener (and the optional plain-HTTP and admin
//! listeners), accepts connections up to `server.max_connections` (and
//! `server.max_connections_per_ip`, `server/admission.rs`), and on shutdown stops accepting
//! and lets in-flight requests finish up to `server.shutdown_grace`.

pub mod admin;
mod admission;
mod conn;
pub mod limits;
pub mod proxy_protocol;
pub mod reload;
mod screen;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use crate::authn::jwks::JwksError;
use crate::authn::keyset::KeySet;
use crate::authn::{Authenticator, IssuerPolicy, OpaqueTokens, Sessions, Verifier};
use crate::config::Config;
use crate::dialects::Endpoints;
use crate::grant::{Engine, EngineConfig, Throttle, ThrottlePolicy};
use crate::keyring::{Keyring, KeyringError};
use crate::metrics::Metrics;
use crate::outbound::UpstreamSetupError;
use crate::proxy::{ConnInfo, Proxy};
use crate::store::{KeyAlg, Store, StoreError};
use tls::{CertResolver, TlsError};

/// Why the gateway could not start (or a reload could not build what it needs). Each names the
/// part that failed and keeps its source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The certificate or key could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// An upstream client could not be built (a route's `ca_file`, say).
    #[error(transparent)]
    Upstream(#[from] UpstreamSetupError),
    /// An external issuer's key source could not be set up.
    #[error(transparent)]
    Jwks(#[from] JwksError),
    /// The store could not be opened, migrated or read at start.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Our signing keys could not be bootstrapped or loaded.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// A listener's address could not be bound (in use, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address from the config.
        addr: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
}

/// The grant engine behind every dialect. Its verifier (token-exchange subject tokens,
/// introspection, revocation) trusts only our own issuer: an external issuer's token is never
/// a credential at our token endpoints.
fn grant_engine(
    config: &Config,
    store: &Store,
    keyring: &Arc<Keyring>,
    keys: Arc<KeySet>,
) -> Engine {
    let verifier = Verifier::new(
        keys,
        vec![IssuerPolicy::own(&config.auth)],
        config.auth.leeway.as_secs(),
        config.auth.token_cache_entries.min(10_000),
        keyring.revocations(),
    );
    let tokens = &config.tokens;
    let engine_config = EngineConfig {
        issuer: config.auth.issuer.clone(),
        access_ttl: tokens.access_ttl,
        refresh_ttl: tokens.refresh_ttl,
        exchange_ttl: tokens.exchange_ttl,
        code_ttl: tokens.code_ttl,
        provider_sessions: (config.login.providers.iter())
            .map(|p| (p.name.clone(), p.max_session))
            .collect(),
    };
    Engine::new(
        store.clone(),
        Arc::clone(keyring),
        Arc::new(verifier),
        Arc::new(Throttle::new(ThrottlePolicy::default())),
        engine_config,
    )
}

/// A gateway with its listeners bound, ready to [`run`](Gateway::run).
pub struct Gateway {
    config: Config,
    acceptor: TlsAcceptor,
    base: Base,
    live: Arc<Live>,
    reloader: Arc<reload::Reloader>,
    https: (TcpListener, SocketAddr),
    plain: Option<(TcpListener, SocketAddr)>,
    admin: Option<(TcpListener, SocketAddr)>,
}

/// What a config reload replaces, read afresh by every request, handshake and scrape.
pub struct Live {
    /// The request pipeline (routes, dialects, upstreams) of the current config.
    pub proxy: ArcSwap<Proxy>,
    /// Token verification (our keys and the external issuers) of the current config.
    pub authn: ArcSwap<Authenticator>,
    /// The certificate the next TLS handshake presents (swapped on reload).
    pub certs: Arc<CertResolver>,
}

/// What lives as long as the process, whatever the config says later.
#[derive(Clone)]
pub struct Base {
    /// The state store, opened and migrated once.
    pub store: Store,
    /// Our signing keys and the revocation snapshot; refreshed in the background.
    pub keyring: Arc<Keyring>,
    /// The verification keys published at the JWKS path, shared with every verifier.
    pub keys: Arc<KeySet>,
    /// Counters and histograms; kept across reloads so series never reset.
    pub metrics: Arc<Metrics>,
    /// Browser sessions as the proxy remembers them, shared with the login pages (a logout
    /// forgets at once); kept across reloads.
    pub sessions: Arc<Sessions>,
}

/// What every accepted connection needs.
struct Shared {
    live: Arc<Live>,
    builder: auto::Builder<TokioExecutor>,
    slots: Arc<Semaphore>,
    /// `server.max_connections_per_ip`; `None`: no cap.
    per_address: Option<Arc<limits::PerAddress>>,
    proxy_protocol: bool,
    /// Also bounds reading the PROXY header.
    handshake_timeout: Duration,
    /// For the first request head; hyper's own covers the later ones.
    header_read_timeout: Duration,
    /// The longest HTTP/1 request head the wire check holds (hyper's buffer).
    head_limit: usize,
    idle_timeout: Duration,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
}

/// Everything that serves requests, built from `config` (the store opened and migrated, keys
/// bootstrapped and loaded, external issuers' keys fetched), without binding a socket:
/// `serve` runs it behind its listeners, `explain` asks it about one request.
pub struct Assembled {
    /// The process-lifetime parts (store, keys, metrics).
    pub base: Base,
    /// Token verification built from the config.
    pub authn: Arc<Authenticator>,
    /// The request pipeline built from the config.
    pub proxy: Arc<Proxy>,
}

/// Opens the store (and the legacy users table, probed in the background: it may be down at
/// start), makes sure an ES256 signing key is active, and builds what serves requests.
/// Binds no socket.
pub async fn assemble(config: &Config) -> Result<Assembled, ServerError> {
    let store = Store::open(&config.store)
        .await?
        .with_legacy_users(config.legacy_users.as_ref())?;
    if let Some(legacy) = &config.legacy_users {
        tracing::info!(url = %legacy.backend, "legacy users table configured");
        let store = store.clone();
        tokio::spawn(async move {
            if let Err(error) = store.probe_legacy_users().await {
                tracing::warn!(%error, "the legacy users table is not reachable (yet)");
            }
        });
    }
    let keys = Arc::new(KeySet::default());
    let keyring = Arc::new(Keyring::new(
        store.clone(),
        &config.auth.issuer,
        Arc::clone(&keys),
    ));
    keyring.ensure_active(KeyAlg::Es256).await?;
    let sessions = Arc::new(Sessions::new(
        store.clone(),
        &config.auth.issuer,
        keyring.revocations(),
    ));
    let base = Base {
        store,
        keyring,
        keys,
        metrics: Metrics::new(),
        sessions,
    };
    let (authn, proxy) = serving(config, &base).await?;
    Ok(Assembled { base, authn, proxy })
}

/// The parts a config reload rebuilds: authentication (issuers), the grant engine and the
/// dialects, the route table and upstreams. The store, keys and metrics carry over.
pub(crate) async fn serving(
    config: &Config,
    base: &Base,
) -> Result<(Arc<Authenticator>, Arc<Proxy>), ServerError> {
    let Base {
        store,
        keyring,
        keys,
        metrics,
        sessions,
    } = base;
    keyring.set_max_staleness(config.auth.max_staleness);
    if let Some(passport) = &config.dialects.passport {
        // Passport tokens are RS256; a 4096-bit key takes a few seconds, once.
        keyring
            .ensure_active_sized(KeyAlg::Rs256, Some(passport.rsa_bits))
            .await?;
    }
    if let Some(openid) = config
        .dialects
        .oauth2
        .as_ref()
        .and_then(|o| o.openid.as_ref())
    {
        // OpenID Connect requires RS256 ID tokens (Core §15.1); Passport's key serves both.
        keyring
            .ensure_active_sized(KeyAlg::Rs256, Some(openid.rsa_bits))
            .await?;
    }
    keyring.refresh().await?;
    // Opaque reference tokens (the `mobile` dialect's) are accepted whatever the dialect
    // settings now say: tokens issued under an earlier config stay valid until they expire.
    let opaque = Arc::new(OpaqueTokens::new(
        store.clone(),
        &config.auth.issuer,
        keyring.revocations(),
        config.auth.token_cache_entries,
    ));
    let authn = Arc::new(
        Authenticator::new(config, Arc::clone(keys), keyring.revocations())?.with_opaque(opaque),
    );
    authn.load_external_keys().await;
    let engine = Arc::new(
        grant_engine(config, store, keyring, Arc::clone(keys))
            .with_metrics(Arc::clone(metrics))
            .with_sessions(Arc::clone(sessions)),
    );
    let endpoints = Arc::new(Endpoints::new(config, engine, Arc::clone(keyring))?);
    let proxy = Arc::new(
        Proxy::new(
            config,
            Arc::clone(&authn),
            Arc::clone(keyring),
            Arc::clone(sessions),
        )?
        .with_endpoints(endpoints)
        .with_metrics(Arc::clone(metrics)),
    );
    Ok((authn, proxy))
}

impl Gateway {
    /// Builds everything (`assemble`), loads the certificate and binds every configured listener;
    /// nothing is accepted until [`run`](Gateway::run). Starts watching the config file.
    pub async fn bind(config: Config) -> Result<Self, ServerError> {
        crate::install_crypto_provider();
        let certs = Arc::new(CertResolver::new(&config.tls)?);
        let acceptor = tls::acceptor(Arc::clone(&certs))?;
        let Assembled { base, authn, proxy } = assemble(&config).await?;
        let live = Arc::new(Live {
            proxy: ArcSwap::new(proxy),
            authn: ArcSwap::new(authn),
            certs,
        });
        let reloader = Arc::new(reload::Reloader::new(
            config.clone(),
            base.clone(),
            Arc::clone(&live),
        ));
        reloader.watch();
        let https = listen(config.server.listen).await?;
        let plain = match config.server.plain_listen {
            Some(addr) => Some(listen(addr).await?),
            None => None,
        };
        let admin = match &config.admin {
            Some(admin) => Some(listen(admin.listen).await?),
            None => None,
        };
        Ok(Gateway {
            config,
            acceptor,
            base,
            live,
            reloader,
            https,
            plain,
            admin,
        })
    }

    /// Reloads the config on demand (what SIGHUP, a change of the file and `authgate reload`
    /// trigger while serving).
    pub fn reloader(&self) -> Arc<reload::Reloader> {
        Arc::clone(&self.reloader)
    }

    /// The bound HTTPS address (the real port when the config said `:0`).
    pub fn https_addr(&self) -> SocketAddr {
        self.https.1
    }

    /// The bound plain-HTTP address, if `server.plain_listen` is set.
    pub fn plain_addr(&self) -> Option<SocketAddr> {
        self.plain.as_ref().map(|(_, addr)| *addr)
    }

    /// The bound admin address, if `[admin]` is set.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|(_, addr)| *addr)
    }

    /// Serves until `shutdown` resolves, then drains.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let server = &self.config.server;
        let max_connections = u32::try_from(server.max_connections).unwrap_or(u32::MAX);
        let (stop_tx, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            live: Arc::clone(&self.live),
            builder: conn::http_builder(server),
            slots: Arc::new(Semaphore::new(max_connections as usize)),
            per_address: server.max_connections_per_ip.map(limits::PerAddress::new),
            proxy_protocol: server.proxy_protocol,
            handshake_timeout: server.tls_handshake_timeout,
            header_read_timeout: server.header_read_timeout,
            head_limit: conn::head_buffer(server),
            idle_timeout: server.idle_timeout,
            metrics: Arc::clone(&self.base.metrics),
            shutdown: stop_rx.clone(),
        });
        self.reloader.start(stop_rx.clone());
        let keyring = &self.base.keyring;
        let store = self.base.store.clone();
        let maintenance = tokio::spawn(store.clone().maintain());
        tokio::spawn(
            Arc::clone(keyring).run_refresh(self.config.auth.refresh_interval, stop_rx.clone()),
        );
        tokio::spawn(Arc::clone(keyring).run_listener(stop_rx.clone()));
        let _pid_file = PidFile::write(self.config.server.pid_file.as_deref());
        let ready = Arc::new(AtomicBool::new(true));
        let (admin_stop_tx, admin_stop_rx) = watch::channel(false);
        if let Some((listener, addr)) = self.admin {
            tracing::info!(%addr, "admin listener ready (/healthz, /readyz, /metrics)");
            let state = admin::AdminState {
                ready: Arc::clone(&ready),
                live: Arc::clone(&self.live),
                keyring: Arc::clone(&self.base.keyring),
                metrics: Arc::clone(&self.base.metrics),
                connections: Some((Arc::clone(&shared.slots), max_connections as usize)),
            };
            tokio::spawn(admin::serve(listener, Arc::new(state), admin_stop_rx));
        }
        let mut loops = vec![];
        tracing::info!(addr = %self.https.1, "HTTPS listener ready");
        loops.push(tokio::spawn(accept_loop(
            self.https.0,
            Some(self.acceptor),
            Arc::clone(&shared),
        )));
        if let Some((listener, addr)) = self.plain {
            tracing::info!(%addr, "plain-HTTP listener ready (for use behind a TLS-terminating load balancer)");
            loops.push(tokio::spawn(accept_loop(
                listener,
                None,
                Arc::clone(&shared),
            )));
        }

        shutdown.await;
        let grace = server.shutdown_grace;
        tracing::info!(
            ?grace,
            "shutting down: no new connections, draining in-flight requests"
        );
        ready.store(false, Ordering::Relaxed);
        let _ = stop_tx.send(true);
        for accept in loops {
            let _ = accept.await;
        }
        drain(&shared.slots, max_connections, grace).await;
        let _ = admin_stop_tx.send(true);
        maintenance.abort();
        store.close().await;
        Ok(())
    }
}

/// Waits for every connection slot to come back (all connections closed), up to `grace`; the
/// connections still open after that are dropped with the runtime.
async fn drain(slots: &Semaphore, max_connections: u32, grace: Duration) {
    match tokio::time::timeout(grace, slots.acquire_many(max_connections)).await {
        Ok(_) => tracing::info!("all connections drained"),
        Err(_) => {
            let open = max_connections as usize - slots.available_permits();
            tracing::warn!(open, "grace period over; closing the remaining connections");
        }
    }
}

async fn listen(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), ServerError> {
    let bind_error = |source| ServerError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}

async fn accept_loop(listener: TcpListener, acceptor: Option<TlsAcceptor>, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        // Take a connection slot before accepting: at the limit, new clients wait in the
        // kernel's backlog instead of being accepted and starved.
        let permit = tokio::select! {
            biased;
            _ = crate::shutdown::stopped(&mut shutdown) => return,
            permit = Arc::clone(&shared.slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let (stream, peer) = tokio::select! {
            biased;
            _ = crate::shutdown::stopped(&mut shutdown) => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        // A peer that is not a trusted proxy is its own client: counted against its address
        // now, and closed at once (dropped) over the cap, before any task or TLS work.
        let trusted = admission::is_trusted(&shared, peer.ip());
        let address_slot = if trusted {
            None
        } else {
            match admission::count(&shared, peer.ip()) {
                Ok(slot) => slot,
                Err(_) => continue,
            }
        };
        let accepted = Accepted {
            stream,
            peer,
            trusted,
            address_slot,
            _permit: permit,
        };
        let shared = Arc::clone(&shared);
        // Two task types: a task is as large as its future's largest state, and a plain
        // connection should not carry the room for a TLS handshake while it idles.
        match &acceptor {
            None => tokio::spawn(plain_connection(accepted, shared)),
            Some(acceptor) => tokio::spawn(tls_connection(accepted, acceptor.clone(), shared)),
        };
    }
}

/// A connection as the accept loop hands it to its task.
struct Accepted {
    stream: TcpStream,
    peer: SocketAddr,
    /// The socket peer is in `server.trusted_proxies`.
    trusted: bool,
    address_slot: Option<limits::AddressSlot>,
    /// The connection's place in `server.max_connections`, held until the task ends.
    _permit: OwnedSemaphorePermit,
}

impl Accepted {
    /// Admission (the PROXY header from trusted proxies, the per-address cap); `None`: refused.
    /// The [`Held`] it returns must live as long as the connection is served.
    async fn admit(self, shared: &Shared, tls: bool) -> Option<(TcpStream, ConnInfo, Held)> {
        let Accepted {
            mut stream,
            peer,
            trusted,
            address_slot,
            _permit,
        } = self;
        let admitted = admission::admit(shared, &mut stream, peer, trusted, address_slot).await?;
        let info = ConnInfo {
            peer: admitted.peer,
            tls,
        };
        let held = Held {
            _admitted: admitted,
            _permit,
        };
        Some((stream, info, held))
    }
}

/// What a connection holds while it is served: its per-address slot and its place in
/// `server.max_connections`, both given back when it is dropped.
struct Held {
    _admitted: admission::Admitted,
    _permit: OwnedSemaphorePermit,
}

async fn plain_connection(accepted: Accepted, shared: Arc<Shared>) {
    let Some((stream, info, _held)) = accepted.admit(&shared, false).await else {
        return;
    };
    conn::serve(stream, info, &shared).await;
}

async fn tls_connection(accepted: Accepted, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    let Some((stream, info, _held)) = accepted.admit(&shared, true).await else {
        return;
    };
    match tokio::time::timeout(shared.handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => conn::serve(tls, info, &shared).await,
        Ok(Err(error)) => tracing::debug!(peer = %info.peer, %error, "TLS handshake failed"),
        Err(_) => {
            tracing::debug!(peer = %info.peer, "TLS handshake timed out");
            shared
                .metrics
                .connection_timed_out(crate::metrics::ConnPhase::TlsHandshake);
        }
    }
}

/// `server.pid_file`: written at start (for `authgate reload`), removed at exit.
struct PidFile(Option<std::path::PathBuf>);

impl PidFile {
    fn write(path: Option<&std::path::Path>) -> PidFile {
        let Some(path) = path else {
            return PidFile(None);
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        match std::fs::write(path, format!("{}\n", std::process::id())) {
            Ok(()) => PidFile(Some(path.to_path_buf())),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "cannot write the pid file; `authgate reload` will not find this process");
                PidFile(None)
            }
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}
