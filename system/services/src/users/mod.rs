//! Users: customer accounts and logins (contract v2).
//!
//! `POST /api/users {email, password}` creates an account (201, or 409
//! `EMAIL_TAKEN`); `POST /api/sessions {email, password}` logs in (201 with
//! a bearer token from `customer::mint`, or 401 `INVALID_CREDENTIALS`). A
//! wrong password and an unknown email get the same answer after the same
//! work (`password::Hasher::verify` against a dummy hash), so a login says
//! nothing about which emails have accounts. Logins are limited per account
//! (by email, whether it exists or not) and per client address, sign-ups
//! per client address (`rate_limit`, 429 `RATE_LIMITED` with
//! `Retry-After`); limits are checked before any hashing.
//!
//! Sign-up does tell whether an email is taken (409): without a mailbox to
//! confirm it there is no other honest answer. Its limit per address is
//! what bounds that probe.
//!
//! Layer: a service; imports the shared types (`customer`, `rate_limit`,
//! `config`, `error`), `http`, `started`; never another service or the
//! gateway.

pub mod password;

use crate::Ctx;
use crate::config::UsersSettings;
use crate::customer::{self, CustomerKey};
use crate::error::ApiError;
use crate::http::extract::ApiJson;
use crate::http::peer::{PeerAddr, client_ip};
use crate::rate_limit::RateLimiter;
use crate::started::Started;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Extension, Json, Router};
use password::Hasher;
use std::sync::Arc;
use ticketing_contract::{AccountView, CredentialsBody, SessionView, rfc3339};
use ticketing_domain::ports::{Account, Created, UserRepository};
use ticketing_domain::rules;

/// Shared state of the users service.
#[derive(Debug, Clone)]
pub struct UsersState {
    ctx: Ctx,
    repo: Arc<dyn UserRepository>,
    key: Arc<CustomerKey>,
    token_ttl_ms: u64,
    trust_forwarded_for: bool,
    hasher: Arc<Hasher>,
    limits: Arc<Limits>,
}

#[derive(Debug)]
struct Limits {
    login_account: RateLimiter,
    login_address: RateLimiter,
    signup_address: RateLimiter,
}

impl UsersState {
    /// The service's state; refuses argon2 parameters that cannot work.
    pub fn new(
        ctx: Ctx,
        repo: Arc<dyn UserRepository>,
        key: CustomerKey,
        token_ttl_s: u64,
        settings: &UsersSettings,
        trust_forwarded_for: bool,
    ) -> anyhow::Result<UsersState> {
        let keys = settings.limiter_keys_max;
        Ok(UsersState {
            ctx,
            repo,
            key: Arc::new(key),
            token_ttl_ms: token_ttl_s.max(1) * 1000,
            trust_forwarded_for,
            hasher: Arc::new(Hasher::new(settings)?),
            limits: Arc::new(Limits {
                login_account: RateLimiter::new(settings.login_per_account, keys),
                login_address: RateLimiter::new(settings.login_per_address, keys),
                signup_address: RateLimiter::new(settings.signup_per_address, keys),
            }),
        })
    }

    /// argon2 computations so far (see `password::Hasher::computed`).
    pub fn hashes_computed(&self) -> usize {
        self.hasher.computed()
    }

    /// Creates an account (the demo's, a test's) without HTTP or limits.
    pub async fn sign_up(&self, email: &str, password: &str) -> Result<AccountView, ApiError> {
        let email_key = rules::email_key(email).map_err(|e| ApiError::Validation(e.0))?;
        rules::validate_password(password).map_err(|e| ApiError::Validation(e.0))?;
        if self.repo.by_email(&email_key).await?.is_some() {
            return Err(email_taken());
        }
        let password_hash = self.hasher.hash(password, self.ctx.rng.as_ref()).await?;
        let mut id = [0u8; 16];
        self.ctx.rng.fill_bytes(&mut id);
        let account = Account {
            customer_id: format!("cus_{}", hex::encode(id)),
            email: email.trim().to_owned(),
            email_key,
            password_hash,
            created_at_ms: self.ctx.clock.now_ms(),
        };
        let view = AccountView {
            customer_id: account.customer_id.clone(),
            email: account.email.clone(),
        };
        match self.repo.create(account).await? {
            Created::Created => Ok(view),
            Created::EmailTaken => Err(email_taken()),
        }
    }

    /// Checks the credentials and mints a token; one answer for every failure.
    pub async fn log_in(&self, email: &str, password: &str) -> Result<SessionView, ApiError> {
        let Ok(email_key) = rules::email_key(email) else {
            // No account has this shape: nothing to reveal, nothing to hash.
            return Err(invalid());
        };
        self.limit(&self.limits.login_account, "login_account", &email_key)
            .inspect_err(|_| {
                metrics::counter!(crate::metrics::LOGINS, "outcome" => "limited").increment(1);
            })?;
        if password.len() > rules::PASSWORD_MAX_BYTES {
            return Err(invalid());
        }
        let account = self.repo.by_email(&email_key).await?;
        // The same work whether the account exists or not.
        let stored = account.as_ref().map(|a| a.password_hash.as_str());
        let matches = self
            .hasher
            .verify(password, stored, self.ctx.rng.as_ref())
            .await?;
        let Some(account) = account.filter(|_| matches) else {
            return Err(invalid());
        };
        let minted = customer::mint(
            &self.key,
            &account.customer_id,
            self.ctx.clock.now_ms(),
            self.token_ttl_ms,
        );
        metrics::counter!(crate::metrics::LOGINS, "outcome" => "ok").increment(1);
        Ok(SessionView {
            access_token: minted.token,
            token_type: "Bearer".into(),
            customer_id: account.customer_id,
            expires_at: rfc3339(minted.expires_at_ms),
            expires_at_ms: minted.expires_at_ms,
        })
    }

