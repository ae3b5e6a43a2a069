//! The floor for `scripts/bench`'s bootstrap-rsa scenario: the time aws-lc-rs alone needs
//! to generate N RSA-2048 keys on every core (rayon), with nothing else around it.
//!
//!     cargo run --release --example keygen_floor -- 50
//!
//! Prints the number of keys and the seconds they took (process start-up not included;
//! `scripts/bench` times the whole process as it does for every tool).

use std::time::Instant;

use aws_lc_rs::rsa::{KeyPair, KeySize};
use rayon::prelude::*;

fn main() {
    let n: usize = match std::env::args().nth(1).map(|s| s.parse()) {
        None => 50,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("usage: keygen_floor [N]");
            std::process::exit(2);
        }
    };
    let start = Instant::now();
    let bits: usize = (0..n)
        .into_par_iter()
        .map(|_| {
            let key = KeyPair::generate(KeySize::Rsa2048).expect("RSA-2048 key generation");
            key.public_modulus_len() * 8
        })
        .sum();
    assert_eq!(bits, n * 2048);
    println!(
        "{n} RSA-2048 keys in {:.3} s on {} threads",
        start.elapsed().as_secs_f64(),
        rayon::current_num_threads()
    );
}
