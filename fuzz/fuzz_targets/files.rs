//! Fuzz target `files`: see `switchyard_fuzz::file` for what it drives and why.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard_fuzz::file(data));
