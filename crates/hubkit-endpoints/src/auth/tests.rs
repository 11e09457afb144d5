use argon2::{PasswordHash, PasswordVerifier};

use super::{
    Auth, PasswordSpec, hash_password, validate_clear_password, validate_password_hash,
    validate_username,
};
use crate::EndpointError;
use crate::test_support::cheap_hash;

#[test]
fn username_accepts_four_characters() {
    for username in ["user", "username", "ユーザ名", "user name"] {
        assert_eq!(validate_username(username), Ok(()), "{username:?}");
    }
}

#[test]
fn username_length_counts_characters() {
    let cases = [("", 0), ("abc", 3), ("äöü", 3)];
    for (username, length) in cases {
        assert_eq!(
            validate_username(username),
            Err(EndpointError::UsernameLength {
                username: username.to_owned(),
                length
            }),
            "{username:?}"
        );
    }
}

#[test]
fn username_rejects_colon() {
    let err = validate_username("user:name").expect_err("colon is not allowed");
    assert_eq!(
        err.to_string(),
        "username \"user:name\" contains ':'; remove it, because Basic authentication \
         (RFC 7617) ends the username at the first ':'"
    );
}

#[test]
fn username_rejects_control_characters() {
    let cases = [
        ("user\nname", '\n', 5),
        ("\u{7f}user", '\u{7f}', 1),
        ("user\0", '\0', 5),
    ];
    for (username, character, position) in cases {
        assert_eq!(
            validate_username(username),
            Err(EndpointError::UsernameControl {
                character,
                position
            }),
            "{username:?}"
        );
    }
}

#[test]
fn clear_password_length_counts_characters() {
    assert_eq!(validate_clear_password("12345678"), Ok(()));
    assert_eq!(
        validate_clear_password("1234567"),
        Err(EndpointError::PasswordLength)
    );
    assert_eq!(
        validate_clear_password("ééééééé"),
        Err(EndpointError::PasswordLength)
    );
}

#[test]
fn password_hash_accepts_argon2_variants() {
    let hash = cheap_hash("password");
    assert_eq!(validate_password_hash(&hash), Ok(()));
    let argon2i = hash.replacen("$argon2id$", "$argon2i$", 1);
    assert_eq!(validate_password_hash(&argon2i), Ok(()));
}

#[test]
fn password_hash_rejects_other_algorithm() {
    let hash = cheap_hash("password").replacen("$argon2id$", "$scrypt$", 1);
    assert_eq!(
        validate_password_hash(&hash),
        Err(EndpointError::UnsupportedPasswordHash {
            algorithm: "scrypt".to_owned()
        })
    );
}

#[test]
fn password_hash_rejects_malformed() {
    let hash = cheap_hash("password");
    let (without_output, _) = hash.rsplit_once('$').expect("PHC has an output field");
    let cases = [
        "not-a-hash".to_owned(),
        String::new(),
        without_output.to_owned(),
        hash.replacen("m=8,", "m=1,", 1),
        hash.replacen("v=19", "v=18", 1),
        hash.replacen("t=1", "x=1", 1),
        format!("{hash}$extra"),
    ];
    for phc in cases {
        let result = validate_password_hash(&phc);
        assert!(
            matches!(result, Err(EndpointError::InvalidPasswordHash { .. })),
            "{phc:?} gave {result:?}"
        );
    }
}

#[test]
fn password_hash_error_omits_hash() {
    let hash = cheap_hash("password").replacen("m=8,", "m=1,", 1);
    let err = validate_password_hash(&hash).expect_err("m=1 is below the minimum");
    let (_, output) = hash.rsplit_once('$').expect("PHC has an output field");
    assert!(!err.to_string().contains(output), "{err}");
}

#[test]
fn hash_password_makes_verifiable_argon2id() {
    let phc = hash_password("correct horse").expect("hashing succeeds");
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    assert_eq!(validate_password_hash(&phc), Ok(()));
    let parsed = PasswordHash::new(&phc).expect("PHC parses");
    let verified = argon2::Argon2::default().verify_password(b"correct horse", &parsed);
    assert!(verified.is_ok());
}

#[test]
fn hash_password_rejects_short_password() {
    assert_eq!(hash_password("short"), Err(EndpointError::PasswordLength));
}

#[test]
fn password_spec_debug_hides_value() {
    let clear = format!("{:?}", PasswordSpec::Clear("secret-password".to_owned()));
    assert_eq!(clear, "Clear(<redacted>)");
    let phc = format!("{:?}", PasswordSpec::Phc(cheap_hash("password")));
    assert_eq!(phc, "Phc(<redacted>)");
}

#[test]
fn auth_validate_checks_both_fields() {
    let short_user = Auth::Basic {
        username: "bob".to_owned(),
        password: PasswordSpec::Clear("long enough".to_owned()),
    };
    assert!(matches!(
        short_user.validate(),
        Err(EndpointError::UsernameLength { .. })
    ));
    let short_password = Auth::Basic {
        username: "username".to_owned(),
        password: PasswordSpec::Clear("short".to_owned()),
    };
    assert_eq!(
        short_password.validate(),
        Err(EndpointError::PasswordLength)
    );
    assert_eq!(Auth::None.validate(), Ok(()));
}
