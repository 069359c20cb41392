//! `authgate explain`: which route a request would take, whether its token would pass and
//! why not, and exactly what the upstream would receive — asked of the same code that serves
//! (`authgate::server::assemble` + `Proxy::explain`), never sent anywhere.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context as _, bail};
use clap::Args;
use hyper::{Method, Request, Uri};

use authgate::config::Config;

#[derive(Args)]
pub struct ExplainArgs {
    /// The request: `https://host/path?query` (the host becomes the Host header) or a path.
    url: String,
    /// The method.
    #[arg(long, short = 'X', default_value = "GET")]
    method: String,
    /// A request header, `Name: value` (repeatable).
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// A bearer token (sent as `Authorization: Bearer …`).
    #[arg(long)]
    token: Option<String>,
    /// The address the request comes from (the socket peer).
    #[arg(long, default_value = "127.0.0.1")]
    from: IpAddr,
}

pub fn run(config: &Config, args: ExplainArgs) -> anyhow::Result<()> {
    let (request, tls) = request(config, &args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        authgate::install_crypto_provider();
        let assembled = authgate::server::assemble(config)
            .await
            .context("cannot assemble the gateway from the config")?;
        let explanation = assembled
            .proxy
            .explain(request, SocketAddr::new(args.from, 40000), tls)
            .await;
        print!("{}", explanation.render());
        assembled.base.store.close().await;
        Ok(())
    })
}

fn request(config: &Config, args: &ExplainArgs) -> anyhow::Result<(Request<()>, bool)> {
    let method = Method::from_bytes(args.method.to_uppercase().as_bytes())
        .with_context(|| format!("`{}` is not an HTTP method", args.method))?;
    let uri: Uri = args
        .url
        .parse()
        .with_context(|| format!("`{}` is not a URL or a path", args.url))?;
    let tls = uri.scheme_str() != Some("http");
    let host = match uri.authority() {
        Some(authority) => authority.to_string(),
        None => config.server.listen.to_string(),
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, host);
    for header in &args.headers {
        let Some((name, value)) = header.split_once(':') else {
            bail!("-H `{header}` is not `Name: value`");
        };
        builder = builder.header(name.trim(), value.trim());
    }
    if let Some(token) = &args.token {
        builder = builder.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = builder.body(()).context("the request is not valid HTTP")?;
    Ok((request, tls))
}
