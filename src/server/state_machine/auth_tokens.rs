//! Auth tokens (`--auth-token`): etcd's simple tokens — random, held in memory, each valid for
//! `--auth-token-ttl` seconds after its last use — or JWTs signed with the operator's key,
//! which carry the user name and the auth revision they were issued at.
//!
//! Simple tokens are shared by every core (a map behind a mutex, held for a lookup); they do
//! not survive a restart, as etcd's do not. JWTs need no state: any core verifies them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

/// Letters of a simple token's random part (etcd's).
const SIMPLE_TOKEN_LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// Length of a simple token's random part (etcd's).
const SIMPLE_TOKEN_LENGTH: usize = 16;
/// etcd's JWT lifetime when `ttl=` is not given.
const JWT_TTL_DEFAULT: Duration = Duration::from_secs(300);

/// Who a token names: the user and the auth revision it stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    pub user: String,
    pub revision: u64,
}

/// The token provider chosen by `--auth-token`.
pub enum Tokens {
    Simple(SimpleTokens),
    Jwt(Box<JwtTokens>),
}

impl Tokens {
    /// The provider `--auth-token` names (`simple`, or `jwt,pub-key=...,priv-key=...,
    /// sign-method=...,ttl=...`), with `--auth-token-ttl` for simple tokens; an error says
    /// what is wrong, and the member refuses to start.
    pub fn from_flag(spec: &str, simple_ttl: Duration) -> Result<Tokens, String> {
        let mut parts = spec.split(',');
        match parts.next().unwrap_or("") {
            "simple" => Ok(Tokens::Simple(SimpleTokens::new(simple_ttl))),
            "jwt" => {
                let mut options = HashMap::new();
                for part in parts {
                    let (name, value) = part.split_once('=').ok_or_else(|| {
                        format!("invalid --auth-token option {part:?} (want name=value)")
                    })?;
                    options.insert(name, value);
                }
                JwtTokens::new(&options).map(|jwt| Tokens::Jwt(Box::new(jwt)))
            }
            other => Err(format!("unknown token type: {other}")),
        }
    }

    /// A new token for `user` at auth revision `revision`.
    pub fn assign(&self, user: &str, revision: u64) -> Result<String, String> {
        match self {
            Tokens::Simple(simple) => Ok(simple.assign(user)),
            Tokens::Jwt(jwt) => jwt.assign(user, revision),
        }
    }

    /// Who `token` names, if it is valid; a simple token stands for the current revision
    /// (`current_revision`) and its lifetime starts over.
    pub fn info(&self, token: &str, current_revision: u64) -> Option<TokenInfo> {
        match self {
            Tokens::Simple(simple) => simple.info(token).map(|user| TokenInfo {
                user,
                revision: current_revision,
            }),
            Tokens::Jwt(jwt) => jwt.info(token),
        }
    }

    /// Voids `user`'s tokens (deleted, or a new password). JWTs cannot be recalled: they end
    /// with their lifetime, or when the auth revision they carry is passed.
    pub fn drop_user(&self, user: &str) {
        if let Tokens::Simple(simple) = self {
            simple.drop_user(user);
        }
    }

    /// Voids every token (auth disabled).
    pub fn drop_all(&self) {
        if let Tokens::Simple(simple) = self {
            simple.drop_all();
        }
    }
}

/// etcd's simple token store.
pub struct SimpleTokens {
    ttl: Duration,
    tokens: Mutex<HashMap<String, SimpleToken>>,
    /// Makes every token unique, as etcd's raft index suffix does.
    next_suffix: AtomicU64,
}

struct SimpleToken {
    user: String,
    expires: Instant,
}

impl SimpleTokens {
    pub fn new(ttl: Duration) -> SimpleTokens {
        SimpleTokens {
            ttl,
            tokens: Mutex::new(HashMap::new()),
            next_suffix: AtomicU64::new(1),
        }
    }

    fn assign(&self, user: &str) -> String {
        let mut rng = rand::thread_rng();
        let random: String = (0..SIMPLE_TOKEN_LENGTH)
            .map(|_| SIMPLE_TOKEN_LETTERS[rng.gen_range(0..SIMPLE_TOKEN_LETTERS.len())] as char)
            .collect();
        let token = format!(
            "{random}.{}",
            self.next_suffix.fetch_add(1, Ordering::Relaxed)
        );
        let now = Instant::now();
        let mut tokens = self.tokens.lock().expect("simple token lock");
        // Expired tokens go when the store has doubled since the last sweep's survivors.
        tokens.retain(|_, t| t.expires > now);
        tokens.insert(
            token.clone(),
            SimpleToken {
                user: user.to_string(),
                expires: now + self.ttl,
            },
        );
        token
    }

    fn info(&self, token: &str) -> Option<String> {
        let now = Instant::now();
        let mut tokens = self.tokens.lock().expect("simple token lock");
        let entry = tokens.get_mut(token)?;
        if entry.expires <= now {
            tokens.remove(token);
            return None;
        }
        entry.expires = now + self.ttl;
        Some(entry.user.clone())
    }

    fn drop_user(&self, user: &str) {
        self.tokens
            .lock()
            .expect("simple token lock")
            .retain(|_, t| t.user != user);
    }

    fn drop_all(&self) {
        self.tokens.lock().expect("simple token lock").clear();
    }
}

/// etcd's JWT provider: claims `username`, `revision` and `exp`.
pub struct JwtTokens {
    algorithm: Algorithm,
    /// `None`: verify-only (no `priv-key`): Authenticate cannot issue tokens.
    signing: Option<EncodingKey>,
    verifying: DecodingKey,
    ttl: Duration,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    username: String,
    revision: u64,
    exp: u64,
}

