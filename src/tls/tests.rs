//! Table tests against RFC 8448's example trace (§3, a simple 1-RTT handshake with
//! TLS_AES_128_GCM_SHA256) and the published TLS 1.2 PRF vector.

use super::conn::hex;
use super::crypto::{self, Alg, Hash};
use super::*;
use crate::pgwire::Dir;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const CLIENT_RANDOM: &str = "cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7";
const CHTS: &str = "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21";
const SHTS: &str = "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38";
const CATS: &str = "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5";
const SATS: &str = "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643";

const CLIENT_HELLO: &str = "16030100c4010000c00303cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7000006130113031302010000910000000b0009000006736572766572ff01000100000a00140012001d0017001800190100010101020103010400230000003300260024001d002099381de560e4bd43d23d8e435a7dbafeb3c06e51c13cae4d5413691e529aaf2c002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202002d00020101001c00024001";
const SERVER_HELLO: &str = "160303005a020000560303a6af06a4121860dc5e6e60249cd34c95930c8ac5cb1434dac155772ed3e2692800130100002e00330024001d0020c9828876112095fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e751f0f002b00020304";
/// EncryptedExtensions, Certificate, CertificateVerify, Finished under the server's
/// handshake key.
const SERVER_FLIGHT: &str = "17030302a2d1ff334a56f5bff6594a07cc87b580233f500f45e489e7f33af35edf7869fcf40aa40aa2b8ea73f848a7ca07612ef9f945cb960b4068905123ea78b111b429ba9191cd05d2a389280f526134aadc7fc78c4b729df828b5ecf7b13bd9aefb0e57f271585b8ea9bb355c7c79020716cfb9b1183ef3ab20e37d57a6b9d7477609aee6e122a4cf51427325250c7d0e509289444c9b3a648f1d71035d2ed65b0e3cdd0cbae8bf2d0b227812cbb360987255cc744110c453baa4fcd610928d809810e4b7ed1a8fd991f06aa6248204797e36a6a73b70a2559c09ead686945ba246ab66e5edd8044b4c6de3fcf2a89441ac66272fd8fb330ef8190579b3684596c960bd596eea520a56a8d650f563aad27409960dca63d3e688611ea5e22f4415cf9538d51a200c27034272968a264ed6540c84838d89f72c24461aad6d26f59ecaba9acbbb317b66d902f4f292a36ac1b639c637ce343117b659622245317b49eeda0c6258f100d7d961ffb138647e92ea330faeea6dfa31c7a84dc3bd7e1b7a6c7178af36879018e3f252107f243d243dc7339d5684c8b0378bf30244da8c87c843f5e56eb4c5e8280a2b48052cf93b16499a66db7cca71e4599426f7d461e66f99882bd89fc50800becca62d6c74116dbd2972fda1fa80f85df881edbe5a37668936b335583b599186dc5c6918a396fa48a181d6b6fa4f9d62d513afbb992f2b992f67f8afe67f76913fa388cb5630c8ca01e0c65d11c66a1e2ac4c85977b7c7a6999bbf10dc35ae69f5515614636c0b9b68c19ed2e31c0b3b66763038ebba42f3b38edc0399f3a9f23faa63978c317fc9fa66a73f60f0504de93b5b845e275592c12335ee340bbc4fddd502784016e4b3be7ef04dda49f4b440a30cb5d2af939828fd4ae3794e44f94df5a631ede42c1719bfdabf0253fe5175be898e750edc53370d2b";
const CLIENT_FINISHED: &str = "170303003575ec4dc238cce60b298044a71e219c56cc77b0517fe9b93c7a4bfc44d87f38f80338ac98fc46deb384bd1caeacab6867d726c40546";
const CLIENT_DATA: &str = "1703030043a23f7054b62c94d0affafe8228ba55cbefacea42f914aa66bcab3f2b9819a8a5b46b395bd54a9a20441e2b62974e1f5a6292a2977014bd1e3deae63aeebb21694915e4";
const CLIENT_ALERT: &str = "1703030013c9872760655666b74d7ff1153efd6db6d0b0e3";
/// The server's second record under its application key (the first, a
/// NewSessionTicket, is not in the trace used here).
const SERVER_DATA: &str = "17030300432e937e11ef4ac740e538ad36005fc4a46932fc3225d05f82aa1b36e30efaf97d90e6dffc602dcb501a59a8fcc49c4bf2e5f0a21c0047c2abf332540dd032e167c2955d";
const NOTHING: [Vec<u8>; 2] = [Vec::new(), Vec::new()];

