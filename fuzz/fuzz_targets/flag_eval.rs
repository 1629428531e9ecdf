//! Arbitrary bytes → context line + flag JSON → normalize → validate → compile → evaluate.
//! The body lives in `hata_core::fuzzing` so that `tests/fuzz_smoke.rs` runs it too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hata_core::fuzzing::flag_eval(data));
