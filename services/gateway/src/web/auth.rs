//! Sign-in for the pages: the login form, the session cookie it sets, the signed-in user as an
//! extractor that sends strangers to the login page, and the CSRF tokens forms carry.
//!
//! A signed-in form's token is derived from the session token (which the page's script could not
//! read anyway: the cookie is `HttpOnly` and `SameSite=Strict`), so it needs no storage and dies
//! with the session. The login form, which has no session yet, uses a double-submit cookie.

use askama::Template;
use axum::Form;
use axum::extract::{FromRequestParts, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use zhzj_proto::accounts::Role;

use super::view::{Layout, html_with, role_label};
use crate::extract::{ClientAddress, SESSION_COOKIE, csrf_of, session_token};
use crate::routes::session_cookie;
use crate::{ApiError, AppState, User};

/// The cookie of the login form's CSRF token.
const LOGIN_CSRF_COOKIE: &str = "zhzj_login_csrf";

/// The pages a user whose password must be changed may still open.
const PASSWORD_PAGES: &[&str] = &[super::account_page::PASSWORD_PAGE, "/logout"];

/// The signed-in user of a page request; without a valid session the request is sent to the
/// login page, which comes back here after signing in.
#[derive(Debug, Clone)]
pub struct WebSession {
    /// Who.
    pub user: User,
    /// Their forms' CSRF token.
    pub csrf: String,
    /// The gateway's state.
    pub state: AppState,
    /// Open warnings in the user's scope (the header shows them on every page).
    pub open_warnings: usize,
    /// The user's unread messages.
    pub unread_messages: i64,
}

/// The header's counts: open warnings in the user's scope and unread messages (0 when they
/// cannot be read: the page still shows).
async fn header_counts(state: &AppState, user: &User) -> (usize, i64) {
    if !user.reads_cases() {
        return (0, 0);
    }
    let warnings = crate::routes::notices::open_warning_count(state, user).await;
    let unread = crate::routes::notices::inbox_unread(state, user).await;
    match (warnings, unread) {
        (Ok(warnings), Ok(unread)) => (warnings, unread),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "the header's counts could not be read");
            (0, 0)
        }
    }
}

impl FromRequestParts<AppState> for WebSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let back = parts.uri.clone();
        let to_login = || {
            let next: String =
                form_urlencoded::byte_serialize(back.to_string().as_bytes()).collect();
            super::view::see_other(&format!("/login?next={next}"))
        };
        let Some(token) = CookieJar::from_headers(&parts.headers)
            .get(SESSION_COOKIE)
            .map(|c| c.value().to_owned())
        else {
            return Err(to_login());
        };
        match state.accounts().session_user(&token).await {
            // A first, reset or expired password is changed before anything else.
            Ok(Some(user))
                if user.must_change_password && !PASSWORD_PAGES.contains(&parts.uri.path()) =>
            {
                Err(super::view::see_other(super::account_page::PASSWORD_PAGE))
            }
            Ok(Some(user)) => {
                let (open_warnings, unread_messages) = header_counts(state, &user).await;
                Ok(Self {
                    user,
                    csrf: csrf_of(&token),
                    state: state.clone(),
                    open_warnings,
                    unread_messages,
                })
            }
            Ok(None) => Err(to_login()),
            Err(e) => Err(ApiError::internal(e).into_response()),
        }
    }
}

/// The frame of an error page for a request to `uri` with `cookies`: the signed-in user's when
/// they carry a valid session, else a stranger's (no menu).
pub async fn frame_of(state: &AppState, uri: Uri, cookies: &[HeaderValue]) -> Layout {
    let mut request = axum::http::Request::new(());
    *request.uri_mut() = uri;
    for cookie in cookies {
        request.headers_mut().append(header::COOKIE, cookie.clone());
    }
    let (mut parts, ()) = request.into_parts();
    match WebSession::from_request_parts(&mut parts, state).await {
        Ok(session) => session.layout("", ""),
        Err(_) => Layout {
            today: state.today().to_string(),
            ..Layout::default()
        },
    }
}

impl WebSession {
    /// The frame of a page titled `title` under the menu entry `nav`.
    pub fn layout(&self, title: impl Into<String>, nav: &'static str) -> Layout {
        Layout {
            title: title.into(),
            nav,
            user_name: self.user.display_name.clone(),
            role_label: role_label(&self.user),
            csrf: self.csrf.clone(),
            today: self.state.today().to_string(),
            flash: None,
            is_admin: self.has(Role::Admin),
            is_auditor: self.has(Role::Auditor),
            reads_cases: self.user.reads_cases(),
            open_warnings: self.open_warnings,
            unread_messages: self.unread_messages,
        }
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, token: &str) -> Result<(), ApiError> {
        if token == self.csrf {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "表单已失效（安全校验未通过），请刷新页面后重新提交".into(),
            ))
        }
    }

    /// `result` as the answer, or the error page.
    pub fn respond(&self, result: Result<Response, ApiError>, nav: &'static str) -> Response {
        result.unwrap_or_else(|error| super::view::error_page(self.layout("", nav), &error))
    }

    /// Whether the user holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.user.has_role(role)
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    csrf: String,
    next: String,
    username: String,
    error: String,
}

