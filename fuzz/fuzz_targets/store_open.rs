//! Fuzz target `store_open`: see `switchyard_fuzz::store_open` for what it drives and why.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard_fuzz::store_open(data));