/// Both sides' application data: 00 01 02 … 31.
fn payload() -> Vec<u8> {
    (0..50).collect()
}

fn keylog(lines: &[(&str, &str)]) -> KeyLog {
    let mut log = KeyLog::default();
    for (label, secret) in lines {
        log.add_text(format!("{label} {CLIENT_RANDOM} {secret}\n").as_bytes());
    }
    log
}

fn rfc8448_log() -> KeyLog {
    keylog(&[
        ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", CHTS),
        ("SERVER_HANDSHAKE_TRAFFIC_SECRET", SHTS),
        ("CLIENT_TRAFFIC_SECRET_0", CATS),
        ("SERVER_TRAFFIC_SECRET_0", SATS),
    ])
}

/// A complete key log; `wait` > 0 plays one that is still being written.
struct Log(KeyLog, i64);

impl KeySource for Log {
    fn secrets(&mut self, r: &[u8; 32]) -> Option<&Secrets> {
        self.0.get(r)
    }
    fn wait_ns(&self) -> i64 {
        self.1
    }
}

#[derive(Debug, Default, PartialEq)]
struct Seen {
    plain: [Vec<u8>; 2],
    anomalies: Vec<(Problem, String)>,
}

/// Feeds (direction, record hex) in order, each cut into `chunk`-byte pieces.
fn run(conn: &mut Conn, keys: &mut Log, feed: &[(Dir, &str)], chunk: usize) -> Seen {
    let mut seen = Seen::default();
    for (dir, hex) in feed {
        for piece in unhex(hex).chunks(chunk) {
            conn.feed(*dir, piece, 0, keys, &mut |o| match o {
                Out::Plain(d, p) => seen.plain[d as usize].extend_from_slice(p),
                Out::Anomaly(_, p, m) => seen.anomalies.push((p, m)),
            });
        }
    }
    conn.close(0, keys, &mut |o| {
        if let Out::Anomaly(_, p, m) = o {
            seen.anomalies.push((p, m))
        }
    });
    seen
}

const TRACE: &[(Dir, &str)] = &[
    (Dir::Frontend, CLIENT_HELLO),
    (Dir::Backend, SERVER_HELLO),
    (Dir::Backend, SERVER_FLIGHT),
    (Dir::Frontend, CLIENT_FINISHED),
    (Dir::Frontend, CLIENT_DATA),
    (Dir::Frontend, CLIENT_ALERT),
];

#[test]
fn rfc8448_key_schedule() {
    let h = Hash::Sha256;
    // (secret, key, iv) as RFC 8448 §3 derives them.
    for (secret, key, iv) in [
        (
            SHTS,
            "3fce516009c21727d0f2e4e86ee403bc",
            "5d313eb2671276ee13000b30",
        ),
        (
            CHTS,
            "dbfaa693d1762c5b666af5d950258d01",
            "5bd3c71b836e0b76bb73265f",
        ),
        (
            SATS,
            "9f02283b6c9c07efc26bb9f2ac92e356",
            "cf782b88dd83549aadf1e984",
        ),
        (
            CATS,
            "17422dda596ed5d9acd890e3c63f5051",
            "5b78923dee08579033e523d9",
        ),
    ] {
        let s = unhex(secret);
        assert_eq!(crypto::expand_label(h, &s, "key", &[], 16), unhex(key));
        assert_eq!(crypto::expand_label(h, &s, "iv", &[], 12), unhex(iv));
    }
}

