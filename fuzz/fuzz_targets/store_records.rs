//! Fuzz target `store_records`: see `switchyard_fuzz::store_record` for what it drives and why.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard_fuzz::store_record(data));
