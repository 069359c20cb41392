//! Config reload while serving: on SIGHUP, when `gateway.toml` changes on disk (debounced),
//! or on `authgate reload`. The whole file is read and validated again; only if it is valid
//! and everything built from it (routes, upstreams, issuers, dialects, the certificate) is
//! ready is it swapped in, atomically: a request sees the old config or the new one, never a
//! mix, and no connection is dropped. Otherwise the old config keeps serving and the log says
//! exactly what is wrong. Settings bound at start (listeners, the store, runtime threads,
//! logging, the refresh interval, the connection limits, `server.proxy_protocol`) are reported
//! as needing a restart. `server.trusted_proxies` applies at once, to requests and to new
//! connections (PROXY headers, the per-address cap's exemption).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::{Base, Live, ServerError, serving};
use crate::config::{Config, ConfigError};

/// Why a reload was rejected; the previous config keeps serving either way.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The file does not validate (names the file and the key).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The file is valid but something built from it is not ready (a certificate, an issuer's keys, an upstream's CA).
    #[error("the new config cannot be served: {0}")]
    Build(#[from] ServerError),
}

/// Re-reads the config file and swaps the result into [`Live`] when all of it is ready. One per
/// gateway; reloads are serialised (`current` is held for the whole reload).
pub struct Reloader {
    path: PathBuf,
    current: tokio::sync::Mutex<Config>,
    base: Base,
    live: Arc<Live>,
    /// Stops the JWKS refreshers of the authenticator in use (replaced on each reload).
    refreshers: Mutex<Option<watch::Sender<bool>>>,
    shutdown: Mutex<Option<watch::Receiver<bool>>>,
    /// The file watch, set up when the gateway binds (so no edit after that is missed) and
    /// consumed once it serves.
    changes: Mutex<Option<FileChanges>>,
}

struct FileChanges {
    _watcher: notify::RecommendedWatcher,
    events: tokio::sync::mpsc::UnboundedReceiver<()>,
}

/// How long a burst of file-system events is collected before one reload.
const DEBOUNCE: Duration = Duration::from_millis(300);

impl Reloader {
    pub(super) fn new(config: Config, base: Base, live: Arc<Live>) -> Self {
        Reloader {
            path: config.source.clone(),
            current: tokio::sync::Mutex::new(config),
            base,
            live,
            refreshers: Mutex::new(None),
            shutdown: Mutex::new(None),
            changes: Mutex::new(None),
        }
    }

    /// Starts watching the config file (events wait until the gateway serves).
    pub(super) fn watch(&self) {
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        if let Some(watcher) = watch_file(&self.path, tx)
            && let Ok(mut slot) = self.changes.lock()
        {
            *slot = Some(FileChanges {
                _watcher: watcher,
                events,
            });
        }
    }

    /// Starts what runs while serving: the current authenticator's key refreshers, SIGHUP,
    /// and the watch on the config file.
    pub(super) fn start(self: &Arc<Self>, shutdown: watch::Receiver<bool>) {
        if let Ok(mut slot) = self.shutdown.lock() {
            *slot = Some(shutdown.clone());
        }
        self.start_refreshers();
        tokio::spawn(Arc::clone(self).on_sighup(shutdown.clone()));
        tokio::spawn(Arc::clone(self).on_file_change(shutdown));
    }

    /// Reads, validates and swaps in the config file. On an error nothing changes.
    pub async fn reload(&self) -> Result<(), ReloadError> {
        let mut current = self.current.lock().await;
        let result = self.try_reload().await;
        self.base.metrics.config_reload(result.is_ok());
        let outcome = match &result {
            Ok(_) => "reloaded".to_owned(),
            Err(error) => format!("refused: {error}"),
        };
        write_outcome(current.server.pid_file.as_deref(), &outcome);
        match result {
            Ok(new) => {
                for setting in needs_restart(&current, &new) {
                    tracing::warn!(
                        setting,
                        "config reloaded, but this setting takes effect only after a restart"
                    );
                }
                *current = new;
                tracing::info!(path = %self.path.display(), "config reloaded");
                Ok(())
            }
            Err(error) => {
                tracing::error!(path = %self.path.display(), %error, "config reload refused; the previous config keeps serving");
                Err(error)
            }
        }
    }

    async fn try_reload(&self) -> Result<Config, ReloadError> {
        let new = crate::config::load(&self.path)?;
        let certificate = super::tls::CertResolver::new(&new.tls).map_err(ServerError::from)?;
        let (authn, proxy) = serving(&new, &self.base).await?;
        // Everything is built: swap. The certificate first, so a client reconnecting because of
        // a route change meets the new one already.
        self.live.certs.replace_with(certificate);
        self.live.authn.store(authn);
        self.live.proxy.store(proxy);
        self.start_refreshers();
        Ok(new)
    }