    fn limit(&self, limiter: &RateLimiter, name: &'static str, key: &str) -> Result<(), ApiError> {
        limiter
            .check(key, self.ctx.clock.now_ms())
            .map_err(|l| l.refused(name))
    }

    /// The per-address limit, where the client's address is known.
    fn limit_address(
        &self,
        limiter: &RateLimiter,
        name: &'static str,
        headers: &HeaderMap,
        peer: Option<PeerAddr>,
    ) -> Result<(), ApiError> {
        match client_ip(headers, peer, self.trust_forwarded_for) {
            Some(ip) => self.limit(limiter, name, &ip.to_string()),
            None => Ok(()),
        }
    }
}

fn email_taken() -> ApiError {
    ApiError::Conflict("EMAIL_TAKEN", "an account with this email exists".into())
}

fn invalid() -> ApiError {
    metrics::counter!(crate::metrics::LOGINS, "outcome" => "invalid").increment(1);
    ApiError::InvalidCredentials
}

/// The users service: public routes only, no workers.
pub fn start(state: UsersState) -> Started {
    Started {
        service: "users",
        public: router(state),
        internal: Router::new(),
        workers: Vec::new(),
    }
}

/// Public routes: `/api/users`, `/api/sessions`.
pub fn router(state: UsersState) -> Router {
    Router::new()
        .route("/api/users", post(sign_up))
        .route("/api/sessions", post(log_in))
        .with_state(state)
}

#[utoipa::path(
    post,
    path = "/api/users",
    tag = "customers",
    summary = "Create an account",
    description = "An account for an email and password (hashed with argon2id).",
    request_body = ticketing_contract::CredentialsBody,
    responses(
        (status = 400, description = "MALFORMED_JSON: the body is not JSON", body = ticketing_contract::ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE: the body is over http.body_limit_bytes", body = ticketing_contract::ErrorBody),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not sent as application/json", body = ticketing_contract::ErrorBody),
        (status = 201, description = "The account", body = ticketing_contract::AccountView),
        (status = 409, description = "EMAIL_TAKEN", body = ticketing_contract::ErrorBody),
        (status = 422, description = "VALIDATION_FAILED: the body or a parameter is out of range", body = ticketing_contract::ErrorBody),
        (status = 429, description = "RATE_LIMITED, with `Retry-After`", body = ticketing_contract::ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE: too many passwords being hashed", body = ticketing_contract::ErrorBody),
    ),
)]
pub(crate) async fn sign_up(
    State(state): State<UsersState>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CredentialsBody>,
) -> Result<(StatusCode, Json<AccountView>), ApiError> {
    let limiter = &state.limits.signup_address;
    state.limit_address(limiter, "signup_address", &headers, peer.map(|p| p.0))?;
    let view = state.sign_up(&body.email, &body.password).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(
    post,
    path = "/api/sessions",
    tag = "customers",
    summary = "Log in",
    description = "A bearer token for the account. A wrong password and an unknown email answer the same, in the same time; attempts are rate-limited per account and per client address.",
    request_body = ticketing_contract::CredentialsBody,
    responses(
        (status = 400, description = "MALFORMED_JSON: the body is not JSON", body = ticketing_contract::ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE: the body is over http.body_limit_bytes", body = ticketing_contract::ErrorBody),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not sent as application/json", body = ticketing_contract::ErrorBody),
        (status = 201, description = "A bearer token", body = ticketing_contract::SessionView),
        (status = 401, description = "INVALID_CREDENTIALS (a wrong password and an unknown email answer alike)", body = ticketing_contract::ErrorBody),
        (status = 422, description = "VALIDATION_FAILED: the body or a parameter is out of range", body = ticketing_contract::ErrorBody),
        (status = 429, description = "RATE_LIMITED, with `Retry-After`", body = ticketing_contract::ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE: too many passwords being hashed", body = ticketing_contract::ErrorBody),
    ),
)]
pub(crate) async fn log_in(
    State(state): State<UsersState>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CredentialsBody>,
) -> Result<(StatusCode, Json<SessionView>), ApiError> {
    let limiter = &state.limits.login_address;
    state
        .limit_address(limiter, "login_address", &headers, peer.map(|p| p.0))
        .inspect_err(|_| {
            metrics::counter!(crate::metrics::LOGINS, "outcome" => "limited").increment(1);
        })?;
    let view = state.log_in(&body.email, &body.password).await?;
    Ok((StatusCode::CREATED, Json(view)))
}