#[test]
fn rfc8448_records_decrypt_whole_or_in_pieces() {
    for chunk in [usize::MAX, 700, 5, 1] {
        let mut conn = Conn::new();
        let seen = run(&mut conn, &mut Log(rfc8448_log(), 0), TRACE, chunk);
        assert_eq!(seen.anomalies, [], "chunk {chunk}");
        assert_eq!(
            seen.plain[Dir::Frontend as usize],
            payload(),
            "chunk {chunk}"
        );
        assert_eq!(seen.plain[Dir::Backend as usize], b"", "chunk {chunk}");
        assert_eq!(conn.info.version, Some("1.3"));
        assert_eq!(conn.info.cipher.as_deref(), Some("TLS_AES_128_GCM_SHA256"));
        assert!(conn.info.decrypted);
    }
}

#[test]
fn rfc8448_server_application_record() {
    // Under the server's application key at sequence number 1 (RFC 8448 §3).
    let s = unhex(SATS);
    let key = crypto::expand_label(Hash::Sha256, &s, "key", &[], 16);
    let mut nonce: [u8; 12] = crypto::expand_label(Hash::Sha256, &s, "iv", &[], 12)
        .try_into()
        .unwrap();
    nonce[11] ^= 1;
    let rec = unhex(SERVER_DATA);
    let cipher = crypto::Cipher::new(Alg::Aes128Gcm, &key).unwrap();
    let (ct, tag) = rec[5..].split_at(rec.len() - 5 - 16);
    let mut buf = ct.to_vec();
    assert!(cipher.open(&nonce, &rec[..5], &mut buf, tag));
    assert_eq!(buf[..50], payload()[..]);
    assert_eq!(buf[50..], [23], "inner content type: application data");
    let mut bad = ct.to_vec();
    nonce[11] ^= 1;
    assert!(!cipher.open(&nonce, &rec[..5], &mut bad, tag), "sequence 0");
}

#[test]
fn tls12_prf_sha256() {
    // The vector circulated on the TLS working group's list.
    let out = crypto::prf(
        Hash::Sha256,
        &unhex("9bbe436ba940f017b17652849a71db35"),
        b"test label",
        &unhex("a0ba9f936cda311827a6f796ffd5198c"),
        100,
    );
    assert_eq!(
        hex(&out),
        "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff70187347b66"
    );
}

