use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::{Digest as _, Sha256};

use super::{AuthCheck, AuthError, MAX_REJECTED_DIGESTS, Verifier};
use crate::test_support::cheap_hash;
use crate::{Auth, PasswordSpec};

const USERNAME: &str = "username";
const PASSWORD: &str = "pass:word!";

fn basic_header(credentials: &str) -> Vec<u8> {
    format!("Basic {}", STANDARD.encode(credentials)).into_bytes()
}

fn verifier(password: PasswordSpec) -> Verifier {
    let auth = Auth::Basic {
        username: USERNAME.to_owned(),
        password,
    };
    Verifier::new("sensor-data", &auth).expect("random key is available")
}

fn clear_verifier() -> Verifier {
    verifier(PasswordSpec::Clear(PASSWORD.to_owned()))
}

fn hashed_verifier() -> Verifier {
    verifier(PasswordSpec::Phc(cheap_hash(PASSWORD)))
}

/// Returns the result of an immediate check, or `None` when argon2 must run.
fn immediate(check: AuthCheck) -> Option<Result<(), AuthError>> {
    match check {
        AuthCheck::Allowed => Some(Ok(())),
        AuthCheck::Denied(err) => Some(Err(err)),
        AuthCheck::Verify(_) => None,
    }
}

/// Runs the check to the end, verifying with argon2 when needed.
fn complete(check: AuthCheck) -> Result<(), AuthError> {
    match check {
        AuthCheck::Allowed => Ok(()),
        AuthCheck::Denied(err) => Err(err),
        AuthCheck::Verify(pending) => pending.verify(),
    }
}

#[test]
fn open_allows_any_header() {
    let open = Verifier::new("open", &Auth::None).expect("no key is needed");
    for header in [None, Some(&b"Bearer token"[..]), Some(b"Basic !!!")] {
        assert_eq!(
            immediate(open.authorize(header)),
            Some(Ok(())),
            "{header:?}"
        );
    }
}

#[test]
fn clear_allows_right_credentials() {
    let header = basic_header("username:pass:word!");
    assert_eq!(
        immediate(clear_verifier().authorize(Some(&header))),
        Some(Ok(()))
    );
}

#[test]
fn clear_denies_wrong_credentials() {
    let verifier = clear_verifier();
    for credentials in ["username:wrong", "someone:pass:word!", "username:pass", ":"] {
        let header = basic_header(credentials);
        assert_eq!(
            immediate(verifier.authorize(Some(&header))),
            Some(Err(AuthError::WrongCredentials)),
            "{credentials:?}"
        );
    }
}

#[test]
fn header_parsing_variants() {
    let encoded = STANDARD.encode("username:pass:word!");
    let unpadded = STANDARD_NO_PAD.encode("username:pass:word!");
    assert_ne!(encoded, unpadded, "the test needs a value with padding");
    let accepted = [
        format!("Basic {encoded}"),
        format!("basic {encoded}"),
        format!("BASIC {encoded}"),
        format!("Basic {unpadded}"),
        format!("Basic   {encoded}  "),
    ];
    let verifier = clear_verifier();
    for header in accepted {
        let check = verifier.authorize(Some(header.as_bytes()));
        assert_eq!(immediate(check), Some(Ok(())), "{header:?}");
    }
}

#[test]
fn header_parsing_errors() {
    let not_utf8 = format!("Basic {}", STANDARD.encode(b"user\xFF:password"));
    let no_colon = format!("Basic {}", STANDARD.encode("usernamepassword"));
    let cases: [(&[u8], AuthError); 8] = [
        (b"Bearer abc", AuthError::NotBasic),
        (b"Digest username=\"x\"", AuthError::NotBasic),
        (b"B\xFFsic abc", AuthError::NotBasic),
        (b"Basic", AuthError::InvalidBase64),
        (b"Basic ", AuthError::InvalidBase64),
        (b"Basic !!!!", AuthError::InvalidBase64),
        (not_utf8.as_bytes(), AuthError::NotUtf8),
        (no_colon.as_bytes(), AuthError::MissingColon),
    ];
    let verifier = clear_verifier();
    for (header, expected) in cases {
        let check = verifier.authorize(Some(header));
        assert_eq!(immediate(check), Some(Err(expected)), "{header:?}");
    }
}

