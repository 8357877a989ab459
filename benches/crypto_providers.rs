//! The crypto providers rustls and quinn can use, compared where they cost
//! the edge most: AES-128-GCM sealing (the cipher TLS 1.3 and QUIC
//! negotiate first with every browser) of one QUIC packet at Internet size
//! (1452 bytes), one at the loopback size the edge's MTU discovery reaches
//! (6548 bytes, `livecdn_shared::quic`), and one full TLS record (16 KiB).
//!
//! `livecdn_shared::tls::crypto_provider` uses the faster one; this bench is
//! what chose it. Run: `cargo bench --bench crypto_providers` (a few
//! seconds). Prints ns per seal and GB/s for ring and aws-lc-rs.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Sizes sealed, bytes.
const SIZES: [usize; 3] = [1452, 6548, 16384];
/// Measuring time per size and provider.
const RUN: Duration = Duration::from_millis(700);

/// Seals `size`-byte buffers with `seal` for [`RUN`] (after a warm-up);
/// returns ns per seal.
fn measure(size: usize, mut seal: impl FnMut(u64, &mut [u8])) -> f64 {
    let mut buf = vec![0x5a_u8; size];
    let mut counter = 0u64;
    let warm = Instant::now();
    while warm.elapsed() < RUN / 4 {
        seal(counter, &mut buf);
        counter += 1;
    }
    let start = Instant::now();
    let mut n = 0u64;
    // Bounded by time, checked every 64 seals.
    while start.elapsed() < RUN {
        for _ in 0..64 {
            seal(counter, &mut buf);
            counter += 1;
            n += 1;
        }
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn nonce(counter: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&counter.to_be_bytes());
    nonce
}

/// `fn $name(size) -> ns per seal` for the provider crate `$krate`
/// (ring and aws-lc-rs share the `aead` API).
macro_rules! seal_bench {
    ($name:ident, $krate:ident) => {
        fn $name(size: usize) -> f64 {
            use $krate::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
            let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &[7; 16]).expect("key"));
            measure(size, |i, buf| {
                let tag = key
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(nonce(i)),
                        Aad::from([0u8; 13]),
                        buf,
                    )
                    .expect("seal");
                let _ = black_box(tag);
            })
        }
    };
}

seal_bench!(ring_seal, ring);
seal_bench!(aws_lc_seal, aws_lc_rs);

fn main() {
    println!("AES-128-GCM seal, one core\n");
    println!("| bytes | ring ns | ring GB/s | aws-lc-rs ns | aws-lc-rs GB/s | ring / aws-lc-rs |");
    println!("|---|---|---|---|---|---|");
    for size in SIZES {
        let r = ring_seal(size);
        let a = aws_lc_seal(size);
        println!(
            "| {size} | {r:.0} | {:.2} | {a:.0} | {:.2} | {:.2} |",
            size as f64 / r,
            size as f64 / a,
            r / a
        );
    }
}
