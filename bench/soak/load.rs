//! The soak's load: a steady mix of bearer requests (own JWTs, opaque tokens, the `app`
//! dialect's header), streamed uploads, password / refresh / revocation / introspection /
//! exchange at the `oauth2` endpoint and logins at the three seed dialects, spread over both
//! instances. Every answer is classified against the chaos going on at that moment.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::cluster::{MOBILE_CLIENT, PASSPORT_SECRET, PASSWORD, WEB_SECRET};

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(5))
        .build_http()
}

/// The status of a GET, if anything answered within 2 s.
pub async fn get_status(url: &str) -> Option<u16> {
    let request = Request::get(url).body(Full::new(Bytes::new())).ok()?;
    let response = tokio::time::timeout(Duration::from_secs(2), client().request(request))
        .await
        .ok()?
        .ok()?;
    Some(response.status().as_u16())
}

/// What an operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A bearer request with one of our JWTs to an upstream route.
    Bearer,
    /// A bearer request with an opaque (mobile dialect) token.
    Opaque,
    /// The `app` dialect's `access-token` header.
    AppHeader,
    /// A 256 KiB upload, streamed to the upstream.
    Upload,
    Password,
    Refresh,
    Revoke,
    Introspect,
    Exchange,
    Mobile,
    Passport,
    App,
}

impl Op {
    /// Reaches the upstream (a killed upstream makes it 502/503/504).
    pub fn upstream(self) -> bool {
        matches!(self, Op::Bearer | Op::Opaque | Op::AppHeader | Op::Upload)
    }

    /// Needs the store (token endpoints, opaque tokens).
    pub fn store(self) -> bool {
        !matches!(self, Op::Bearer | Op::AppHeader | Op::Upload)
    }

    const MIX: [(Op, u32); 12] = [
        (Op::Bearer, 50),
        (Op::Opaque, 8),
        (Op::AppHeader, 6),
        (Op::Upload, 3),
        (Op::Password, 8),
        (Op::Refresh, 8),
        (Op::Revoke, 2),
        (Op::Introspect, 4),
        (Op::Exchange, 2),
        (Op::Mobile, 3),
        (Op::Passport, 3),
        (Op::App, 3),
    ];

    pub fn pick(roll: u32) -> Op {
        let total: u32 = Op::MIX.iter().map(|(_, w)| w).sum();
        let mut roll = roll % total;
        for (op, weight) in Op::MIX {
            if roll < weight {
                return op;
            }
            roll -= weight;
        }
        Op::Bearer
    }
}

/// How an answer counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// What the operation should get.
    Ok,
    /// An error the chaos of that moment makes correct (a killed upstream's 502, a cut
    /// store's 503, a killed instance's refused connection).
    Excused,
    /// Anything else: a 500, a 5xx outside its window, an `invalid_grant` for a good refresh
    /// token, a good token refused.
    Violation,
}

/// One answered (or failed) operation.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub at: Duration,
    pub op: Op,
    pub instance: usize,
    pub status: Option<u16>,
    pub latency: Duration,
    pub class: Class,
    pub detail: String,
}

/// The chaos going on, as the load must excuse it.
#[derive(Debug, Default, Clone, Copy)]
pub struct Excuses {
    pub upstream_down: bool,
    pub store_down: bool,
    /// The instance is down (killed, restarting, being replaced).
    pub instance_down: [bool; 2],
}

/// Tokens the load holds, and what it must find again at the end.
#[derive(Default)]
pub struct Pools {
    pub access: VecDeque<String>,
    pub opaque: VecDeque<String>,
    pub app: VecDeque<String>,
    pub admin: Option<String>,
    /// Refresh tokens of the `web` client, not used yet.
    pub refresh: Vec<String>,
    /// Refresh tokens revoked (200 from the revocation endpoint).
    pub revoked: Vec<String>,
    /// Refresh tokens whose refresh got no answer: rotated or not, nobody knows; set aside.
    pub uncertain: usize,
}

const POOL: usize = 200;

fn push_bounded(pool: &mut VecDeque<String>, token: String) {
    if pool.len() >= POOL {
        pool.pop_front();
    }
    pool.push_back(token);
}

/// The load's shared state.
pub struct Load {
    pub instances: [SocketAddr; 2],
    pub started: Instant,
    pub pools: Mutex<Pools>,
    pub outcomes: Mutex<Vec<Outcome>>,
    pub excuses: Mutex<Excuses>,
    /// Excuses end a few seconds after the chaos does (recovery).
    pub recent: Mutex<Vec<(Instant, Excuses)>>,
    client: HttpClient,
}