    /// The current authenticator's JWKS refreshers; the previous ones stop.
    fn start_refreshers(&self) {
        let Ok(shutdown) = self.shutdown.lock().map(|s| s.clone()) else {
            return;
        };
        let Some(mut shutdown) = shutdown else {
            return; // not serving yet: `start` does it
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        if let Ok(mut slot) = self.refreshers.lock()
            && let Some(previous) = slot.replace(stop_tx.clone())
        {
            let _ = previous.send(true);
        }
        self.live.authn.load().spawn_refreshers(&stop_rx);
        // The gateway's shutdown stops this generation too.
        tokio::spawn(async move {
            tokio::select! {
                _ = crate::shutdown::stopped(&mut shutdown) => { let _ = stop_tx.send(true); }
                _ = stop_tx.closed() => {}
            }
        });
    }

    async fn on_sighup(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(hangup) => hangup,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGHUP; reload by editing the config file");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = crate::shutdown::stopped(&mut shutdown) => return,
                received = hangup.recv() => {
                    if received.is_none() {
                        return;
                    }
                    tracing::info!("SIGHUP: reloading the config");
                    let _ = self.reload().await;
                }
            }
        }
    }

    async fn on_file_change(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let Some(FileChanges {
            _watcher,
            events: mut rx,
        }) = self.changes.lock().ok().and_then(|mut slot| slot.take())
        else {
            return;
        };
        loop {
            tokio::select! {
                _ = crate::shutdown::stopped(&mut shutdown) => return,
                changed = rx.recv() => {
                    if changed.is_none() {
                        return;
                    }
                    // Editors write in several steps (truncate, write, rename): one reload
                    // for the burst.
                    tokio::time::sleep(DEBOUNCE).await;
                    while rx.try_recv().is_ok() {}
                    tracing::info!(path = %self.path.display(), "the config file changed: reloading");
                    let _ = self.reload().await;
                }
            }
        }
    }
}

/// Where the outcome of the last reload is written for `authgate reload`: beside the pid file.
pub fn outcome_path(pid_file: &Path) -> PathBuf {
    let mut name = pid_file.as_os_str().to_owned();
    name.push(".reload");
    PathBuf::from(name)
}

/// One line, `<unix millis> <outcome>`, replaced atomically (a reader never sees half).
fn write_outcome(pid_file: Option<&Path>, outcome: &str) {
    let Some(pid_file) = pid_file else { return };
    let path = outcome_path(pid_file);
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let line = format!("{millis} {}\n", outcome.replace('\n', " "));
    let temporary = path.with_extension("reload.tmp");
    let written =
        std::fs::write(&temporary, line).and_then(|()| std::fs::rename(&temporary, &path));
    if let Err(error) = written {
        tracing::warn!(path = %path.display(), %error, "cannot write the reload outcome for `authgate reload`");
    }
}

/// Watches the directory of `path` (editors replace files by renaming, which a watch on the
/// file itself would miss) and reports events that concern the file.
fn watch_file(
    path: &Path,
    tx: tokio::sync::mpsc::UnboundedSender<()>,
) -> Option<notify::RecommendedWatcher> {
    use notify::{EventKind, RecursiveMode, Watcher as _};
    // Resolved once: a bare `gateway.toml` (the README's `serve`) has an empty parent, and
    // the directory to watch is then the working directory.
    let path = match std::path::absolute(path) {
        Ok(path) => path,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot resolve the config file's path; edits are not watched, reload with SIGHUP or `authgate reload`");
            return None;
        }
    };
    let (Some(name), Some(dir)) = (path.file_name(), path.parent()) else {
        tracing::warn!(path = %path.display(), "the config path names no file in a directory; edits are not watched, reload with SIGHUP or `authgate reload`");
        return None;
    };
    let (name, dir) = (name.to_owned(), dir.to_owned());
    let handler = move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let relevant = matches!(
            event.kind,
            EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
        ) && event.paths.iter().any(|p| p.file_name() == Some(&name));
        if relevant {
            let _ = tx.send(());
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::warn!(%error, "cannot watch the config file; reload with SIGHUP or `authgate reload`");
            return None;
        }
    };
    if let Err(error) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
        tracing::warn!(dir = %dir.display(), %error, "cannot watch the config directory; reload with SIGHUP or `authgate reload`");
        return None;
    }
    tracing::info!(path = %path.display(), "watching the config file: an edit reloads it");
    Some(watcher)
}

/// Settings that changed but are bound at start.
fn needs_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut check = |name: &'static str, differs: bool| {
        if differs {
            changed.push(name);
        }
    };
    check("server.listen", old.server.listen != new.server.listen);
    check(
        "server.plain_listen",
        old.server.plain_listen != new.server.plain_listen,
    );
    check(
        "admin.listen",
        old.admin.as_ref().map(|a| a.listen) != new.admin.as_ref().map(|a| a.listen),
    );
    check(
        "server.worker_threads",
        old.server.worker_threads != new.server.worker_threads,
    );
    check(
        "server.max_connections",
        old.server.max_connections != new.server.max_connections,
    );
    check(
        "server.max_connections_per_ip",
        old.server.max_connections_per_ip != new.server.max_connections_per_ip,
    );
    check(
        "server.proxy_protocol",
        old.server.proxy_protocol != new.server.proxy_protocol,
    );
    check(
        "server timeouts",
        (
            old.server.tls_handshake_timeout,
            old.server.header_read_timeout,
            old.server.idle_timeout,
            old.server.shutdown_grace,
        ) != (
            new.server.tls_handshake_timeout,
            new.server.header_read_timeout,
            new.server.idle_timeout,
            new.server.shutdown_grace,
        ),
    );
    check(
        "store",
        format!("{:?}", old.store) != format!("{:?}", new.store),
    );
    check(
        "log.level / log.format",
        format!("{:?}{:?}", old.log.level, old.log.format)
            != format!("{:?}{:?}", new.log.level, new.log.format),
    );
    check("auth.issuer", old.auth.issuer != new.auth.issuer);
    check(
        "auth.refresh_interval",
        old.auth.refresh_interval != new.auth.refresh_interval,
    );
    check(
        "server.pid_file",
        old.server.pid_file != new.server.pid_file,
    );
    changed
}
