//! The vault: the one owner of Password fields, which Frappe keeps in `__Auth` (a Fernet token
//! for secrets, a passlib hash for login passwords). Reading, writing, decrypting and
//! re-keying them happens here and nowhere else; an empty ciphertext is never stored.

use diesel::prelude::*;
use secrecy::{ExposeSecret, SecretString};

use super::{KeyRing, Keys, SecretsError};
use crate::db::schema::{auth, ca_token_extra};
use crate::db::DbConnection;
use crate::error::{AppError, AppResult};

/// Encrypts and decrypts `__Auth` values: the running service's [`Keys`], or a [`KeyRing`]
/// (another site's keys during an import, the new ring during a rotation).
pub trait Cipher: Sync {
    fn encrypt(&self, cleartext: &str) -> Result<String, SecretsError>;
    fn decrypt(&self, token: &str) -> Result<SecretString, SecretsError>;
}

impl Cipher for Keys {
    fn encrypt(&self, cleartext: &str) -> Result<String, SecretsError> {
        Keys::encrypt(self, cleartext)
    }
    fn decrypt(&self, token: &str) -> Result<SecretString, SecretsError> {
        Keys::decrypt(self, token)
    }
}

impl Cipher for KeyRing {
    fn encrypt(&self, cleartext: &str) -> Result<String, SecretsError> {
        Ok(KeyRing::encrypt(self, cleartext))
    }
    fn decrypt(&self, token: &str) -> Result<SecretString, SecretsError> {
        KeyRing::decrypt(self, token)
    }
}

/// A stored `__Auth` value as it is: a Fernet token (`encrypted`) or a plain value (a login
/// password's hash).
#[derive(Clone, PartialEq, Eq)]
pub struct Stored {
    pub value: String,
    pub encrypted: bool,
}

impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stored")
            .field("value", &"<redacted>")
            .field("encrypted", &self.encrypted)
            .finish()
    }
}

/// A Fernet token the vault made: never empty.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(String);

impl Sealed {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealed(<redacted>)")
    }
}

/// The Password fields of documents, through one set of keys.
#[derive(Clone, Copy)]
pub struct Vault<'k> {
    cipher: &'k dyn Cipher,
}

impl<'k> Vault<'k> {
    pub fn new(cipher: &'k dyn Cipher) -> Self {
        Self { cipher }
    }

    /// Encrypts a value kept at rest outside `__Auth` (a PKCE verifier).
    pub fn seal(&self, cleartext: &str) -> AppResult<Sealed> {
        let token = self.cipher.encrypt(cleartext).map_err(AppError::internal)?;
        if token.is_empty() {
            return Err(AppError::internal(
                "encryption produced an empty ciphertext",
            ));
        }
        Ok(Sealed(token))
    }

    /// Decrypts a sealed value.
    pub fn open(&self, token: &str) -> Result<SecretString, SecretsError> {
        self.cipher.decrypt(token)
    }

    /// The cleartext of a document's Password field (`None` when unset).
    pub fn read(
        &self,
        conn: &mut DbConnection,
        doctype: &str,
        name: &str,
        field: &str,
    ) -> AppResult<Option<SecretString>> {
        let Some(stored) = stored(conn, doctype, name, field)? else {
            return Ok(None);
        };
        self.reveal(doctype, name, field, stored).map(Some)
    }

    /// The cleartext of a stored value read by another query; a value that does not decrypt
    /// with this site's keys is Frappe's 417.
    pub fn reveal(
        &self,
        doctype: &str,
        name: &str,
        field: &str,
        stored: Stored,
    ) -> AppResult<SecretString> {
        if !stored.encrypted {
            return Ok(SecretString::from(stored.value));
        }
        match self.cipher.decrypt(&stored.value) {
            Ok(v) => Ok(v),
            Err(SecretsError::KeysUnavailable) => {
                Err(AppError::internal(SecretsError::KeysUnavailable))
            }
            Err(_) => Err(AppError::validation(format!(
                "The stored {field} of {doctype} {name} cannot be decrypted with this site's key."
            ))),
        }
    }

    /// Encrypts `cleartext` and stores it as the field's value.
    pub fn write(
        &self,
        conn: &mut DbConnection,
        doctype: &str,
        name: &str,
        field: &str,
        cleartext: &str,
    ) -> AppResult<()> {
        let token = self.seal(cleartext)?;
        write_sealed(conn, doctype, name, field, &token)
    }
}

/// A field's stored value, as it is (`None` when unset).
pub fn stored(
    conn: &mut DbConnection,
    doctype: &str,
    name: &str,
    field: &str,
) -> AppResult<Option<Stored>> {
    let row: Option<(String, i32)> = auth::table
        .filter(auth::doctype.eq(doctype))
        .filter(auth::name.eq(name))
        .filter(auth::fieldname.eq(field))
        .select((auth::password, auth::encrypted))
        .first(conn)
        .optional()?;
    Ok(row.map(|(value, encrypted)| Stored {
        value,
        encrypted: encrypted != 0,
    }))
}

/// Stores a login password's hash (kept unencrypted, as Frappe keeps it).
pub fn write_hash(
    conn: &mut DbConnection,
    doctype: &str,
    name: &str,
    field: &str,
    hash: &str,
) -> AppResult<()> {
    put(conn, doctype, name, field, hash, false)
}

/// Stores a value the vault encrypted earlier (outside the transaction that stores it).
pub fn write_sealed(
    conn: &mut DbConnection,
    doctype: &str,
    name: &str,
    field: &str,
    token: &Sealed,
) -> AppResult<()> {
    put(conn, doctype, name, field, token.as_str(), true)
}

