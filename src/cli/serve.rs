//! `weir serve`: the pipeline's web page.

use std::net::IpAddr;

use clap::Args;

use super::{ScriptArgs, StoreArgs, target};
use crate::Result;
use crate::serve::Options;

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub script: ScriptArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Port to listen on (0: any free one; the address is printed).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on. Any other than loopback needs --token.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Required of every request (`Authorization: Bearer T` or `?token=T`).
    #[arg(long, env = "WEIR_SERVE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Let the page start runs and clear tasks (under the instance lock, as the CLI does).
    #[arg(long)]
    pub allow_run: bool,
    /// Open the page in the default browser.
    #[arg(long)]
    pub open: bool,
}

pub async fn serve(args: ServeArgs) -> Result<()> {
    let opts = Options {
        target: target(&args.script, &args.store),
        bind: args.bind,
        port: args.port,
        token: args.token.clone(),
        allow_run: args.allow_run,
    };
    let open = args.open;
    let token = args.token.filter(|t| !t.is_empty());
    crate::serve::serve(opts, |addr| {
        let needs = match token {
            Some(_) => "; open it with ?token=T, the token it was given",
            None => "",
        };
        let line = format!("weir serve: http://{addr}/ (Ctrl-C stops{needs})\n");
        let _ = crate::report::stdout_text(line.as_bytes());
        if open {
            open_browser(&format!("http://{addr}/"));
        }
    })
    .await
}

/// Best effort: a machine without a desktop has no browser to open.
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    if std::process::Command::new(opener).arg(url).spawn().is_err() {
        crate::report::note(&format!("could not start {opener}; open {url} yourself"));
    }
}
