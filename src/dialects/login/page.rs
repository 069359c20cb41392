//! The HTML the browser flows show: the login form and the error page. Server-rendered, no
//! JavaScript, one inline style sheet allowed by its hash in the Content-Security-Policy.
//! Everything interpolated is HTML-escaped.

use std::fmt::Write;
use std::sync::LazyLock;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Sign in comes first in the form, so Enter submits it, and `row-reverse` still shows Cancel on
/// the left.
const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;\
font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;background:#f3f4f6;color:#111827}\
main{width:100%;max-width:400px;margin:16px;padding:32px 28px;background:#fff;border-radius:12px;\
box-shadow:0 1px 3px rgba(0,0,0,.08),0 8px 24px rgba(0,0,0,.06)}\
h1{margin:0 0 4px;font-size:22px;font-weight:650}\
p.sub{margin:0 0 24px;color:#4b5563}\
label{display:block;margin:16px 0 6px;font-weight:600;font-size:14px}\
input[type=text],input[type=password]{width:100%;padding:10px 12px;font-size:16px;border:1px solid #d1d5db;\
border-radius:8px;background:#fff}\
input:focus{outline:2px solid #2563eb;outline-offset:1px;border-color:#2563eb}\
.err{margin:0 0 16px;padding:10px 12px;border-radius:8px;background:#fef2f2;color:#991b1b;border:1px solid #fecaca}\
.actions{display:flex;flex-direction:row-reverse;gap:12px;margin-top:24px}\
button{flex:1;padding:11px 16px;font-size:16px;font-weight:600;border-radius:8px;cursor:pointer;border:1px solid transparent}\
button.primary{background:#2563eb;color:#fff}button.primary:hover{background:#1d4ed8}\
button.secondary{background:#fff;color:#374151;border-color:#d1d5db}button.secondary:hover{background:#f9fafb}\
.fine{margin-top:20px;font-size:13px;color:#6b7280}code{word-break:break-all}\
.providers{display:flex;flex-direction:column;gap:10px;margin:0 0 8px}\
a.provider{display:block;padding:11px 16px;text-align:center;font-weight:600;border-radius:8px;border:1px solid #d1d5db;\
color:#111827;text-decoration:none}a.provider:hover{background:#f9fafb}\
p.or{margin:16px 0 0;text-align:center;color:#6b7280;font-size:14px}";

/// The Content-Security-Policy of every page: nothing but our style sheet, never framed.
pub static CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = STANDARD.encode(digest(&SHA256, STYLE.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; base-uri 'none'; frame-ancestors 'none'"
    )
});

/// HTML-escapes `text` (element content and double-quoted attribute values).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\">\
<title>{}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        escape(title)
    )
}

/// What the login form shows and carries.
pub struct LoginForm<'a> {
    /// The form posts back to the page it came from.
    pub action: &'a str,
    pub client_name: &'a str,
    /// The authorization request, carried in hidden fields.
    pub hidden: &'a [(&'a str, String)],
    pub csrf: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
    /// Upstream providers' buttons: (link, label).
    pub providers: &'a [(String, String)],
    /// Show the password form (else only the buttons, and Cancel).
    pub password: bool,
}

pub fn login(form: &LoginForm<'_>) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Sign in</h1><p class=\"sub\">to continue to <strong>{}</strong></p>",
        escape(form.client_name)
    );
    if let Some(error) = form.error {
        let _ = write!(
            body,
            "<p class=\"err\" role=\"alert\" id=\"error\">{}</p>",
            escape(error)
        );
    }
    if !form.providers.is_empty() {
        body.push_str("<nav class=\"providers\" aria-label=\"Sign in with\">");
        for (href, label) in form.providers {
            let _ = write!(
                body,
                "<a class=\"provider\" href=\"{}\">Sign in with {}</a>",
                escape(href),
                escape(label)
            );
        }
        body.push_str("</nav>");
        if form.password {
            body.push_str("<p class=\"or\">or with your password</p>");
        }
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"{}\" autocomplete=\"on\">",
        escape(form.action)
    );
    let hidden: Vec<(&str, &str)> = form.hidden.iter().map(|(n, v)| (*n, v.as_str())).collect();
    hidden_fields(&mut body, &hidden);
    if !form.password {
        let _ = write!(
            body,
            "<input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\
<div class=\"actions\"><button type=\"submit\" name=\"action\" value=\"cancel\" class=\"secondary\" formnovalidate>Cancel</button></div></form>",
            escape(form.csrf)
        );
        return document("Sign in", &body);
    }
    let described = if form.error.is_some() {
        " aria-describedby=\"error\" aria-invalid=\"true\""
    } else {
        ""
    };
    let _ = write!(
        body,
        "<input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\
<label for=\"username\">Phone, e-mail or user name</label>\
<input type=\"text\" id=\"username\" name=\"username\" value=\"{}\" required autofocus \
autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\"{described}>\
<label for=\"password\">Password</label>\
<input type=\"password\" id=\"password\" name=\"password\" required autocomplete=\"current-password\"{described}>\
<div class=\"actions\"><button type=\"submit\" name=\"action\" value=\"login\" class=\"primary\">Sign in</button>\
<button type=\"submit\" name=\"action\" value=\"cancel\" class=\"secondary\" formnovalidate>Cancel</button></div></form>\
<p class=\"fine\">You will be sent back to {} after signing in.</p>",
        escape(form.csrf),
        escape(form.username),
        escape(form.client_name),
    );
    document("Sign in", &body)
}

/// An error the person must see (and which is never sent to a redirect URI).
pub fn error(title: &str, message: &str) -> String {
    let body = format!(
        "<h1>{}</h1><p class=\"err\" role=\"alert\">{}</p>\
<p class=\"fine\">Go back to the application and try again. If this keeps happening, tell its \
developers: the request it sent was refused.</p>",
        escape(title),
        escape(message)
    );
    document(title, &body)
}

/// A short notice (logged out, confirm logout); `form` is a confirmation button posting back
/// to `action` with the CSRF token and `hidden` fields.
pub fn notice(title: &str, message: &str, form: Option<NoticeForm<'_>>) -> String {
    let mut body = format!(
        "<h1>{}</h1><p class=\"sub\">{}</p>",
        escape(title),
        escape(message)
    );
    if let Some(form) = form {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"csrf_token\" value=\"{}\">",
            escape(form.action),
            escape(form.csrf)
        );
        hidden_fields(&mut body, form.hidden);
        body.push_str(
            "<div class=\"actions\"><button type=\"submit\" class=\"primary\">Sign out</button></div></form>",
        );
    }
    document(title, &body)
}

/// An error with a way back: `href` (a login page of ours), labelled `link`.
pub fn back(title: &str, message: &str, href: &str, link: &str) -> String {
    let body = format!(
        "<h1>{}</h1><p class=\"err\" role=\"alert\">{}</p>\
<div class=\"providers\"><a class=\"provider\" id=\"back\" href=\"{}\">{}</a></div>",
        escape(title),
        escape(message),
        escape(href),
        escape(link)
    );
    document(title, &body)
}

/// The confirmation form of a [`notice`].
pub struct NoticeForm<'a> {
    pub action: &'a str,
    pub csrf: &'a str,
    pub hidden: &'a [(&'a str, &'a str)],
}