/// Inserts or replaces a row of `__Auth`.
fn put(
    conn: &mut DbConnection,
    doctype: &str,
    name: &str,
    field: &str,
    value: &str,
    encrypted: bool,
) -> AppResult<()> {
    let enc = i32::from(encrypted);
    let updated = diesel::update(
        auth::table
            .filter(auth::doctype.eq(doctype))
            .filter(auth::name.eq(name))
            .filter(auth::fieldname.eq(field)),
    )
    .set((auth::password.eq(value), auth::encrypted.eq(enc)))
    .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(auth::table)
            .values((
                auth::doctype.eq(doctype),
                auth::name.eq(name),
                auth::fieldname.eq(field),
                auth::password.eq(value),
                auth::encrypted.eq(enc),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Removes a field's value.
pub fn remove(conn: &mut DbConnection, doctype: &str, name: &str, field: &str) -> AppResult<()> {
    diesel::delete(
        auth::table
            .filter(auth::doctype.eq(doctype))
            .filter(auth::name.eq(name))
            .filter(auth::fieldname.eq(field)),
    )
    .execute(conn)?;
    Ok(())
}

/// Removes every Password field of a document (it is being deleted).
pub fn remove_all(conn: &mut DbConnection, doctype: &str, name: &str) -> AppResult<()> {
    diesel::delete(
        auth::table
            .filter(auth::doctype.eq(doctype))
            .filter(auth::name.eq(name)),
    )
    .execute(conn)?;
    Ok(())
}

/// Re-encrypts every encrypted value under `ring`'s primary key, in one transaction; fails,
/// changing nothing, when a value does not decrypt with any key of the ring.
pub fn rekey_all(conn: &mut DbConnection, ring: &KeyRing) -> AppResult<usize> {
    crate::db::write_transaction(conn, |conn| {
        let mut n = 0;
        for (doctype, name, field, stored) in encrypted_rows(conn)? {
            let clear = ring.decrypt(&stored).map_err(|_| {
                AppError::validation(format!(
                    "{doctype} {name} {field} does not decrypt with the current keys"
                ))
            })?;
            let fresh = Vault::new(ring).seal(clear.expose_secret())?;
            diesel::update(
                auth::table
                    .filter(auth::doctype.eq(&doctype))
                    .filter(auth::name.eq(&name))
                    .filter(auth::fieldname.eq(&field)),
            )
            .set(auth::password.eq(fresh.as_str()))
            .execute(conn)?;
            n += 1;
        }
        Ok(n + rekey_token_extras(conn, ring, false)?)
    })
}

/// Re-encrypts the values `ring`'s primary key cannot read yet (written by a service that had
/// not noticed the rotation); a value changed meanwhile is left to the next pass.
pub fn rekey_stale(conn: &mut DbConnection, ring: &KeyRing) -> AppResult<usize> {
    let mut n = 0;
    for (doctype, name, field, stored) in encrypted_rows(conn)?
        .into_iter()
        .filter(|r| !ring.is_current(&r.3))
    {
        let Ok(clear) = ring.decrypt(&stored) else {
            continue;
        };
        let fresh = Vault::new(ring).seal(clear.expose_secret())?;
        diesel::update(
            auth::table
                .filter(auth::doctype.eq(&doctype))
                .filter(auth::name.eq(&name))
                .filter(auth::fieldname.eq(&field))
                .filter(auth::password.eq(&stored)),
        )
        .set(auth::password.eq(fresh.as_str()))
        .execute(conn)?;
        n += 1;
    }
    Ok(n + rekey_token_extras(conn, ring, true)?)
}

/// Re-encrypts the sealed token extras (`ca_token_extra`, see `oauth::token_extra`) under
/// `ring`'s primary key (`stale_only`: those it cannot read yet). They are not Password fields:
/// one that decrypts with no key of the ring is dropped, never a reason to fail the rotation
/// (the provider's next token answer brings it again). A value changed meanwhile is left alone.
fn rekey_token_extras(
    conn: &mut DbConnection,
    ring: &KeyRing,
    stale_only: bool,
) -> AppResult<usize> {
    let rows: Vec<(String, Option<String>)> = ca_token_extra::table
        .filter(ca_token_extra::extra.is_not_null())
        .select((ca_token_extra::token_cache, ca_token_extra::extra))
        .load(conn)?;
    let mut n = 0;
    for (name, stored) in rows {
        let Some(stored) = stored else { continue };
        if stale_only && ring.is_current(&stored) {
            continue;
        }
        let fresh = match ring.decrypt(&stored) {
            Ok(clear) => Some(Vault::new(ring).seal(clear.expose_secret())?.into_string()),
            Err(_) => None,
        };
        diesel::update(
            ca_token_extra::table
                .filter(ca_token_extra::token_cache.eq(&name))
                .filter(ca_token_extra::extra.eq(&stored)),
        )
        .set(ca_token_extra::extra.eq(fresh))
        .execute(conn)?;
        n += 1;
    }
    Ok(n)
}

/// `(doctype, name, field, token)` of every encrypted value.
fn encrypted_rows(conn: &mut DbConnection) -> AppResult<Vec<(String, String, String, String)>> {
    Ok(auth::table
        .filter(auth::encrypted.eq(1))
        .select((auth::doctype, auth::name, auth::fieldname, auth::password))
        .load(conn)?)
}
