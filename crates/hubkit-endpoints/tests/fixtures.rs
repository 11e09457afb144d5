//! Looks up and authorizes the captured requests of `fixtures/http`.

#[path = "../../../fixtures/http/request.rs"]
mod request;

use hubkit_endpoints::{
    Auth, AuthCheck, AuthError, CustomPath, PasswordSpec, PayloadFormat, Registry, Webhook,
    hash_password,
};
use request::Request;

const ALL_CASES: [&str; 13] = [
    "json-post",
    "json-post-basic-auth",
    "query-get",
    "json-post-chunked",
    "query-repeated-keys",
    "query-invalid-utf8",
    "json-invalid",
    "json-charset-utf8",
    "json-text-plain",
    "json-no-content-type",
    "json-bom",
    "basic-wrong-password",
    "basic-password-colon",
];

fn registry(auth: Auth) -> Registry {
    let path = CustomPath::parse("sensor-data").expect("path is valid");
    let webhook = Webhook::new("sensor-data", path, PayloadFormat::Json, auth);
    Registry::new(vec![webhook]).expect("webhook is valid")
}

fn basic(password: PasswordSpec) -> Auth {
    Auth::Basic {
        username: "username".to_owned(),
        password,
    }
}

/// Authorizes a fixture, running argon2 when the endpoint returns `AuthCheck::Verify`.
fn authorize(registry: &Registry, case: &str) -> Result<(), AuthError> {
    let request = Request::load(case);
    let endpoint = registry
        .lookup(request.webhook_path())
        .expect("fixture path is registered");
    match endpoint.authorize(request.header("authorization")) {
        AuthCheck::Allowed => Ok(()),
        AuthCheck::Denied(err) => Err(err),
        AuthCheck::Verify(pending) => pending.verify(),
    }
}

/// Returns whether a fixture gets its result without an argon2 run.
fn is_immediate(registry: &Registry, case: &str) -> bool {
    let request = Request::load(case);
    let endpoint = registry
        .lookup(request.webhook_path())
        .expect("fixture path is registered");
    !matches!(
        endpoint.authorize(request.header("authorization")),
        AuthCheck::Verify(_)
    )
}

#[test]
fn fixture_paths_are_found() {
    let registry = registry(Auth::None);
    for case in ALL_CASES {
        assert_eq!(authorize(&registry, case), Ok(()), "{case}");
    }
}

#[test]
fn fixture_clear_password_checks() {
    let registry = registry(basic(PasswordSpec::Clear("password".to_owned())));
    let cases = [
        ("json-post-basic-auth", Ok(())),
        ("basic-wrong-password", Err(AuthError::WrongCredentials)),
        ("basic-password-colon", Err(AuthError::WrongCredentials)),
        ("json-post", Err(AuthError::MissingHeader)),
    ];
    for (case, expected) in cases {
        assert_eq!(authorize(&registry, case), expected, "{case}");
    }
}

#[test]
fn fixture_password_with_colon_verifies() {
    let phc = hash_password("pass:word!").expect("hashing succeeds");
    let registry = registry(basic(PasswordSpec::Phc(phc)));
    let cases = [
        ("basic-password-colon", Ok(())),
        ("json-post-basic-auth", Err(AuthError::WrongCredentials)),
        ("basic-wrong-password", Err(AuthError::WrongCredentials)),
    ];
    for (case, expected) in cases {
        assert!(!is_immediate(&registry, case), "{case} needs argon2 first");
        assert_eq!(authorize(&registry, case), expected, "{case}");
        assert!(is_immediate(&registry, case), "{case} is cached");
        assert_eq!(
            authorize(&registry, case),
            expected,
            "{case} from the cache"
        );
    }
}