fn hidden_fields(body: &mut String, fields: &[(&str, &str)]) {
    for (name, value) in fields {
        let _ = write!(
            body,
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(name),
            escape(value)
        );
    }
}

/// The one script a page may run: `response_mode=form_post` (OAuth 2.0 Form Post Response
/// Mode) posts the answer to the client at once; without JavaScript a button does.
const AUTO_SUBMIT: &str = "document.forms[0].submit()";

/// The form-post page's policy: our style sheet and the auto-submit script, by their hashes.
pub static FORM_POST_CSP: LazyLock<String> = LazyLock::new(|| {
    let style = STANDARD.encode(digest(&SHA256, STYLE.as_bytes()));
    let script = STANDARD.encode(digest(&SHA256, AUTO_SUBMIT.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{style}'; script-src 'sha256-{script}'; \
base-uri 'none'; frame-ancestors 'none'"
    )
});

/// The authorization response as a form posted to the client's redirect URI.
pub fn form_post(action: &str, fields: &[(&str, &str)]) -> String {
    let mut body = format!(
        "<h1>Signing you in</h1><form method=\"post\" action=\"{}\">",
        escape(action)
    );
    hidden_fields(&mut body, fields);
    let _ = write!(
        body,
        "<noscript><p class=\"sub\">JavaScript is off: continue by hand.</p>\
<div class=\"actions\"><button type=\"submit\" class=\"primary\">Continue</button></div></noscript>\
</form><script>{AUTO_SUBMIT}</script>"
    );
    document("Signing you in", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_interpolated_is_escaped() {
        let hidden = [("state", "\"><script>alert(1)</script>".to_owned())];
        let html = login(&LoginForm {
            action: "/open/authorize/index",
            client_name: "<b>Evil</b>",
            hidden: &hidden,
            csrf: "c",
            username: "a\"b",
            error: Some("<i>x</i>"),
            providers: &[(
                "/open/providers/x/start?return_to=%2F".into(),
                "<u>Corp</u>".into(),
            )],
            password: true,
        });
        assert!(!html.contains("<u>Corp"));
        assert!(html.contains("Sign in with &lt;u&gt;Corp&lt;/u&gt;"));
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<b>Evil"));
        assert!(!html.contains("<i>x"));
        assert!(html.contains("&lt;b&gt;Evil&lt;/b&gt;"));
        assert!(html.contains("value=\"a&quot;b\""));
        assert!(html.contains("<label for=\"password\">"));
    }

    #[test]
    fn the_policy_allows_exactly_our_style() {
        assert!(CSP.contains("frame-ancestors 'none'"));
        assert!(CSP.starts_with("default-src 'none'; style-src 'sha256-"));
    }
}
