//! The auth store as every core reads it: the raft owner publishes a new [`AuthState`] after
//! each applied auth change, and any core takes the current one (an `Arc` clone under a read
//! lock held for that clone alone) to check a request. Also the token provider and the bcrypt
//! cost, which every core's Auth service uses.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::auth_store::{AuthState, TokenEffect};
use super::auth_tokens::Tokens;

/// Shared by every core and the raft owner.
pub struct AuthHub {
    state: RwLock<Arc<AuthState>>,
    /// Bumped by every publish: a core re-reads the state only when it changed.
    version: AtomicU64,
    tokens: Tokens,
    bcrypt_cost: u32,
    /// `--client-cert-auth`: a verified client certificate's CN names the caller when it
    /// sends no token.
    client_cert_auth: bool,
}

impl AuthHub {
    pub fn new(tokens: Tokens, bcrypt_cost: u32, client_cert_auth: bool) -> Arc<AuthHub> {
        Arc::new(AuthHub {
            state: RwLock::new(Arc::new(AuthState::default())),
            version: AtomicU64::new(0),
            tokens,
            bcrypt_cost,
            client_cert_auth,
        })
    }

    /// The store as of the last applied auth change.
    pub fn state(&self) -> Arc<AuthState> {
        self.state.read().expect("auth state lock").clone()
    }

    /// Publishes the store after applied changes, then voids the tokens they void.
    pub fn publish(&self, state: Arc<AuthState>, effects: &[TokenEffect]) {
        *self.state.write().expect("auth state lock") = state;
        self.version.fetch_add(1, Ordering::Release);
        for effect in effects {
            match effect {
                TokenEffect::DropAll => self.tokens.drop_all(),
                TokenEffect::DropUser(user) => self.tokens.drop_user(user),
            }
        }
    }

    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// `--bcrypt-cost`.
    pub fn bcrypt_cost(&self) -> u32 {
        self.bcrypt_cost
    }

    /// `--client-cert-auth`.
    pub fn client_cert_auth(&self) -> bool {
        self.client_cert_auth
    }
}

/// One core's view of the hub: the current state without touching the lock (and its shared
/// cache line) unless a publish happened since the last look; the copy is the core's own.
pub struct LocalAuth {
    hub: Arc<AuthHub>,
    cached: RefCell<(u64, Arc<AuthState>)>,
}

impl LocalAuth {
    pub fn new(hub: Arc<AuthHub>) -> LocalAuth {
        let version = hub.version.load(Ordering::Acquire);
        let state = own_copy(&hub);
        LocalAuth {
            hub,
            cached: RefCell::new((version, state)),
        }
    }

    /// The store as of the last applied auth change.
    pub fn state(&self) -> Arc<AuthState> {
        let version = self.hub.version.load(Ordering::Acquire);
        let mut cached = self.cached.borrow_mut();
        if cached.0 != version {
            *cached = (version, own_copy(&self.hub));
        }
        cached.1.clone()
    }

    pub fn hub(&self) -> &Arc<AuthHub> {
        &self.hub
    }
}

/// A copy of the hub's state in an allocation of this core's own: every call takes an `Arc`
/// of it, and a count shared with the other cores would bounce its cache line between them.
fn own_copy(hub: &AuthHub) -> Arc<AuthState> {
    Arc::new(AuthState::clone(&hub.state()))
}