#[test]
fn keylog_lines() {
    let r = CLIENT_RANDOM;
    let s32 = "11".repeat(32);
    let s48 = "22".repeat(48);
    let text = format!(
        "# comment\n\n\
         CLIENT_RANDOM {r} {s48}\n\
         CLIENT_HANDSHAKE_TRAFFIC_SECRET {r} {s32}\n\
         SERVER_HANDSHAKE_TRAFFIC_SECRET {R} {s32}\r\n\
         CLIENT_TRAFFIC_SECRET_0 {r} {s32}\n\
         SERVER_TRAFFIC_SECRET_0 {r} {s32}\n\
         CLIENT_TRAFFIC_SECRET_1 {r} {s48}\n\
         EXPORTER_SECRET {r} {s32}\n\
         CLIENT_EARLY_TRAFFIC_SECRET {r} {s32}\n\
         CLIENT_RANDOM {r} {s32}\n\
         CLIENT_RANDOM {short} {s48}\n\
         CLIENT_RANDOM {r} zz{s48}\n\
         CLIENT_RANDOM {r}\n\
         CLIENT_RANDOM {r} {s48} extra\n\
         CLIENT_TRAFFIC_SECRET_x {r} {s32}\n\
         SERVER_TRAFFIC_SECRET_N {r} {s48}\n\
         SERVER_TRAFFIC_SECRET_N {r} {s32}\n",
        R = r.to_uppercase(),
        short = &r[2..],
    );
    let mut log = KeyLog::default();
    log.add_text(text.as_bytes());
    assert_eq!(log.len(), 1);
    // A 32-byte CLIENT_RANDOM, a short random, bad hex, two and four fields.
    assert_eq!(log.bad_lines, 5);
    // EXPORTER_SECRET, CLIENT_EARLY_TRAFFIC_SECRET, the malformed generation.
    assert_eq!(log.ignored_lines, 3);
    let e = log.get(&unhex(r).try_into().unwrap()).unwrap();
    assert_eq!(e.master.as_ref().unwrap().0[..], unhex(&s48)[..]);
    assert!(e.client_handshake.is_some() && e.server_handshake.is_some());
    assert_eq!(e.traffic(true, 1).unwrap().0.len(), 48);
    assert!(e.traffic(false, 0).is_some() && e.traffic(false, 3).is_none());
    // OpenSSL 3.0's literal `_N`: generations 1, 2… in the order logged.
    assert_eq!(e.traffic(false, 1).unwrap().0.len(), 48);
    assert_eq!(e.traffic(false, 2).unwrap().0.len(), 32);
    // Debug shows no key material.
    assert!(!format!("{e:?}").contains("1111"), "{e:?}");
}

#[test]
fn missing_key_names_the_client_random() {
    let mut conn = Conn::new();
    let seen = run(&mut conn, &mut Log(KeyLog::default(), 0), TRACE, usize::MAX);
    assert_eq!(seen.plain, NOTHING);
    assert_eq!(seen.anomalies.len(), 1, "{seen:?}");
    assert_eq!(seen.anomalies[0].0, Problem::NoKey);
    assert!(seen.anomalies[0].1.contains(CLIENT_RANDOM), "{seen:?}");
    assert!(!conn.info.decrypted);
}

#[test]
fn wrong_key_and_corrupted_records_do_not_authenticate() {
    let mut wrong = CHTS.to_string();
    wrong.replace_range(0..2, "00");
    let logs = [
        keylog(&[
            ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", &wrong),
            ("SERVER_HANDSHAKE_TRAFFIC_SECRET", SHTS),
            ("CLIENT_TRAFFIC_SECRET_0", CATS),
            ("SERVER_TRAFFIC_SECRET_0", SATS),
        ]),
        rfc8448_log(),
    ];
    // One ciphertext bit flipped in the client's data record.
    let mut corrupt = unhex(CLIENT_DATA);
    corrupt[20] ^= 4;
    let corrupt = hex(&corrupt);
    let traces: [Vec<(Dir, &str)>; 2] = [TRACE.to_vec(), {
        let mut t = TRACE.to_vec();
        t[4].1 = &corrupt;
        t
    }];
    for (log, trace) in logs.into_iter().zip(&traces) {
        let mut conn = Conn::new();
        let seen = run(&mut conn, &mut Log(log, 0), trace, usize::MAX);
        assert_eq!(seen.plain, NOTHING, "no garbage out");
        assert_eq!(seen.anomalies.len(), 1, "{seen:?}");
        assert_eq!(seen.anomalies[0].0, Problem::AuthFailed, "{seen:?}");
        assert!(conn.failed());
    }
}

#[test]
fn truncated_record_is_reported_at_the_end() {
    let cut = &CLIENT_DATA[..CLIENT_DATA.len() - 10];
    let trace = [&TRACE[..4], &[(Dir::Frontend, cut)]].concat();
    let seen = run(&mut Conn::new(), &mut Log(rfc8448_log(), 0), &trace, 7);
    assert_eq!(seen.plain, NOTHING);
    assert_eq!(seen.anomalies.len(), 1, "{seen:?}");
    assert_eq!(seen.anomalies[0].0, Problem::Truncated);
    assert!(seen.anomalies[0].1.contains("(67 of 72 bytes)"), "{seen:?}");
}

