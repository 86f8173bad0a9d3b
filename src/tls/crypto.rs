//! The cryptography TLS decryption needs, over RustCrypto's `aes-gcm`,
//! `chacha20poly1305`, `hkdf`, `hmac` and `sha2`: the TLS 1.3 key schedule's
//! HKDF-Expand-Label, the TLS 1.2 PRF, and AEAD opening of records.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha256,
    Sha384,
}

impl Hash {
    pub(crate) fn output_len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Alg {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20Poly1305,
}

impl Alg {
    pub(crate) fn key_len(self) -> usize {
        match self {
            Alg::Aes128Gcm => 16,
            Alg::Aes256Gcm | Alg::ChaCha20Poly1305 => 32,
        }
    }

    /// TLS 1.2: the implicit part of the nonce from the key block (RFC 5288: 4
    /// bytes, the other 8 travel in each record; RFC 7905: all 12, none travels).
    pub(crate) fn fixed_iv_len(self) -> usize {
        match self {
            Alg::Aes128Gcm | Alg::Aes256Gcm => 4,
            Alg::ChaCha20Poly1305 => 12,
        }
    }

    pub(crate) fn explicit_nonce_len(self) -> usize {
        12 - self.fixed_iv_len()
    }
}

/// A cipher suite: its IANA name and, if pgscope can decrypt it, how.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Suite {
    pub(crate) id: u16,
    pub(crate) name: &'static str,
    pub(crate) aead: Option<Alg>,
    pub(crate) hash: Hash,
}

macro_rules! suites {
    ($($id:literal $name:literal $aead:expr, $hash:ident;)*) => {
        const SUITES: &[Suite] = &[$(Suite { id: $id, name: $name, aead: $aead, hash: Hash::$hash }),*];
    };
}

use Alg::*;
// The (EC)DHE AEAD suites pgscope decrypts, and the commoner ones it does not (CBC,
// CCM, RSA key exchange), so they are reported by name.
suites! {
    0x1301 "TLS_AES_128_GCM_SHA256" Some(Aes128Gcm), Sha256;
    0x1302 "TLS_AES_256_GCM_SHA384" Some(Aes256Gcm), Sha384;
    0x1303 "TLS_CHACHA20_POLY1305_SHA256" Some(ChaCha20Poly1305), Sha256;
    0x1304 "TLS_AES_128_CCM_SHA256" None, Sha256;
    0x1305 "TLS_AES_128_CCM_8_SHA256" None, Sha256;
    0xc02b "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" Some(Aes128Gcm), Sha256;
    0xc02c "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" Some(Aes256Gcm), Sha384;
    0xc02f "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" Some(Aes128Gcm), Sha256;
    0xc030 "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" Some(Aes256Gcm), Sha384;
    0xcca8 "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" Some(ChaCha20Poly1305), Sha256;
    0xcca9 "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" Some(ChaCha20Poly1305), Sha256;
    0xccaa "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256" Some(ChaCha20Poly1305), Sha256;
    0x009e "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256" Some(Aes128Gcm), Sha256;
    0x009f "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384" Some(Aes256Gcm), Sha384;
    0x009c "TLS_RSA_WITH_AES_128_GCM_SHA256" None, Sha256;
    0x009d "TLS_RSA_WITH_AES_256_GCM_SHA384" None, Sha384;
    0x002f "TLS_RSA_WITH_AES_128_CBC_SHA" None, Sha256;
    0x0035 "TLS_RSA_WITH_AES_256_CBC_SHA" None, Sha256;
    0x003c "TLS_RSA_WITH_AES_128_CBC_SHA256" None, Sha256;
    0x003d "TLS_RSA_WITH_AES_256_CBC_SHA256" None, Sha256;
    0xc009 "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA" None, Sha256;
    0xc00a "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA" None, Sha256;
    0xc013 "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA" None, Sha256;
    0xc014 "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA" None, Sha256;
    0xc023 "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256" None, Sha256;
    0xc024 "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384" None, Sha384;
    0xc027 "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256" None, Sha256;
    0xc028 "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384" None, Sha384;
    0x0033 "TLS_DHE_RSA_WITH_AES_128_CBC_SHA" None, Sha256;
    0x0039 "TLS_DHE_RSA_WITH_AES_256_CBC_SHA" None, Sha256;
    0x000a "TLS_RSA_WITH_3DES_EDE_CBC_SHA" None, Sha256;
}