impl JwtTokens {
    fn new(options: &HashMap<&str, &str>) -> Result<JwtTokens, String> {
        for name in options.keys() {
            if !["pub-key", "priv-key", "sign-method", "ttl"].contains(name) {
                return Err(format!("unknown --auth-token jwt option {name:?}"));
            }
        }
        let method = options
            .get("sign-method")
            .ok_or("--auth-token jwt needs sign-method=...")?;
        let algorithm: Algorithm = method
            .parse()
            .map_err(|_| format!("unsupported JWT sign-method {method:?}"))?;
        let ttl = match options.get("ttl") {
            None => JWT_TTL_DEFAULT,
            Some(text) => basalt_config::parse_go_duration(text)
                .map_err(|e| format!("invalid JWT ttl {text:?}: {e}"))?,
        };
        let read = |name: &str| -> Result<Option<Vec<u8>>, String> {
            match options.get(name) {
                None => Ok(None),
                Some(path) => std::fs::read(path)
                    .map(Some)
                    .map_err(|e| format!("cannot read the JWT {name} {path}: {e}")),
            }
        };
        let (public, private) = (read("pub-key")?, read("priv-key")?);
        let bad = |which: &str, e: jsonwebtoken::errors::Error| {
            format!("the JWT {which} is not a {method} key: {e}")
        };
        let (signing, verifying) = match algorithm {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                let secret = private.ok_or("an HMAC sign-method needs priv-key=...")?;
                (
                    Some(EncodingKey::from_secret(&secret)),
                    DecodingKey::from_secret(&secret),
                )
            }
            Algorithm::ES256 | Algorithm::ES384 => {
                let public = public.ok_or("--auth-token jwt needs pub-key=...")?;
                let signing = private
                    .map(|p| EncodingKey::from_ec_pem(&p).map_err(|e| bad("priv-key", e)))
                    .transpose()?;
                let verifying = DecodingKey::from_ec_pem(&public).map_err(|e| bad("pub-key", e))?;
                (signing, verifying)
            }
            Algorithm::EdDSA => {
                let public = public.ok_or("--auth-token jwt needs pub-key=...")?;
                let signing = private
                    .map(|p| EncodingKey::from_ed_pem(&p).map_err(|e| bad("priv-key", e)))
                    .transpose()?;
                let verifying = DecodingKey::from_ed_pem(&public).map_err(|e| bad("pub-key", e))?;
                (signing, verifying)
            }
            _ => {
                let public = public.ok_or("--auth-token jwt needs pub-key=...")?;
                let signing = private
                    .map(|p| EncodingKey::from_rsa_pem(&p).map_err(|e| bad("priv-key", e)))
                    .transpose()?;
                let verifying =
                    DecodingKey::from_rsa_pem(&public).map_err(|e| bad("pub-key", e))?;
                (signing, verifying)
            }
        };
        Ok(JwtTokens {
            algorithm,
            signing,
            verifying,
            ttl,
        })
    }

    fn assign(&self, user: &str, revision: u64) -> Result<String, String> {
        let signing = self
            .signing
            .as_ref()
            .ok_or("auth: JWT token provider has no private key: it only verifies tokens")?;
        let claims = Claims {
            username: user.to_string(),
            revision,
            exp: unix_seconds() + self.ttl.as_secs(),
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, signing)
            .map_err(|e| format!("auth: failed to sign a JWT: {e}"))
    }

    fn info(&self, token: &str) -> Option<TokenInfo> {
        let mut validation = Validation::new(self.algorithm);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.verifying, &validation).ok()?;
        Some(TokenInfo {
            user: data.claims.username,
            revision: data.claims.revision,
        })
    }
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_tokens_expire_unless_used_and_are_dropped_per_user() {
        let tokens = Tokens::from_flag("simple", Duration::from_millis(200)).unwrap();
        let alice = tokens.assign("alice", 5).unwrap();
        let bob = tokens.assign("bob", 5).unwrap();
        let (random, suffix) = alice.split_once('.').unwrap();
        assert_eq!(random.len(), SIMPLE_TOKEN_LENGTH);
        assert!(suffix.parse::<u64>().is_ok());
        assert_eq!(
            tokens.info(&alice, 9),
            Some(TokenInfo {
                user: "alice".into(),
                revision: 9
            })
        );
        // Used within its lifetime, a token lives on.
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(100));
            assert!(tokens.info(&alice, 9).is_some());
        }
        assert_eq!(tokens.info(&bob, 9), None, "bob's token was not used");
        tokens.drop_user("alice");
        assert_eq!(tokens.info(&alice, 9), None);
        assert_eq!(tokens.info("made.up", 9), None);
    }

    #[test]
    fn token_flags_etcd_refuses() {
        assert!(Tokens::from_flag("opaque", Duration::from_secs(1)).is_err());
        assert!(Tokens::from_flag("jwt", Duration::from_secs(1)).is_err());
        assert!(Tokens::from_flag("jwt,sign-method=RS256", Duration::from_secs(1)).is_err());
        assert!(
            Tokens::from_flag("jwt,sign-method=XX1,pub-key=/x", Duration::from_secs(1)).is_err()
        );
    }

    #[test]
    fn hmac_jwts_carry_user_and_revision_and_reject_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, b"0123456789abcdef0123456789abcdef").unwrap();
        let spec = format!("jwt,priv-key={},sign-method=HS256,ttl=1m", secret.display());
        let tokens = Tokens::from_flag(&spec, Duration::from_secs(1)).unwrap();
        let token = tokens.assign("alice", 7).unwrap();
        assert_eq!(
            tokens.info(&token, 99),
            Some(TokenInfo {
                user: "alice".into(),
                revision: 7
            })
        );
        let mut forged = token.clone();
        forged.push('x');
        assert_eq!(tokens.info(&forged, 99), None);
    }
}
