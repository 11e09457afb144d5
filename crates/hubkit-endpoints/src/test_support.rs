use argon2::password_hash::SaltString;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};

/// Hashes `password` with the smallest argon2id costs, so tests stay fast in debug
/// builds. The salt is fixed, which real hashes must never do.
pub(crate) fn cheap_hash(password: &str) -> String {
    let params = Params::new(Params::MIN_M_COST, 1, 1, None).expect("minimum costs are valid");
    let salt = SaltString::encode_b64(b"fixed test salt!").expect("16 bytes is a valid salt");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .expect("hashing with valid parameters succeeds")
        .to_string()
}