/// The suite with this code, if it is one pgscope knows by name.
pub(crate) fn suite(id: u16) -> Option<&'static Suite> {
    SUITES.iter().find(|s| s.id == id)
}

/// RFC 8446 §7.1 HKDF-Expand-Label.
pub(crate) fn expand_label(
    hash: Hash,
    secret: &[u8],
    label: &str,
    context: &[u8],
    len: usize,
) -> Vec<u8> {
    let full = 6 + label.len();
    let mut info = Vec::with_capacity(4 + full + context.len());
    info.extend_from_slice(&(len as u16).to_be_bytes());
    info.push(full as u8);
    info.extend_from_slice(b"tls13 ");
    info.extend_from_slice(label.as_bytes());
    info.push(context.len() as u8);
    info.extend_from_slice(context);
    let mut out = vec![0; len];
    // Secrets come from a key log: one of the wrong length gives no key (and the
    // record then fails to authenticate) rather than a panic.
    let ok = match hash {
        Hash::Sha256 => Hkdf::<Sha256>::from_prk(secret).map(|h| h.expand(&info, &mut out)),
        Hash::Sha384 => Hkdf::<Sha384>::from_prk(secret).map(|h| h.expand(&info, &mut out)),
    };
    if !matches!(ok, Ok(Ok(()))) {
        out.fill(0);
    }
    out
}

/// RFC 5246 §5 PRF: P_hash(secret, label + seed), `len` bytes.
pub(crate) fn prf(hash: Hash, secret: &[u8], label: &[u8], seed: &[u8], len: usize) -> Vec<u8> {
    match hash {
        Hash::Sha256 => p_hash::<Hmac<Sha256>>(secret, label, seed, len),
        Hash::Sha384 => p_hash::<Hmac<Sha384>>(secret, label, seed, len),
    }
}

fn p_hash<M: Mac + KeyInit + Clone>(
    secret: &[u8],
    label: &[u8],
    seed: &[u8],
    len: usize,
) -> Vec<u8> {
    // HMAC takes keys of any length.
    let key = <M as KeyInit>::new_from_slice(secret).expect("HMAC accepts any key length");
    let mut out = Vec::with_capacity(len + 64);
    // A(1) = HMAC(secret, label + seed); A(i+1) = HMAC(secret, A(i)).
    let mut a = key
        .clone()
        .chain_update(label)
        .chain_update(seed)
        .finalize()
        .into_bytes();
    while out.len() < len {
        let block = key
            .clone()
            .chain_update(&a)
            .chain_update(label)
            .chain_update(seed)
            .finalize()
            .into_bytes();
        out.extend_from_slice(&block);
        a = key.clone().chain_update(&a).finalize().into_bytes();
    }
    out.truncate(len);
    out
}

/// One direction's record protection key.
pub(crate) enum Cipher {
    Aes128(Box<Aes128Gcm>),
    Aes256(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
}

impl Cipher {
    /// `key` must be `alg.key_len()` bytes (the callers derive it so).
    pub(crate) fn new(alg: Alg, key: &[u8]) -> Option<Cipher> {
        Some(match alg {
            Alg::Aes128Gcm => Cipher::Aes128(Box::new(Aes128Gcm::new_from_slice(key).ok()?)),
            Alg::Aes256Gcm => Cipher::Aes256(Box::new(Aes256Gcm::new_from_slice(key).ok()?)),
            Alg::ChaCha20Poly1305 => {
                Cipher::ChaCha(Box::new(ChaCha20Poly1305::new_from_slice(key).ok()?))
            }
        })
    }

    /// Decrypts `buf` in place if it authenticates with `tag` (16 bytes).
    pub(crate) fn open(&self, nonce: &[u8; 12], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> bool {
        if tag.len() != 16 {
            return false;
        }
        let tag = aes_gcm::Tag::from_slice(tag);
        let nonce = aes_gcm::Nonce::from_slice(nonce);
        match self {
            Cipher::Aes128(c) => c.decrypt_in_place_detached(nonce, aad, buf, tag),
            Cipher::Aes256(c) => c.decrypt_in_place_detached(nonce, aad, buf, tag),
            Cipher::ChaCha(c) => c.decrypt_in_place_detached(nonce, aad, buf, tag),
        }
        .is_ok()
    }
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(<key>)")
    }
}