#[test]
fn unsupported_suite_is_named() {
    // The ServerHello picking TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA with TLS 1.2.
    let mut sh = unhex(SERVER_HELLO);
    let at = 5 + 4 + 2 + 32 + 1;
    sh[at..at + 2].copy_from_slice(&[0xc0, 0x13]);
    sh.truncate(sh.len() - 6); // no supported_versions: TLS 1.2
    let ext_len = 5 + 4 + 2 + 32 + 1 + 3;
    let n = sh.len() - ext_len - 2;
    sh[ext_len..ext_len + 2].copy_from_slice(&(n as u16).to_be_bytes());
    let body = sh.len() - 9;
    sh[6..9].copy_from_slice(&(body as u32).to_be_bytes()[1..]);
    sh[3..5].copy_from_slice(&((body + 4) as u16).to_be_bytes());
    let sh = hex(&sh);
    let mut conn = Conn::new();
    let seen = run(
        &mut conn,
        &mut Log(rfc8448_log(), 0),
        &[(Dir::Frontend, CLIENT_HELLO), (Dir::Backend, &sh)],
        usize::MAX,
    );
    assert_eq!(seen.anomalies.len(), 1, "{seen:?}");
    assert_eq!(seen.anomalies[0].0, Problem::Unsupported);
    assert!(
        seen.anomalies[0]
            .1
            .contains("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
        "{seen:?}"
    );
    assert_eq!(conn.info.version, Some("1.2"));
}

#[test]
fn not_tls_is_malformed_not_garbage() {
    let seen = run(
        &mut Conn::new(),
        &mut Log(rfc8448_log(), 0),
        &[(Dir::Frontend, "0000000804d2162f")],
        usize::MAX,
    );
    assert_eq!(seen.anomalies.len(), 1);
    assert_eq!(seen.anomalies[0].0, Problem::Malformed);
}

/// A key log still being written: records wait for the key, then all decrypt.
#[test]
fn held_until_the_key_arrives() {
    let mut keys = Log(KeyLog::default(), 5_000_000_000);
    let mut conn = Conn::new();
    let mut plain = Vec::new();
    let mut anomalies = 0;
    for (i, (dir, hex)) in TRACE.iter().enumerate() {
        if i == 3 {
            keys.0 = rfc8448_log();
        }
        conn.feed(*dir, &unhex(hex), i as i64, &mut keys, &mut |o| match o {
            Out::Plain(_, p) => plain.extend_from_slice(p),
            Out::Anomaly(..) => anomalies += 1,
        });
    }
    assert_eq!((plain, anomalies), (payload(), 0));

    // Never arrives: given up on once waited long enough.
    let mut keys = Log(KeyLog::default(), 10);
    let mut conn = Conn::new();
    let mut problems = Vec::new();
    for (i, (dir, hex)) in TRACE.iter().enumerate() {
        conn.feed(*dir, &unhex(hex), i as i64 * 20, &mut keys, &mut |o| {
            if let Out::Anomaly(_, p, _) = o {
                problems.push(p)
            }
        });
    }
    assert_eq!(problems, [Problem::NoKey]);
}

/// Throughput: `cargo test --release --lib tls::tests::throughput -- --ignored --nocapture`.
/// Records of 16 KiB under the RFC 8448 client key, opened by the crate alone and
/// through `Conn` (record layer, nonces, content types).
#[test]
#[ignore]
fn throughput() {
    use aes_gcm::aead::AeadInPlace;
    use aes_gcm::{Aes128Gcm, KeyInit};
    let s = unhex(CATS);
    let key = crypto::expand_label(Hash::Sha256, &s, "key", &[], 16);
    let iv = crypto::expand_label(Hash::Sha256, &s, "iv", &[], 12);
    let aead = Aes128Gcm::new_from_slice(&key).unwrap();
    let n = 4096;
    let mut stream = Vec::new();
    let mut sealed = Vec::new();
    // TRACE ends with the client's data (sequence 0) and alert (1) records.
    for seq in 2..n as u64 + 2 {
        let mut nonce: [u8; 12] = iv.clone().try_into().unwrap();
        for (b, x) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
            *b ^= x;
        }
        let mut rec = vec![b'x'; 16384];
        rec.push(23);
        let header = [
            23,
            3,
            3,
            ((rec.len() + 16) >> 8) as u8,
            (rec.len() + 16) as u8,
        ];
        let tag = aead
            .encrypt_in_place_detached(&nonce.into(), &header, &mut rec)
            .unwrap();
        stream.extend_from_slice(&header);
        stream.extend_from_slice(&rec);
        stream.extend_from_slice(&tag);
        sealed.push((nonce, header, rec, tag));
    }
    let mb = (n * 16384) as f64 / 1e6;
    let t = std::time::Instant::now();
    for (nonce, header, rec, tag) in &mut sealed {
        let mut buf = rec.clone();
        aead.decrypt_in_place_detached(&(*nonce).into(), &header[..], &mut buf, tag)
            .unwrap();
    }
    let raw = mb / t.elapsed().as_secs_f64();
    let mut conn = Conn::new();
    run(&mut conn, &mut Log(rfc8448_log(), 0), TRACE, usize::MAX);
    let mut keys = Log(rfc8448_log(), 0);
    let mut got = 0;
    let t = std::time::Instant::now();
    for seg in stream.chunks(65483) {
        conn.feed(Dir::Frontend, seg, 0, &mut keys, &mut |o| {
            if let Out::Plain(_, p) = o {
                got += p.len()
            }
        });
    }
    let ours = mb / t.elapsed().as_secs_f64();
    assert_eq!(got, n * 16384);
    eprintln!("AES-128-GCM: crate alone {raw:.0} MB/s, through Conn {ours:.0} MB/s");
}

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Damaged traces and random bytes: never a panic, and plaintext only ever a
    /// prefix of the real one (a record either authenticates or stops decryption).
    #[test]
    fn damage_never_gives_garbage(
        flips in proptest::collection::vec((0usize..2000, any::<u8>()), 0..4),
        cut in 0usize..2000,
        chunk in 1usize..800,
        noise in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut bytes: Vec<(Dir, Vec<u8>)> = TRACE.iter().map(|(d, h)| (*d, unhex(h))).collect();
        let total: usize = bytes.iter().map(|b| b.1.len()).sum();
        for (at, x) in flips {
            let mut at = at % total;
            for (_, b) in bytes.iter_mut() {
                if at < b.len() {
                    b[at] ^= x;
                    break;
                }
                at -= b.len();
            }
        }
        let cut = cut % bytes.len();
        bytes[cut].1.extend_from_slice(&noise);
        let hexes: Vec<(Dir, String)> = bytes.iter().map(|(d, b)| (*d, hex(b))).collect();
        let trace: Vec<(Dir, &str)> = hexes.iter().map(|(d, h)| (*d, h.as_str())).collect();
        let seen = run(&mut Conn::new(), &mut Log(rfc8448_log(), 0), &trace, chunk);
        let client = &seen.plain[Dir::Frontend as usize];
        prop_assert!(payload().starts_with(client), "{:?}", client);
        prop_assert!(seen.plain[Dir::Backend as usize].is_empty());
        prop_assert!(seen.anomalies.len() <= 1, "{:?}", seen.anomalies);
        // Random bytes as both streams: no panic, nothing out.
        let r = hex(&noise);
        let seen = run(&mut Conn::new(), &mut Log(rfc8448_log(), 0), &[(Dir::Frontend, &r), (Dir::Backend, &r)], chunk);
        prop_assert_eq!(seen.plain, NOTHING);
    }
}