/// A request and how to read its answer.
struct Call {
    request: Request<Full<Bytes>>,
    /// The refresh token this call uses up (to put back on 503, set aside on no answer).
    refresh: Option<String>,
}

impl Load {
    pub fn new(instances: [SocketAddr; 2]) -> Load {
        Load {
            instances,
            started: Instant::now(),
            pools: Mutex::new(Pools::default()),
            outcomes: Mutex::new(Vec::new()),
            excuses: Mutex::new(Excuses::default()),
            recent: Mutex::new(Vec::new()),
            client: client(),
        }
    }

    /// The chaos excused now or within the last 5 s.
    fn excused(&self) -> Excuses {
        let now = *self.excuses.lock().unwrap();
        let mut recent = self.recent.lock().unwrap();
        recent.retain(|(at, _)| at.elapsed() < Duration::from_secs(5));
        recent.push((Instant::now(), now));
        recent.iter().fold(Excuses::default(), |mut all, (_, e)| {
            all.upstream_down |= e.upstream_down;
            all.store_down |= e.store_down;
            all.instance_down[0] |= e.instance_down[0];
            all.instance_down[1] |= e.instance_down[1];
            all
        })
    }

    /// Runs one operation at instance `which` and records its outcome.
    pub async fn run(&self, op: Op, which: usize) {
        let base = format!("http://{}", self.instances[which]);
        let Some(call) = self.call(op, &base) else {
            return; // no token to use yet
        };
        let started = Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(15), async {
            let response = self.client.request(call.request).await?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((status, body))
        })
        .await;
        let latency = started.elapsed();
        let excused = self.excused();
        let (status, class, detail) = match answer {
            Ok(Ok((status, body))) => {
                let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let (class, detail) = self.judge(op, status, &json, call.refresh, excused, which);
                (Some(status), class, detail)
            }
            Ok(Err(error)) => {
                if let Some(refresh) = call.refresh {
                    drop(refresh);
                    self.pools.lock().unwrap().uncertain += 1;
                }
                let class = if excused.instance_down[which] {
                    Class::Excused
                } else {
                    Class::Violation
                };
                (None, class, format!("no answer: {error}"))
            }
            Err(_) => {
                if call.refresh.is_some() {
                    self.pools.lock().unwrap().uncertain += 1;
                }
                (None, Class::Violation, "no answer within 15 s".to_owned())
            }
        };
        self.outcomes.lock().unwrap().push(Outcome {
            at: self.started.elapsed(),
            op,
            instance: which,
            status,
            latency,
            class,
            detail,
        });
    }

    fn call(&self, op: Op, base: &str) -> Option<Call> {
        let mut pools = self.pools.lock().unwrap();
        let pick = |pool: &VecDeque<String>| pool.back().cloned();
        let bearer = |path: &str, header: &str, value: String| Call {
            request: Request::get(format!("{base}{path}"))
                .header(header, value)
                .body(Full::new(Bytes::new()))
                .unwrap(),
            refresh: None,
        };
        let web = base64::engine::general_purpose::STANDARD.encode(format!("web:{WEB_SECRET}"));
        let form = |path: &str, basic: Option<&str>, pairs: &[(&str, &str)]| {
            let mut body = form_urlencoded::Serializer::new(String::new());
            for (k, v) in pairs {
                body.append_pair(k, v);
            }
            let mut request = Request::post(format!("{base}{path}"))
                .header("content-type", "application/x-www-form-urlencoded");
            if let Some(basic) = basic {
                request = request.header("authorization", format!("Basic {basic}"));
            }
            request.body(Full::new(Bytes::from(body.finish()))).unwrap()
        };
        let password = [
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ];
        Some(match op {
            Op::Bearer => {
                let path = if pools.access.len().is_multiple_of(2) {
                    "/api/items"
                } else {
                    "/orders/7"
                };
                bearer(
                    path,
                    "authorization",
                    format!("Bearer {}", pick(&pools.access)?),
                )
            }
            Op::Opaque => bearer(
                "/api/me",
                "authorization",
                format!("Bearer {}", pick(&pools.opaque)?),
            ),
            Op::AppHeader => bearer("/api/app", "access-token", pick(&pools.app)?),
            Op::Upload => {
                let token = pick(&pools.access)?;
                Call {
                    request: Request::post(format!("{base}/upload"))
                        .header("authorization", format!("Bearer {token}"))
                        .body(Full::new(Bytes::from(vec![b'x'; 256 << 10])))
                        .unwrap(),
                    refresh: None,
                }
            }
            Op::Password => Call {
                request: form("/oauth2/token", Some(&web), &password),
                refresh: None,
            },
            Op::Refresh => {
                let refresh = pools.refresh.pop()?;
                Call {
                    request: form(
                        "/oauth2/token",
                        Some(&web),
                        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
                    ),
                    refresh: Some(refresh),
                }
            }
            Op::Revoke => {
                if pools.refresh.len() < 4 {
                    return None;
                }
                let refresh = pools.refresh.remove(0);
                let request = form("/oauth2/revoke", Some(&web), &[("token", &refresh)]);
                // Counted as revoked only on 200 (`judge`); on anything else it is set aside.
                Call {
                    request,
                    refresh: Some(refresh),
                }
            }
            Op::Introspect => {
                let token = pick(&pools.access)?;
                Call {
                    request: form("/oauth2/introspect", Some(&web), &[("token", &token)]),
                    refresh: None,
                }
            }
            Op::Exchange => {
                let admin = pools.admin.clone()?;
                Call {
                    request: form(
                        "/oauth2/token",
                        Some(&web),
                        &[
                            (
                                "grant_type",
                                "urn:ietf:params:oauth:grant-type:token-exchange",
                            ),
                            ("subject_token", &admin),
                            (
                                "subject_token_type",
                                "urn:ietf:params:oauth:token-type:access_token",
                            ),
                            ("requested_subject", "100"),
                        ],
                    ),
                    refresh: None,
                }
            }
            Op::Mobile => {
                let query = format!(
                    "client_id={MOBILE_CLIENT}&grant_type=password&username=alice&password={}",
                    PASSWORD.replace(' ', "%20")
                );
                Call {
                    request: Request::get(format!("{base}/auth/token?{query}"))
                        .body(Full::new(Bytes::new()))
                        .unwrap(),
                    refresh: None,
                }
            }
            Op::Passport => Call {
                request: form(
                    "/oauth/token",
                    None,
                    &[
                        ("grant_type", "password"),
                        ("client_id", "2"),
                        ("client_secret", PASSPORT_SECRET),
                        ("username", "13800000001"),
                        ("password", PASSWORD),
                        ("scope", ""),
                    ],
                ),
                refresh: None,
            },
            Op::App => {
                let mut request = form(
                    "/token/login",
                    None,
                    &[("login_name", "alice"), ("password", PASSWORD)],
                );
                request
                    .headers_mut()
                    .insert("app_id", hyper::header::HeaderValue::from_static("app-1"));
                Call {
                    request,
                    refresh: None,
                }
            }
        })
    }

    /// Classifies one answer and keeps the tokens it carries.
    fn judge(
        &self,
        op: Op,
        status: u16,
        json: &Value,
        refresh: Option<String>,
        excused: Excuses,
        which: usize,
    ) -> (Class, String) {
        let mut pools = self.pools.lock().unwrap();
        let text = |name: &str| json[name].as_str().map(str::to_owned);
        let ok = match (op, status) {
            (Op::Password | Op::Refresh, 200) => {
                if let Some(access) = text("access_token") {
                    push_bounded(&mut pools.access, access);
                }
                if let Some(refresh) = text("refresh_token") {
                    pools.refresh.push(refresh);
                }
                true
            }
            (Op::Revoke, 200) => {
                pools.revoked.extend(refresh.clone());
                true
            }
            (Op::Mobile, 200) => {
                if let Some(token) = text("access_token") {
                    push_bounded(&mut pools.opaque, token);
                }
                true
            }
            (Op::App, 200) => {
                if let Some(token) = json["data"]["token"].as_str() {
                    push_bounded(&mut pools.app, token.to_owned());
                }
                json["data"]["token"].is_string()
            }
            (Op::Passport | Op::Introspect | Op::Exchange, 200) => true,
            (Op::Bearer | Op::Opaque | Op::AppHeader | Op::Upload, 200) => true,
            _ => false,
        };
        if ok {
            return (Class::Ok, String::new());
        }
        // Not what it should be: a refresh token that got an answer other than 200 is given
        // back only on 503 (the store was away: it was not used).
        if let Some(token) = refresh {
            if status == 503 && op == Op::Refresh {
                pools.refresh.push(token);
            } else if op == Op::Revoke && status == 503 {
                pools.refresh.insert(0, token);
            } else {
                pools.uncertain += 1;
            }
        }
        let excused = match status {
            502..=504 if op.upstream() && excused.upstream_down => true,
            503 if excused.store_down && op.store() => true,
            502..=504 if excused.instance_down[which] => true,
            _ => false,
        };
        let class = if excused {
            Class::Excused
        } else {
            Class::Violation
        };
        let error = json["error"].as_str().unwrap_or("");
        (
            class,
            format!("{op:?} got {status} {error}").trim().to_owned(),
        )
    }
}

/// A small xorshift generator: the mix is random but needs no crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 32) as u32
    }
}