#[test]
fn missing_header_is_denied() {
    assert_eq!(
        immediate(clear_verifier().authorize(None)),
        Some(Err(AuthError::MissingHeader))
    );
    assert_eq!(
        immediate(hashed_verifier().authorize(None)),
        Some(Err(AuthError::MissingHeader))
    );
}

#[test]
fn hashed_success_is_cached() {
    let verifier = hashed_verifier();
    let header = basic_header("username:pass:word!");
    let first = verifier.authorize(Some(&header));
    assert!(matches!(first, AuthCheck::Verify(_)), "{first:?}");
    assert_eq!(complete(first), Ok(()));
    assert_eq!(immediate(verifier.authorize(Some(&header))), Some(Ok(())));
}

#[test]
fn hashed_failure_is_cached() {
    let verifier = hashed_verifier();
    for credentials in ["username:wrong-password", "someone:pass:word!"] {
        let header = basic_header(credentials);
        let first = verifier.authorize(Some(&header));
        assert!(matches!(first, AuthCheck::Verify(_)), "{first:?}");
        assert_eq!(complete(first), Err(AuthError::WrongCredentials));
        assert_eq!(
            immediate(verifier.authorize(Some(&header))),
            Some(Err(AuthError::WrongCredentials)),
            "{credentials:?}"
        );
    }
}

#[test]
fn hashed_cache_holds_keyed_digest() {
    let verifier = hashed_verifier();
    let credentials = "username:pass:word!";
    let check = verifier.authorize(Some(&basic_header(credentials)));
    assert_eq!(complete(check), Ok(()));
    let Verifier::Hashed(hashed) = &verifier else {
        panic!("a PHC password builds a hashed verifier");
    };
    let cached = hashed.lock_cache().verified.expect("success is cached");
    let unkeyed: [u8; 32] = Sha256::digest(credentials).into();
    assert_ne!(cached, unkeyed);
}

#[test]
fn hashed_rejections_are_bounded() {
    let verifier = hashed_verifier();
    let first = basic_header("username:wrong-0");
    for attempt in 0..=MAX_REJECTED_DIGESTS {
        let header = basic_header(&format!("username:wrong-{attempt}"));
        assert_eq!(
            complete(verifier.authorize(Some(&header))),
            Err(AuthError::WrongCredentials)
        );
    }
    let Verifier::Hashed(hashed) = &verifier else {
        panic!("a PHC password builds a hashed verifier");
    };
    assert_eq!(hashed.lock_cache().rejected.len(), MAX_REJECTED_DIGESTS);
    let evicted = verifier.authorize(Some(&first));
    assert!(matches!(evicted, AuthCheck::Verify(_)), "{evicted:?}");
}

#[test]
fn unusable_hash_is_not_cached() {
    let verifier = verifier(PasswordSpec::Phc("not-a-hash".to_owned()));
    let header = basic_header("username:pass:word!");
    assert_eq!(
        complete(verifier.authorize(Some(&header))),
        Err(AuthError::WrongCredentials)
    );
    let again = verifier.authorize(Some(&header));
    assert!(matches!(again, AuthCheck::Verify(_)), "{again:?}");
}

#[test]
fn pending_debug_hides_credentials() {
    let check = hashed_verifier().authorize(Some(&basic_header("username:pass:word!")));
    let AuthCheck::Verify(pending) = check else {
        panic!("uncached credentials need argon2");
    };
    let debug = format!("{pending:?}");
    assert_eq!(
        debug,
        "PendingVerification { webhook: \"sensor-data\", .. }"
    );
}

#[test]
fn auth_error_slugs_are_distinct() {
    let errors = [
        AuthError::MissingHeader,
        AuthError::NotBasic,
        AuthError::InvalidBase64,
        AuthError::NotUtf8,
        AuthError::MissingColon,
        AuthError::WrongCredentials,
    ];
    let mut slugs: Vec<&str> = errors.iter().map(|err| err.problem_slug()).collect();
    slugs.sort_unstable();
    slugs.dedup();
    assert_eq!(slugs.len(), errors.len());
}