/// `?next=`.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// Only a path of this site is followed after signing in.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path.to_owned()
        }
        _ => "/checklist".into(),
    }
}

fn random_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(ApiError::internal)?;
    Ok(hex::encode(bytes))
}

fn login_form(
    state: &AppState,
    status: StatusCode,
    next: String,
    username: String,
    error: String,
) -> Result<Response, ApiError> {
    let csrf = random_token()?;
    let page = LoginPage {
        layout: Layout {
            title: "登录".into(),
            nav: "login",
            today: state.today().to_string(),
            ..Layout::default()
        },
        csrf: csrf.clone(),
        next,
        username,
        error,
    };
    let mut response = html_with(status, &page)?;
    if let Ok(value) =
        format!("{LOGIN_CSRF_COOKIE}={csrf}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600")
            .parse()
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// `GET /login`.
pub async fn login_page(
    State(state): State<AppState>,
    axum::extract::Query(query): axum::extract::Query<LoginQuery>,
) -> Response {
    login_form(
        &state,
        StatusCode::OK,
        safe_next(query.next.as_deref()),
        String::new(),
        String::new(),
    )
    .unwrap_or_else(IntoResponse::into_response)
}

/// The login form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    csrf: String,
    next: Option<String>,
}

/// `POST /login`: signs in and goes on to the page asked for.
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let cookie_csrf = CookieJar::from_headers(&headers)
        .get(LOGIN_CSRF_COOKIE)
        .map(|c| c.value().to_owned());
    let answer =
        async {
            if cookie_csrf.as_deref() != Some(form.csrf.as_str()) {
                return login_form(
                    &state,
                    StatusCode::FORBIDDEN,
                    next.clone(),
                    form.username.clone(),
                    "登录表单已失效，请重新输入".into(),
                );
            }
            let session =
                match crate::routes::sign_in(&state, form.username.trim(), &form.password, client)
                    .await
                {
                    Ok(session) => session,
                    Err(
                        refusal @ (ApiError::Unauthenticated(_) | ApiError::LoginLocked { .. }),
                    ) => {
                        let mut page = login_form(
                            &state,
                            StatusCode::UNAUTHORIZED,
                            next.clone(),
                            form.username.clone(),
                            refusal.to_string(),
                        )?;
                        if let ApiError::LoginLocked {
                            retry_after_seconds,
                        } = refusal
                        {
                            page.headers_mut()
                                .insert(header::RETRY_AFTER, retry_after_seconds.into());
                        }
                        return Ok(page);
                    }
                    Err(ApiError::Unavailable(message)) => {
                        // Starting up or an outage: the form again, saying to come back.
                        let mut page = login_form(
                            &state,
                            StatusCode::SERVICE_UNAVAILABLE,
                            next.clone(),
                            form.username.clone(),
                            message,
                        )?;
                        page.headers_mut().insert(
                            header::RETRY_AFTER,
                            HeaderValue::from_static(crate::error::RETRY_AFTER_SECONDS),
                        );
                        return Ok(page);
                    }
                    Err(other) => return Err(other),
                };
            let max_age = (session.expires_at - state.now()).num_seconds().max(0);
            let next = if session.user.must_change_password {
                super::account_page::PASSWORD_PAGE.to_owned()
            } else if next == "/checklist" && !session.user.reads_cases() {
                // An auditor alone has no checklist: their page is the trail.
                "/audit".to_owned()
            } else {
                next
            };
            let mut response = super::view::see_other(&next);
            let secure = state.secure_cookies(&headers);
            if let Ok(value) = session_cookie(&session.token, max_age, secure).parse() {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            Ok(response)
        };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

/// The logout form.
#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    csrf: String,
}

/// `POST /logout`.
pub async fn logout(
    session: WebSession,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    let answer = async {
        session.check_csrf(&form.csrf)?;
        if let Some(token) = session_token(&headers) {
            session
                .state
                .accounts()
                .logout(&token)
                .await
                .map_err(ApiError::internal)?;
        }
        let mut response = super::view::see_other("/login");
        let secure = session.state.secure_cookies(&headers);
        if let Ok(value) = session_cookie("", 0, secure).parse() {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        Ok(response)
    };
    let result = answer.await;
    session.respond(result, "checklist")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_site_are_followed_after_login() {
        assert_eq!(safe_next(Some("/cases/1")), "/cases/1");
        assert_eq!(safe_next(Some("//evil.example/x")), "/checklist");
        assert_eq!(safe_next(Some("https://evil.example")), "/checklist");
        assert_eq!(safe_next(Some("/\\evil.example")), "/checklist");
        assert_eq!(safe_next(None), "/checklist");
        assert_eq!(safe_next(Some("/x\r\nSet-Cookie: a=b")), "/checklist");
    }

    #[test]
    fn csrf_tokens_differ_by_session_and_are_stable() {
        assert_eq!(csrf_of("a"), csrf_of("a"));
        assert_ne!(csrf_of("a"), csrf_of("b"));
        assert_eq!(csrf_of("a").len(), 32);
    }
}
